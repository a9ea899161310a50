"""A platform repo whose main branch takes pull requests through GitHub's merge queue, with `paved/plan`
required from Paved's App: the sandbox forge runs the queue and delivers `merge_group` over real HTTP to
`paved serve`, whose queue consumers run the real jobs. Paved plans each merge group on its head, so what
lands is what was judged together, and applies each group once it lands, as it applies any merge."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from github import Auth, Github

from bot.handlers.push import applied_marker
from bot.handlers.router import route
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.jobs import handle_delivery
from bot.webhook import Delivery, MergeGroup, merge_group_of
from tests.conftest import PROJECT, REPO, SERVICE, World, experimental_change
from tests.test_service import running

T = TypeVar("T")

SECRET = "a-webhook-secret-for-the-merge-queue-tests"
PLAN, APPLY, TESTS = "paved/plan", "paved/apply", "ci/tests"
PERMISSIONS = {"checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
               "metadata": "read", "merge_queues": "read", "administration": "write", "members": "write",
               "organization_custom_properties": "admin"}
EVENTS = ["check_run", "check_suite", "issue_comment", "pull_request", "pull_request_review", "push", "merge_group"]


@dataclass
class Queue:
    """acme's platform repo (growth's team alone) whose main takes pull requests only through a merge queue,
    `paved/plan` required from Paved's App, and Paved serving its webhooks."""

    forge: Sandbox
    app_id: int
    alice: Github

    def wait(self, what: str, look: Callable[[], T], until: Callable[[T], bool], seconds: float = 15) -> T:
        deadline = time.monotonic() + seconds
        seen = look()
        while not until(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {seconds}s for {what}; last saw {seen!r}")
            time.sleep(0.1)
            seen = look()
        return seen

    def checks(self, sha: str, name: str) -> list[str | None]:
        """The conclusions of Paved's own check runs `name` on `sha` (None while one is not finished)."""
        runs = self.alice.get_repo("acme/platform").get_commit(sha).get_check_runs(check_name=name)
        return [r.conclusion for r in runs if r.app.id == self.app_id]

    def concluded(self, sha: str, name: str = PLAN) -> str | None:
        found = self.wait(f"{name} on {sha[:12]}", lambda: self.checks(sha, name),
                          lambda runs: bool(runs) and runs[0] is not None)
        return found[0]

    def pull_request(self, branch: str, name: str) -> int:
        """gina's pull request adding the experimental service `name` (nobody has to approve it), once its
        own `paved/plan` has passed."""
        self.forge.push_files("acme", "platform", branch, {
            f"catalog/services/{branch}.yaml": SERVICE.format(name=name, owner="growth", tier="experimental")},
            by="gina")
        pr = self.forge.open_pull_request("acme", "platform", head=branch, title=f"Add {name}", by="gina")
        assert self.concluded(pr.head_sha) == "success"
        return pr.number

    def merged(self, number: int) -> str:
        pr = self.wait(f"#{number} to merge", lambda: self.forge.pull_request("acme", "platform", number),
                       lambda pr: pr.merged)
        assert pr.merge_commit_sha is not None
        return pr.merge_commit_sha


def protect(alice: Github, contexts: list[str], app_id: int) -> None:
    """Require `paved/plan` from Paved's App on main, and `contexts` from anyone."""
    repo = alice.get_repo(REPO)
    repo._requester.requestJsonAndCheck("PUT", f"{repo.url}/branches/main/protection", input={
        "required_status_checks": {"strict": False, "checks": [{"context": PLAN, "app_id": app_id}] + [
            {"context": c} for c in contexts]},
        "enforce_admins": False, "required_pull_request_reviews": None, "restrictions": None})


@pytest.fixture
def make_queue(tmp_path: Path) -> Iterator[Callable[[list[str]], Queue]]:
    seed = tmp_path / "seed"
    for name in ("schemas", "templates"):
        shutil.copytree(PROJECT / name, seed / name)
    (seed / "catalog" / "teams").mkdir(parents=True)
    shutil.copy(PROJECT / "catalog" / "teams" / "growth.yaml", seed / "catalog" / "teams")
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        for login in ("gina", "hugo"):
            forge.create_user(login)
        forge.create_org("acme", owners=["alice"], members=["gina", "hugo"])
        forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "gina", "write")
        app = forge.create_app("acme", "paved", permissions=PERMISSIONS, events=EVENTS)
        forge.install_app(app.id, "acme")
        forge.require_merge_queue("acme", "platform", "main", by="alice")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data")}), github_api_url=forge.api_url,
            github_app_id=str(app.id), github_private_key=Secret(app.private_key), webhook_secret=Secret(SECRET))
        client = Github(base_url=forge.api_url, auth=Auth.Token(alice.token), retry=None,
                        seconds_between_requests=None, seconds_between_writes=None)
        with running(settings, handle_delivery, consumers=2) as service:
            forge.set_app_webhook(app.id, service.url + "/webhooks/github", SECRET)

            def make(contexts: list[str]) -> Queue:
                protect(client, contexts, app.id)
                return Queue(forge, app.id, client)

            yield make
            forge.wait_for_deliveries()


def test_two_pull_requests_land_through_the_queue_each_planned_on_its_group_and_applied(
        make_queue: Callable[[list[str]], Queue]) -> None:
    queue = make_queue([])
    search, recommend = queue.pull_request("search", "search"), queue.pull_request("recommend", "recommend")

    first = queue.forge.enqueue_pull_request("acme", "platform", search, by="gina")
    second = queue.forge.enqueue_pull_request("acme", "platform", recommend, by="gina")

    assert second.base_sha == first.head_sha  # recommend's group holds search too
    assert (queue.merged(search), queue.merged(recommend)) == (first.head_sha, second.head_sha)
    assert queue.checks(first.head_sha, PLAN) == ["success"] and queue.checks(second.head_sha, PLAN) == ["success"]
    assert queue.forge.branch_sha("acme", "platform", "main") == second.head_sha
    # Paved applies main's head once it lands: both groups, in one apply or two, as any merges.
    assert queue.concluded(second.head_sha, APPLY) == "success"
    for name in ("search", "recommend"):
        assert queue.alice.get_repo(f"acme/{name}").private
    comments = queue.wait("the apply's comment", lambda: [c.body for c in queue.forge.comments(
        "acme", "platform", recommend)], lambda bodies: any(b.startswith(applied_marker(second.head_sha))
                                                              for b in bodies))
    assert sum(b.startswith("<!-- paved:plan -->") for b in comments) == 1  # its own; a group gets none


def test_a_group_whose_requests_clash_fails_its_plan_and_never_lands(make_queue: Callable[[list[str]], Queue]) -> None:
    queue = make_queue([TESTS])  # a second required check, left pending, holds the first group back
    main = queue.forge.branch_sha("acme", "platform", "main")
    tests = queue.alice.get_repo("acme/platform")
    numbers = []
    for branch in ("search", "search-engine"):  # one service name, asked for twice: each fine alone
        number = queue.pull_request(branch, "search")
        tests.get_commit(queue.forge.pull_request("acme", "platform", number).head_sha).create_status(
            "success", context=TESTS)
        numbers.append(number)

    first = queue.forge.enqueue_pull_request("acme", "platform", numbers[0], by="gina")
    second = queue.forge.enqueue_pull_request("acme", "platform", numbers[1], by="gina")

    assert queue.concluded(first.head_sha) == "success"
    assert queue.concluded(second.head_sha) == "failure"
    [run] = tests.get_commit(second.head_sha).get_check_runs(check_name=PLAN)
    assert "1 error to fix" in run.output.title and "search" in run.output.text
    queue.wait("the clashing pull request to leave the queue", lambda: queue.forge.merge_queue("acme", "platform"),
               lambda entries: [e.number for e in entries] == [numbers[0]])
    assert queue.forge.branch_sha("acme", "platform", "main") == main
    clashing = queue.forge.pull_request("acme", "platform", numbers[1])
    assert (clashing.state, clashing.merged) == ("open", False)


# -- reading a merge group: only as GitHub's merge queue names one -------------------------------------------

EXAMPLE = PROJECT / "tests" / "data" / "github" / "webhooks" / "merge_group.checks_requested.2.json"


def example(**changes: object) -> Delivery:
    payload = json.loads(EXAMPLE.read_text())
    payload["merge_group"].update(changes)
    return Delivery("example", "merge_group", payload)


def test_githubs_own_merge_group_delivery_is_read() -> None:
    group = merge_group_of(example())
    assert group == MergeGroup("2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d",
                               "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64",
                               "380387fbc80638b734a49e1be1c4dfec1c01b33c", "refs/heads/main")
    assert (group.branch, group.pull_request) == ("main", 104)


@pytest.mark.parametrize("changes", [
    {"head_ref": "refs/heads/main"},  # not a queue's branch
    {"base_ref": "refs/heads/release"},  # a queue's branch of another base
    {"head_ref": "refs/heads/gh-readonly-queue/main/pr-104-929f82"},
    {"head_ref": "refs/heads/gh-readonly-queue/*/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64",
     "base_ref": "refs/heads/*"},  # a name git would read as a pattern
    {"head_ref": "refs/heads/gh-readonly-queue/a/../b/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64",
     "base_ref": "refs/heads/a/../b"},
    {"head_sha": "HEAD"},
    {"base_sha": "--upload-pack=touch /tmp/x"},
    {"head_sha": None},
    {"base_ref": ["refs/heads/main"]},
], ids=lambda c: next(iter(c)))
def test_a_merge_group_not_named_as_the_queue_names_it_is_ignored(changes: dict[str, object]) -> None:
    assert merge_group_of(example(**changes)) is None
    assert route(None, example(**changes)).handler == "ignored"  # type: ignore[arg-type] - nothing is asked of it


def test_a_destroyed_merge_group_needs_no_plan() -> None:
    destroyed = example()
    destroyed.payload.update(action="destroyed", reason="merged")
    assert route(None, destroyed).result == "a merge group destroyed needs no plan"  # type: ignore[arg-type]


# -- the handler, on deliveries from the sandbox forge's log ---------------------------------------------------


def queued_group(world: World) -> tuple[str, Callable[[str], None]]:
    """A reworded experimental service's pull request, planned and queued on a main that requires `paved/plan`
    from Paved's App and `ci/tests`: the head of its merge group, and a way to set `ci/tests` on a commit."""
    app_id = world.ctx.forge.app_id  # type: ignore[attr-defined]
    carol = Github(base_url=world.forge.api_url, auth=Auth.Token(world.forge.create_token("carol")), retry=None)
    protect(Github(base_url=world.forge.api_url, auth=Auth.Token(world.forge.create_token("alice")), retry=None),
            [TESTS], app_id)
    world.forge.require_merge_queue("acme", "platform", "main", by="alice")
    world.forge.register_webhook("acme", "platform", "http://127.0.0.1:9/hooks")  # the log keeps the payloads

    def tests(sha: str, state: str = "success") -> None:
        carol.get_repo(REPO).get_commit(sha).create_status(state, context=TESTS)

    number = experimental_change(world.forge, "reword", by="carol")
    assert route(world.ctx, Delivery("opened", "pull_request", world.delivered("pull_request", "opened"))).result \
        == "published success"
    tests(world.forge.pull_request("acme", "platform", number).head_sha)
    return world.forge.enqueue_pull_request("acme", "platform", number, by="carol").head_sha, tests


def checks_requested(world: World) -> Delivery:
    return Delivery("requested", "merge_group", world.delivered("merge_group", "checks_requested"))


def test_a_redelivered_merge_group_is_not_planned_twice(world: World) -> None:
    head, _ = queued_group(world)
    assert route(world.ctx, checks_requested(world)).result == "published success"
    assert route(world.ctx, checks_requested(world)).result == f"skipped merge group {head[:12]} is planned already"
    assert len(list(world.ctx.forge._repo(REPO).get_commit(head).get_check_runs(  # type: ignore[attr-defined]
        check_name=PLAN))) == 1


def test_a_merge_group_that_left_the_queue_is_not_planned(world: World) -> None:
    head, tests = queued_group(world)
    tests(head, "failure")  # the queue takes the pull request out before Paved's job runs
    assert route(world.ctx, checks_requested(world)).result == \
        f"skipped the merge group {head[:12]} has left the queue"
    assert world.ctx.forge.check_conclusion(REPO, head, PLAN) is None
