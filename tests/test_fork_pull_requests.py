"""Pull requests in GitHub Actions, from forks and from branches alike, done the way GitHub recommends.

A pull request's job runs the workflow as the pull request changed it, so Paved's plan job has a read-only
token and no secrets (a fork's gets nothing more whatever the workflow asks). It plans, prints the findings
as annotations, writes the summary and leaves a record naming the pull request; it passes unless the plan
has errors. The `Paved publish` workflow (`workflow_run`) then publishes the check and the comment with the
platform App's token, believing nothing the pull request's job wrote beyond which pull request to look at,
and planning the head itself with the base branch's rules.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.handoff import RECORD
from tests.conftest import AB_TESTING, REPO, World
from tests.test_actions_mode import APP_PERMISSIONS, JOB_PERMISSIONS, AppRunner, Runner, paved_ci

GROWTH = "catalog/teams/growth.yaml"
TEAM_SCHEMA = "schemas/kinds/team.json"


@dataclass
class ForkRunner(Runner):
    """The runner of a fork's pull request job: a read-only token, whatever the workflow asks."""

    @property
    def record(self) -> Path:
        return self.folder / "temp" / "paved-plan" / RECORD


@dataclass
class PublishRunner(AppRunner):
    """The runner of the `Paved publish` job, started by `workflow_run` in the base repository, with the
    platform App's installation token."""

    def publish(self, payload: dict[str, object], record: Path | bytes | None) -> object:
        """Run `paved ci` for `payload`, with `record` as the artifact the download step left."""
        (self.folder / "event.json").write_text(json.dumps(payload), encoding="utf-8")
        folder = self.folder / "temp" / "paved-plan"
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(record, Path):
            shutil.copy(record, folder / RECORD)
        elif isinstance(record, bytes):
            (folder / RECORD).write_bytes(record)
        return paved_ci(self.environment("workflow_run"))


@pytest.fixture
def fork_runner(world: World, tmp_path: Path) -> ForkRunner:
    folder = tmp_path / "fork-runner"
    (folder / "temp").mkdir(parents=True)
    return ForkRunner(world, folder, world.forge.job_token("acme", "platform", JOB_PERMISSIONS, fork=True))


# What paved.yml grants the plan job of every pull request.
PLAN_JOB_PERMISSIONS = {"contents": "read", "pull_requests": "read"}


@pytest.fixture
def branch_runner(world: World, tmp_path: Path) -> ForkRunner:
    """The runner of the plan job of a pull request from a branch of the platform repo."""
    folder = tmp_path / "branch-runner"
    (folder / "temp").mkdir(parents=True)
    return ForkRunner(world, folder, world.forge.job_token("acme", "platform", PLAN_JOB_PERMISSIONS))


@pytest.fixture
def publisher(world: World, tmp_path: Path) -> PublishRunner:
    app = world.forge.create_app("acme", "acme-paved", permissions=APP_PERMISSIONS)
    installation = world.forge.install_app(app.id, "acme")
    folder = tmp_path / "publish-runner"
    (folder / "temp").mkdir(parents=True)
    return PublishRunner(world, folder, world.forge.installation_token(installation.id))


def fork_change(world: World, files: dict[str, str], branch: str = "idea") -> int:
    """mallory, who is no member of acme, forks the platform repo and proposes `files` from her fork."""
    if world.forge.forge.account("mallory") is None:
        world.forge.create_user("mallory")
        world.forge.fork("acme", "platform", by="mallory")
    world.forge.push_files("mallory", "platform", branch, dict(files), by="mallory")
    return world.forge.open_pull_request("acme", "platform", head=f"mallory:{branch}", title="From a fork",
                                         by="mallory").number


def reworded(world: World) -> dict[str, str]:
    """ab-testing reworded: a change nobody has to approve."""
    text = world.forge.read_file("acme", "platform", AB_TESTING).decode()
    return {AB_TESTING: text.replace("records which variant they saw", "remembers it", 1)}


def typo(world: World) -> dict[str, str]:
    return {GROWTH: world.forge.read_file("acme", "platform", GROWTH).decode().replace("monthly: 80", "montly: 80")}


def head(world: World, number: int) -> str:
    return world.forge.pull_request("acme", "platform", number).head_sha


def runs_on(world: World, sha: str) -> list[str]:
    commit = world.ctx.forge._repo(REPO).get_commit(sha)  # type: ignore[attr-defined]
    return [run.conclusion or run.status for run in commit.get_check_runs(filter="all")]


# -- the fork's own job -----------------------------------------------------------------------------------


def test_a_forks_plan_job_passes_when_only_its_read_only_token_kept_it_from_publishing(
        fork_runner: ForkRunner) -> None:
    number = fork_change(fork_runner.world, reworded(fork_runner.world))

    done = fork_runner.run("pull_request", "opened")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "read-only" in done.stdout.splitlines()[-1]
    world = fork_runner.world
    assert world.comments(number) == [] and runs_on(world, head(world, number)) == []


def test_a_forks_plan_job_prints_its_findings_as_annotations_and_fails_on_errors(fork_runner: ForkRunner) -> None:
    fork_change(fork_runner.world, typo(fork_runner.world))

    done = fork_runner.run("pull_request", "opened")

    assert done.returncode == 1, done.stdout + done.stderr
    assert any(line.startswith(f"::error file={GROWTH},line=") for line in done.stdout.splitlines())
    assert "\n<!-- paved:plan -->\n" in fork_runner.summary.read_text(encoding="utf-8")


def test_a_forks_plan_job_leaves_a_record_naming_the_pull_request_and_its_head(fork_runner: ForkRunner) -> None:
    world = fork_runner.world
    number = fork_change(world, reworded(world))

    fork_runner.run("pull_request", "opened")

    pull = world.forge.pull_request("acme", "platform", number)
    assert json.loads(fork_runner.record.read_text()) == {
        "pull_request": number, "head_sha": pull.head_sha,
        "base_sha": world.forge.branch_sha("acme", "platform", "main")}


# -- the publishing job -----------------------------------------------------------------------------------


def test_the_publishing_job_publishes_one_check_and_one_comment_on_the_forks_head(
        fork_runner: ForkRunner, publisher: PublishRunner) -> None:
    world = fork_runner.world
    number = fork_change(world, reworded(world))
    fork_runner.run("pull_request", "opened")

    done = publisher.publish(world.forge.complete_workflow_run("acme", "platform", number), fork_runner.record)

    assert done.returncode == 0, done.stdout + done.stderr  # type: ignore[attr-defined]
    assert runs_on(world, head(world, number)) == ["success"]
    assert len(world.plan_comments(number)) == 1


def test_the_publishing_job_judges_by_the_base_branchs_rules_not_the_forks(
        fork_runner: ForkRunner, publisher: PublishRunner) -> None:
    world = fork_runner.world
    loosened = world.forge.read_file("acme", "platform", TEAM_SCHEMA).decode().replace(
        '"additionalProperties": false,\n          "required": [\n            "monthly"\n          ],',
        '"additionalProperties": true,')
    number = fork_change(world, {**typo(world), TEAM_SCHEMA: loosened})
    fork_runner.run("pull_request", "opened")

    done = publisher.publish(world.forge.complete_workflow_run("acme", "platform", number, conclusion="failure"),
                             fork_runner.record)

    assert done.returncode == 1, done.stdout + done.stderr  # type: ignore[attr-defined]
    assert world.check(number)[0] == "failure"


def test_a_branch_of_the_repository_is_planned_read_only_and_published_as_a_forks_is(
        branch_runner: ForkRunner, publisher: PublishRunner) -> None:
    world = branch_runner.world
    world.forge.push_files("acme", "platform", "own", reworded(world), by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="own", title="Own", by="carol").number
    planned = branch_runner.run("pull_request", "opened")
    assert planned.returncode == 0 and runs_on(world, head(world, number)) == [], planned.stdout + planned.stderr

    done = publisher.publish(world.forge.complete_workflow_run("acme", "platform", number), branch_runner.record)

    assert done.returncode == 0, done.stdout + done.stderr  # type: ignore[attr-defined]
    assert runs_on(world, head(world, number)) == ["success"]
    assert len(world.plan_comments(number)) == 1


def test_the_publishing_job_publishes_as_the_platforms_app(fork_runner: ForkRunner,
                                                           publisher: PublishRunner) -> None:
    world = fork_runner.world
    number = fork_change(world, reworded(world))
    fork_runner.run("pull_request", "opened")

    publisher.publish(world.forge.complete_workflow_run("acme", "platform", number), fork_runner.record)

    commit = world.ctx.forge._repo(REPO).get_commit(head(world, number))  # type: ignore[attr-defined]
    assert [run.app.slug for run in commit.get_check_runs(filter="all")] == ["acme-paved"]


# -- a record the publishing job does not believe ---------------------------------------------------------


def tampered(fork_runner: ForkRunner, publisher: PublishRunner, record: bytes) -> tuple[object, int]:
    world = fork_runner.world
    number = fork_change(world, reworded(world))
    fork_runner.run("pull_request", "opened")
    done = publisher.publish(world.forge.complete_workflow_run("acme", "platform", number), record)
    return done, number


def assert_nothing_published(world: World, number: int, done: object, reason: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr  # type: ignore[attr-defined]
    assert reason in done.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in done.stderr  # type: ignore[attr-defined]
    assert world.plan_comments(number) == [] and runs_on(world, head(world, number)) == []


def test_a_record_naming_another_pull_request_publishes_nothing(fork_runner: ForkRunner,
                                                                publisher: PublishRunner) -> None:
    world = fork_runner.world
    world.forge.push_files("acme", "platform", "other", reworded(world), by="carol")
    other = world.forge.open_pull_request("acme", "platform", head="other", title="Other", by="carol").number
    record = {"pull_request": other, "head_sha": "", "base_sha": "0" * 40}
    number = fork_change(world, reworded(world), branch="idea2")
    record["head_sha"] = head(world, number)

    done = publisher.publish(world.forge.complete_workflow_run("acme", "platform", number),
                             json.dumps(record).encode())

    assert_nothing_published(world, number, done, "not from mallory/platform")
    assert world.plan_comments(other) == []


def test_a_record_naming_another_head_publishes_nothing(fork_runner: ForkRunner, publisher: PublishRunner) -> None:
    world = fork_runner.world
    number = fork_change(world, reworded(world))
    record = {"pull_request": number, "head_sha": world.forge.branch_sha("acme", "platform", "main"),
              "base_sha": "0" * 40}

    done = publisher.publish(world.forge.complete_workflow_run("acme", "platform", number),
                             json.dumps(record).encode())

    assert_nothing_published(world, number, done, "but GitHub says the run was for")


def test_an_oversized_record_publishes_nothing(fork_runner: ForkRunner, publisher: PublishRunner) -> None:
    done, number = tampered(fork_runner, publisher, b"{" + b" " * 4096 + b"}")

    assert_nothing_published(fork_runner.world, number, done, "larger than 1024 bytes")


@pytest.mark.parametrize(("record", "reason"), [
    (b"not json", "is not JSON"),
    (b"[1, 2]", "is not a JSON object"),
    (b'{"pull_request": 1, "pull_request": 2, "head_sha": "", "base_sha": ""}', "names a field twice"),
    (b'{"pull_request": true, "head_sha": "' + b"a" * 40 + b'", "base_sha": "' + b"a" * 40 + b'"}',
     "is not a pull request number"),
    (b'{"pull_request": 1, "head_sha": "HEAD", "base_sha": "' + b"a" * 40 + b'"}', "head_sha is not a commit id"),
    (b'{"pull_request": 1, "head_sha": "' + b"a" * 40 + b'", "base_sha": "' + b"a" * 40 + b'", "run": "x"}',
     "unexpected run"),
])
def test_a_malformed_record_publishes_nothing_and_says_why(fork_runner: ForkRunner, publisher: PublishRunner,
                                                           record: bytes, reason: str) -> None:
    done, number = tampered(fork_runner, publisher, record)

    assert_nothing_published(fork_runner.world, number, done, reason)


def test_a_link_in_place_of_the_record_publishes_nothing(fork_runner: ForkRunner, publisher: PublishRunner) -> None:
    world = fork_runner.world
    number = fork_change(world, reworded(world))
    fork_runner.run("pull_request", "opened")
    folder = publisher.folder / "temp" / "paved-plan"
    folder.mkdir(parents=True)
    (folder / RECORD).symlink_to(fork_runner.record)

    done = publisher.publish(world.forge.complete_workflow_run("acme", "platform", number), None)

    assert_nothing_published(world, number, done, "it is a link")


def test_no_record_publishes_nothing(fork_runner: ForkRunner, publisher: PublishRunner) -> None:
    world = fork_runner.world
    number = fork_change(world, reworded(world))

    done = publisher.publish(world.forge.complete_workflow_run("acme", "platform", number), None)

    assert_nothing_published(world, number, done, "left none")
