"""Paved against an unreliable, rate-limited GitHub: the sandbox's faults, and Paved's retries.

GitHub sometimes answers 5xx, limits a client that writes fast with a secondary rate limit, or answers
late. Paved tries a request again when GitHub says it did not do it, waits what GitHub asks within a
bound, and never repeats a write GitHub may have done: the sandbox forge, told to fail on purpose
(`bot/sandbox/faults.py`), shows each over real HTTP, and its recording counts the attempts.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.adapters import metrics
from bot.adapters.github import (
    ForgeError,
    GitHubForge,
    RetryPolicy,
    connect_with_token,
    installation_client,
    installation_of,
)
from bot.model import Resource
from bot.provider import Target
from bot.providers.github.provider import GitHubProvider
from bot.sandbox import Sandbox
from bot.sandbox.recording import Exchange, watch

# Small waits, so the tests run fast; the shape of the policy is Paved's own.
QUICK = RetryPolicy(backoff=0.01, max_wait=5.0, timeout=5)
COMMENTS = r"^POST /repos/acme/platform/issues/\d+/comments$"


@dataclass
class Story:
    forge: Sandbox
    app_id: int
    private_key: str
    installation: int
    number: int  # an open pull request
    exchanges: list[Exchange]

    def paved(self, retries: RetryPolicy = QUICK) -> GitHubForge:
        return GitHubForge(installation_client(self.forge.api_url, self.app_id, self.private_key, self.installation,
                                               polite=False, retries=retries))

    def calls(self, route_suffix: str = "") -> list[Exchange]:
        return [e for e in self.exchanges if e.route.endswith(route_suffix)]


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    folder = tmp_path / "platform"
    (folder / "catalog").mkdir(parents=True)
    (folder / "catalog" / "README.md").write_text("requests go here\n")
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        forge.create_org("acme", owners=["alice"])
        forge.create_repo_from_folder("acme", "platform", folder, owner_token=alice.token)
        forge.push_files("acme", "platform", "search", {"catalog/search.yaml": "kind: Service\n"}, by="alice")
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read",
            "members": "read", "administration": "write"})
        forge.install_app(app.id, "acme")
        installation = installation_of(forge.api_url, app.id, app.private_key, "acme/platform", retries=QUICK)
        opened = forge.open_pull_request("acme", "platform", head="search", title="Search", by="alice")
        seen: list[Exchange] = []
        stop = watch(seen.append)
        yield Story(forge, app.id, app.private_key, installation, opened.number, seen)
        stop()


def timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.monotonic()
    try:
        result = call()
    except ForgeError as exc:
        result = exc
    return time.monotonic() - started, result


def test_paved_gets_through_when_thirty_percent_of_calls_fail(story: Story) -> None:
    # 8 attempts: at 30% a call fails all of 5 about once in 400, which a long test would meet; see RetryPolicy.
    paved = story.paved(RetryPolicy(attempts=8, backoff=0.01, max_wait=5.0, timeout=5))
    faults = story.forge.faults(0.3, ("500", "502", "secondary"), seed=11, retry_after=0)
    sha = story.forge.branch_sha("acme", "platform", "search")
    assert sha is not None
    for round in range(10):
        paved.upsert_comment("acme/platform", story.number, "<!-- paved:plan -->", f"<!-- paved:plan -->\n{round}")
        assert paved.pull_request("acme/platform", story.number).head_sha == sha
        assert paved.reviews("acme/platform", story.number) == []
    story.forge.no_faults()
    assert [c.body for c in story.forge.comments("acme", "platform", story.number)] == ["<!-- paved:plan -->\n9"]
    statuses = Counter(e.status for e in story.exchanges)
    failed = sum(faults.served.values())
    assert failed >= 15 and set(faults.served) == {"500", "502", "secondary"}
    assert statuses[500] + statuses[502] + statuses[403] == failed  # each fault was answered …
    # … and each one asked again, until done (a read asked again with its ETag may be answered 304)
    assert len(story.exchanges) - failed == statuses[200] + statuses[201] + statuses[304]


def test_a_secondary_rate_limit_is_waited_for_as_long_as_github_asks(story: Story) -> None:
    paved = story.paved()
    story.forge.faults(1.0, ("secondary",), retry_after=1, only=r"^GET /repos/acme/platform/pulls/\d+$", limit=1)
    took, pull = timed(lambda: paved.pull_request("acme/platform", story.number))
    assert not isinstance(pull, ForgeError)
    assert 1.0 <= took < 2.0
    assert [(e.status, e.response_headers.get("Retry-After")) for e in story.calls("/pulls/{pull_number}")] == \
        [(403, "1"), (200, None)]


def test_a_rate_limit_asking_longer_than_paved_waits_fails_at_once(story: Story) -> None:
    paved = story.paved(RetryPolicy(backoff=0.01, max_wait=3.0, timeout=5))
    story.forge.faults(1.0, ("secondary",), retry_after=30, only=r"^GET /repos/acme/platform/pulls/\d+$")
    took, refused = timed(lambda: paved.pull_request("acme/platform", story.number))
    assert isinstance(refused, ForgeError) and refused.status == 403
    assert "secondary rate limit" in refused.message and "\n" not in refused.message
    assert took < 1.0
    assert len(story.calls("/pulls/{pull_number}")) == 1


def test_when_every_call_fails_paved_gives_up_within_its_bound_naming_the_status(story: Story) -> None:
    paved = story.paved(RetryPolicy(backoff=0.4, max_wait=2.0, timeout=5))
    story.forge.faults(1.0, ("502",), only=r"^GET /repos/acme/platform/pulls/\d+/reviews$")
    took, refused = timed(lambda: paved.reviews("acme/platform", story.number))
    assert isinstance(refused, ForgeError) and refused.status == 502
    assert refused.message == f"GitHub failed to read the reviews of #{story.number} in acme/platform: " \
                              "Server Error (502)"
    assert took < 2.5  # waits of about 0.4, 0.8, then 1.6 would pass 2 s: it stops before
    assert 2 <= len(story.calls("/reviews")) <= 4


def test_a_read_timeout_is_a_forge_error_after_reads_are_tried_again(story: Story) -> None:
    paved = story.paved(RetryPolicy(attempts=2, backoff=0.01, max_wait=5.0, timeout=1))
    story.forge.faults(1.0, ("slow",), slow_seconds=1.5, only=r"^GET /repos/acme/platform/pulls/\d+$")
    took, failed = timed(lambda: paved.pull_request("acme/platform", story.number))
    assert isinstance(failed, ForgeError) and failed.status == 0
    assert failed.message.startswith(f"GitHub did not answer when Paved tried to read pull request #{story.number}")
    assert "Read timed out" in failed.message and "\n" not in failed.message
    assert 2.0 <= took < 4.0
    time.sleep(1.0)  # the forge's late answers leave, and are recorded
    assert len(story.calls("/pulls/{pull_number}")) == 2  # a read goes again: it changes nothing


@pytest.mark.parametrize("fault", ["slow", "drop"])
def test_a_comment_whose_answer_never_came_is_not_posted_twice(story: Story, fault: str) -> None:
    paved = story.paved(RetryPolicy(backoff=0.01, max_wait=5.0, timeout=1))
    paved.default_branch("acme/platform")  # the installation's token, before the faults
    story.forge.faults(1.0, (fault,), slow_seconds=1.5, only=COMMENTS)  # type: ignore[arg-type]
    took, failed = timed(lambda: paved.comment("acme/platform", story.number, "Planned."))
    assert isinstance(failed, ForgeError) and failed.status == 0
    assert took < 1.5  # one attempt: a timeout of 1 s, or a connection dropped at once
    time.sleep(1.0)
    assert [c.body for c in story.forge.comments("acme", "platform", story.number)] == ["Planned."]
    assert len(story.calls("/issues/{issue_number}/comments")) == 1


def github_calls(tmp_path: Path) -> Counter[str]:
    """`paved_github_api_calls_total` by status, as `GET /metrics` answers it now."""
    text = metrics.exposition(tmp_path, lambda: 0).decode()
    return Counter({s.labels["status"]: int(s.value) for family in text_string_to_metric_families(text)
                    for s in family.samples if s.name == "paved_github_api_calls_total"})


def test_the_answers_paved_asked_again_for_are_counted_too(story: Story, tmp_path: Path) -> None:
    paved = story.paved()
    paved.default_branch("acme/platform")
    story.forge.faults(1.0, ("502", "secondary"), seed=2, retry_after=0,
                       only=r"^GET /repos/acme/platform/pulls/\d+/reviews$", limit=3)
    before = github_calls(tmp_path)
    assert paved.reviews("acme/platform", story.number) == []
    grown = github_calls(tmp_path) - before
    assert grown["502"] + grown["403"] == 3  # asked again, so PyGithub never saw them
    assert grown["200"] == 2  # the pull request, then its reviews


def test_a_forge_that_cannot_be_reached_is_a_forge_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
    paved = GitHubForge(connect_with_token(f"http://127.0.0.1:{port}/api/v3", "ghp_unused", polite=False,
                                           retries=RetryPolicy(attempts=3, backoff=0.01, max_wait=1.0, timeout=1)))
    took, failed = timed(lambda: paved.default_branch("acme/platform"))
    assert isinstance(failed, ForgeError) and failed.status == 0
    assert failed.message.startswith("GitHub did not answer when Paved tried to read acme/platform: ")
    assert "\n" not in failed.message and took < 1.0


def test_the_github_provider_reports_an_unanswered_call_in_one_line(story: Story) -> None:
    client = installation_client(story.forge.api_url, story.app_id, story.private_key, story.installation,
                                 polite=False, retries=RetryPolicy(attempts=2, backoff=0.01, max_wait=1.0, timeout=1))
    provider = GitHubProvider(client, lambda: "unused")
    team = Resource("Team", "search", "search", "catalog/teams/search.yaml", 0, 1, {
        "apiVersion": "paved/v1", "kind": "Team", "metadata": {"name": "search", "owner": "search"},
        "spec": {"members": ["alice"]}})
    target = Target("acme", "acme/platform", tree=None, revision="0" * 40)  # type: ignore[arg-type]  # not read
    client.get_repo("acme/platform")  # the installation's token, before the faults
    story.forge.faults(1.0, ("drop",), only=r"^GET /orgs/acme/teams/")
    with pytest.raises(ForgeError) as unanswered:
        provider.observe(team, target)
    assert unanswered.value.status == 0
    assert unanswered.value.message.startswith("GitHub did not answer when asked for Team/search: ")
    result = provider.apply(team, target)
    assert result.status == "failed" and "\n" not in result.message
    assert result.message.startswith("GitHub could not be reached to show what exists: ")
