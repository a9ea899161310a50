"""Each caller's hourly budget of REST requests, and conditional requests that cost nothing, as on GitHub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from github import RateLimitExceededException

from bot.sandbox import Sandbox

from .conftest import Cast, github

REPO = "/repos/acme/platform"


def get(forge: Sandbox, path: str, token: str | None = None, etag: str | None = None) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    if etag:
        headers["If-None-Match"] = etag
    return requests.get(f"{forge.api_url}{path}", headers=headers, timeout=5)


def spent(forge: Sandbox, caller: str) -> int:
    usage = forge.rate_limit(caller)
    return usage.used if usage else 0


class Clock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)


@pytest.fixture
def clocked_forge(tmp_path: Path, clock: Clock) -> Iterator[Sandbox]:
    with Sandbox.start(tmp_path / "clocked", clock=clock) as sandbox:
        yield sandbox


# -- ETags and conditional requests -----------------------------------------------------------------------------

def test_a_get_answers_with_a_weak_etag(forge: Sandbox, cast: Cast) -> None:
    answer = get(forge, REPO, cast.alice.token)
    assert answer.status_code == 200
    assert answer.headers["ETag"].startswith('W/"') and answer.headers["ETag"].endswith('"')


def test_a_get_repeated_with_its_etag_is_answered_304_and_costs_one_request(forge: Sandbox, cast: Cast) -> None:
    forge.reset_rate_limits()
    first = get(forge, REPO, cast.alice.token)
    again = get(forge, REPO, cast.alice.token, etag=first.headers["ETag"])
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", first.headers["ETag"])
    assert again.headers["X-RateLimit-Remaining"] == first.headers["X-RateLimit-Remaining"]
    assert spent(forge, "user:alice") == 1


def test_a_changed_body_changes_the_etag(forge: Sandbox, cast: Cast) -> None:
    before = get(forge, REPO, cast.alice.token)
    github(forge, cast.alice.token).get_repo("acme/platform").edit(description="Requests for the platform")
    after = get(forge, REPO, cast.alice.token, etag=before.headers["ETag"])
    assert after.status_code == 200
    assert after.json()["description"] == "Requests for the platform"
    assert after.headers["ETag"] != before.headers["ETag"]


def test_pygithub_refreshes_an_unchanged_pull_request_for_free(forge: Sandbox, cast: Cast) -> None:
    forge.push_files("acme", "platform", "scale-up", {"services/billing.yaml": "replicas: 2\n"}, by="alice")
    opened = forge.open_pull_request("acme", "platform", head="scale-up", title="Scale up", by="alice")
    pull = github(forge, cast.bob.token).get_repo("acme/platform").get_pull(opened.number)
    forge.reset_rate_limits()
    assert pull.update() is False  # PyGithub sent the ETag it kept, and GitHub said nothing changed
    assert spent(forge, "user:bob") == 0


def test_a_rate_limit_read_again_with_its_etag_gives_back_nothing_it_never_took(forge: Sandbox,
                                                                              cast: Cast) -> None:
    forge.reset_rate_limits()
    get(forge, REPO, cast.alice.token)
    first = get(forge, "/rate_limit", cast.alice.token)
    again = get(forge, "/rate_limit", cast.alice.token, etag=first.headers["ETag"])
    assert again.status_code == 304
    assert spent(forge, "user:alice") == 1  # the repository's read, still counted


def test_a_304_still_costs_an_anonymous_caller_a_request(forge: Sandbox, cast: Cast) -> None:
    first = get(forge, REPO)
    again = get(forge, REPO, etag=first.headers["ETag"])
    assert again.status_code == 304
    assert int(again.headers["X-RateLimit-Remaining"]) == int(first.headers["X-RateLimit-Remaining"]) - 1


# -- the hourly budget ------------------------------------------------------------------------------------------

def test_the_remaining_budget_falls_by_one_per_request(forge: Sandbox, cast: Cast) -> None:
    forge.reset_rate_limits()
    remaining = [int(get(forge, path, cast.bob.token).headers["X-RateLimit-Remaining"])
                 for path in (REPO, f"{REPO}/branches", "/user")]
    assert remaining == [4999, 4998, 4997]
    assert spent(forge, "user:bob") == 3


def test_reading_the_rate_limit_costs_nothing(forge: Sandbox, cast: Cast) -> None:
    forge.reset_rate_limits()
    get(forge, REPO, cast.bob.token)
    limits = get(forge, "/rate_limit", cast.bob.token).json()["resources"]["core"]
    assert (limits["used"], limits["remaining"]) == (1, 4999)
    assert spent(forge, "user:bob") == 1


def test_an_installation_spends_its_own_budget_not_its_apps_or_a_users(forge: Sandbox, cast: Cast) -> None:
    app = forge.create_app("acme", "paved", permissions={"metadata": "read", "contents": "read"})
    installation = forge.install_app(app.id, "acme")
    token = forge.installation_token(installation.id)
    forge.reset_rate_limits()
    get(forge, REPO, token)
    get(forge, REPO, cast.alice.token)
    assert spent(forge, f"installation:{installation.id}") == 1
    assert spent(forge, "user:alice") == 1


def test_a_spent_budget_is_refused_403_with_githubs_message_and_headers(forge: Sandbox, cast: Cast) -> None:
    forge.set_rate_limit(2)
    forge.reset_rate_limits()
    assert [get(forge, REPO, cast.bob.token).status_code for _ in range(2)] == [200, 200]
    refused = get(forge, REPO, cast.bob.token)
    assert refused.status_code == 403
    bob = forge.forge.account("bob")
    assert bob is not None
    assert refused.json()["message"] == f"API rate limit exceeded for user ID {bob.id}."
    assert (refused.headers["X-RateLimit-Limit"], refused.headers["X-RateLimit-Remaining"],
            refused.headers["X-RateLimit-Used"]) == ("2", "0", "2")
    usage = forge.rate_limit("user:bob")
    assert usage is not None and (usage.used, usage.refused) == (2, 1)
    assert int(refused.headers["X-RateLimit-Reset"]) == usage.reset


def test_pygithub_takes_a_spent_budget_for_githubs_rate_limit(forge: Sandbox, cast: Cast) -> None:
    forge.set_rate_limit(0)
    with pytest.raises(RateLimitExceededException) as refused:
        github(forge, cast.bob.token).get_repo("acme/platform")
    assert refused.value.status == 403


def test_the_budget_is_whole_again_once_the_hour_has_passed(clocked_forge: Sandbox, clock: Clock) -> None:
    carol = clocked_forge.create_user("carol")
    clocked_forge.set_rate_limit(1)
    first = get(clocked_forge, "/user", carol.token)
    assert int(first.headers["X-RateLimit-Reset"]) == int(clock.now) + 3600
    assert get(clocked_forge, "/user", carol.token).status_code == 403
    clock.now += 3600
    later = get(clocked_forge, "/user", carol.token)
    assert (later.status_code, later.headers["X-RateLimit-Remaining"]) == (200, "0")
    assert int(later.headers["X-RateLimit-Reset"]) == int(clock.now) + 3600


def test_the_administration_api_sets_the_limit_and_reads_what_a_caller_spent(forge: Sandbox, cast: Cast) -> None:
    def admin(operation: str, **arguments: object) -> object:
        answer = requests.post(f"{forge.url}/_sandbox/call/{operation}", json=arguments, timeout=5,
                               headers={"Authorization": f"token {forge.admin_token}"})
        assert answer.status_code == 200, answer.text
        return answer.json()["result"]

    admin("set_rate_limit", limit=10)
    admin("reset_rate_limits")
    get(forge, REPO, cast.bob.token)
    assert admin("rate_limit", caller="user:bob") == {
        "caller": "user:bob", "limit": 10, "used": 1, "remaining": 9, "reset": forge.rate_limit("user:bob").reset,
        "refused": 0}
