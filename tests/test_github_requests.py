"""What Paved's GitHub clients spend of the rate limit, against the sandbox forge over real HTTP: reads ask
again with the ETags of the answers this process keeps (free 304s when nothing changed), kept per credential
and within a bound, and a client says what is left of its hour without spending a request to find out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from urllib3 import HTTPResponse

from bot.adapters.github import ETAGS, ETagCache, _PerCredential, connect_with_token, rate_limit_of
from bot.sandbox import Sandbox, User
from bot.sandbox.recording import Exchange, watch


@dataclass
class Org:
    forge: Sandbox
    alice: User
    bob: User

    def used(self, login: str) -> int:
        usage = self.forge.rate_limit(f"user:{login}")
        return usage.used if usage is not None else 0


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    with Sandbox.start(tmp_path / "forge") as forge:
        alice, bob = forge.create_user("alice"), forge.create_user("bob")
        forge.create_org("acme", owners=["alice"], members=["bob"])
        forge.create_repo("acme", "checkout", description="Takes orders.")
        ETAGS.clear()
        yield Org(forge, alice, bob)


@contextmanager
def answers() -> Iterator[list[int]]:
    """The statuses of the forge's answers while the block runs."""
    seen: list[int] = []

    def record(exchange: Exchange) -> None:
        seen.append(exchange.status)

    stop = watch(on_exchange=record)
    try:
        yield seen
    finally:
        stop()


def test_a_read_asked_again_is_answered_304_and_costs_nothing(org: Org) -> None:
    first = connect_with_token(org.forge.api_url, org.alice.token, polite=False)
    first.get_repo("acme/checkout")
    spent = org.used("alice")
    with answers() as seen:
        again = connect_with_token(org.forge.api_url, org.alice.token, polite=False)  # as the next job would
        assert again.get_repo("acme/checkout").description == "Takes orders."
    assert (seen, org.used("alice")) == ([304], spent)


def test_a_changed_answer_is_read_in_full(org: Org) -> None:
    client = connect_with_token(org.forge.api_url, org.alice.token, polite=False)
    client.get_repo("acme/checkout")
    client.get_repo("acme/checkout").edit(description="Takes orders and refunds them.")
    assert client.get_repo("acme/checkout").description == "Takes orders and refunds them."


def test_one_credential_never_gets_another_s_kept_answers(org: Org) -> None:
    connect_with_token(org.forge.api_url, org.alice.token, polite=False).get_repo("acme/checkout")
    with answers() as seen:
        connect_with_token(org.forge.api_url, org.bob.token, polite=False).get_repo("acme/checkout")
    assert (seen, org.used("bob")) == ([200], 1)


def test_the_kept_answers_stay_within_their_bound() -> None:
    store = ETagCache(limit=1000)
    for n in range(10):
        store.set(f"answer {n}", bytes(300))
    store.get("answer 7")  # read: the most recent now
    store.set("answer 10", bytes(300))
    assert [n for n in range(11) if store.get(f"answer {n}") is not None] == [7, 9, 10]
    assert store.size == 900


def test_vary_by_authorization_is_left_to_the_credential_a_store_is_kept_for() -> None:
    answer = HTTPResponse(b"{}", headers={"Vary": "Accept, Authorization, Cookie", "ETag": 'W/"1"'}, status=200)
    assert _PerCredential().apply(answer).headers["Vary"] == "Accept, Cookie"


def test_a_client_says_what_is_left_of_its_hour_without_spending_a_request(org: Org) -> None:
    client = connect_with_token(org.forge.api_url, org.alice.token, polite=False)
    client.get_user("bob")
    spent = org.used("alice")
    left = rate_limit_of(client)
    assert (left.remaining, left.limit, org.used("alice")) == (5000 - spent, 5000, spent)
