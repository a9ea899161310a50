"""Paved's workflow files, run job by job as a GitHub Actions runner runs them, against the sandbox forge.

These read `.github/workflows/paved.yml` and `paved-publish.yml` and run each job's steps with bash, with
the tokens GitHub would give each job (see `tests/actions_runner.py`), so what is tested is the workflow
as written: its `if:`s, its permissions, its steps' environment and the artifact between two workflows.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.apply import read_records
from tests.actions_runner import ActionsRunner
from tests.conftest import AB_TESTING, PROJECT, World
from tests.test_actions_mode import APP_PERMISSIONS

WORKFLOWS = {f".github/workflows/{name}": (PROJECT / ".github" / "workflows" / name).read_text()
             for name in ("paved.yml", "paved-publish.yml")}


@pytest.fixture
def runner(world: World, tmp_path: Path) -> ActionsRunner:
    """acme/platform with Paved's workflows adopted on main, and the platform's App installed."""
    world.forge.push_files("acme", "platform", "main", dict(WORKFLOWS), by="alice", message="Adopt Paved's workflows")
    app = world.forge.create_app("acme", "acme-paved", permissions=APP_PERMISSIONS)
    installation = world.forge.install_app(app.id, "acme")
    return ActionsRunner(world.forge, tmp_path / "runner", installation.id)


def reworded(world: World, owner: str = "acme") -> dict[str, str]:
    text = world.forge.read_file(owner, "platform", AB_TESTING).decode()
    return {AB_TESTING: text.replace("records which variant they saw", "remembers it", 1)}


def test_a_pull_request_runs_the_plan_job_alone_and_it_publishes_with_the_job_token(
        world: World, runner: ActionsRunner) -> None:
    world.forge.push_files("acme", "platform", "change", reworded(world), by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="change", title="Reword", by="carol").number

    [job] = runner.run_jobs("paved.yml", "pull_request", world.delivered("pull_request", "opened"))

    assert (job.name, job.returncode) == ("plan", 0), job.output
    assert world.check(number)[0] == "success"
    assert not (runner.artifacts / "paved-plan").exists()


def fork_pull_request(world: World, files: dict[str, str]) -> int:
    world.forge.create_user("mallory")
    world.forge.fork("acme", "platform", by="mallory")
    world.forge.push_files("mallory", "platform", "idea", files, by="mallory")
    return world.forge.open_pull_request("acme", "platform", head="mallory:idea", title="From a fork",
                                         by="mallory").number


def test_a_forks_pull_request_is_planned_read_only_then_published_by_the_workflow_run_job(
        world: World, runner: ActionsRunner) -> None:
    number = fork_pull_request(world, reworded(world))

    [planned] = runner.run_jobs("paved.yml", "pull_request", world.delivered("pull_request", "opened"))
    assert (planned.returncode, world.plan_comments(number)) == (0, []), planned.output
    [published] = runner.run_jobs("paved-publish.yml", "workflow_run",
                                  world.forge.complete_workflow_run("acme", "platform", number))

    assert (published.name, published.returncode) == ("publish", 0), published.output
    assert world.check(number)[0] == "success" and len(world.plan_comments(number)) == 1


def test_a_fork_that_rewrites_the_publishing_workflow_changes_nothing_it_runs(
        world: World, runner: ActionsRunner) -> None:
    hostile = WORKFLOWS[".github/workflows/paved-publish.yml"].replace(
        "        run: paved ci\n", "        run: touch \"$RUNNER_TEMP/../../forked\" && paved ci\n")
    number = fork_pull_request(world, {**reworded(world), ".github/workflows/paved-publish.yml": hostile})
    runner.run_jobs("paved.yml", "pull_request", world.delivered("pull_request", "opened"))

    [published] = runner.run_jobs("paved-publish.yml", "workflow_run",
                                  world.forge.complete_workflow_run("acme", "platform", number))

    assert published.returncode == 0, published.output
    assert not (runner.root / "forked").exists()
    assert len(world.plan_comments(number)) == 1


def test_a_branch_of_the_repository_runs_no_publishing_job(world: World, runner: ActionsRunner) -> None:
    world.forge.push_files("acme", "platform", "change", reworded(world), by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="change", title="Reword", by="carol").number

    jobs = runner.run_jobs("paved-publish.yml", "workflow_run",
                           world.forge.complete_workflow_run("acme", "platform", number))

    assert jobs == []


def without_databases(world: World) -> dict[str, str]:
    """The catalogue's services without their databases: in Actions a database needs a server, which these
    tests do not run."""
    files = {}
    for path in ("catalog/services/ab-testing.yaml", "catalog/services/events-ingest.yaml",
                 "catalog/services/payments-api.yaml"):
        documents = world.forge.read_file("acme", "platform", path).decode().split("\n---\n")
        files[path] = "\n---\n".join(d for d in documents if "kind: Database" not in d).rstrip("\n") + "\n"
    return files


def test_a_merge_runs_the_apply_job_which_applies_with_the_apps_token(world: World, runner: ActionsRunner) -> None:
    for login in ("dana", "erik", "farah", "gina", "hugo", "maya", "oskar", "priya"):  # the catalogue's people
        world.forge.create_user(login)
    world.forge.push_files("acme", "platform", "main", without_databases(world), by="alice")

    [job] = runner.run_jobs("paved.yml", "push", world.delivered("push"))

    assert (job.name, job.returncode) == ("apply", 0), job.output + job.summary


def test_an_apply_and_a_plan_on_a_pull_request_run_at_once_and_both_finish(world: World, runner: ActionsRunner) -> None:
    for login in ("dana", "erik", "farah", "gina", "hugo", "maya", "oskar", "priya"):
        world.forge.create_user(login)
    world.forge.push_files("acme", "platform", "main", without_databases(world), by="alice")
    merged = world.delivered("push")
    world.forge.push_files("acme", "platform", "change", reworded(world), by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="change", title="Reword", by="carol").number
    opened = world.delivered("pull_request", "opened")

    with ThreadPoolExecutor(2) as pool:
        applying = pool.submit(runner.run_jobs, "paved.yml", "push", merged)
        planning = pool.submit(runner.run_jobs, "paved.yml", "pull_request", opened)
        [applied], [planned] = applying.result(), planning.result()

    assert (applied.returncode, planned.returncode) == (0, 0), applied.output + planned.output
    assert world.check(number)[0] == "success"


def test_two_applies_of_one_merge_at_once_apply_it_once_and_keep_its_record(world: World,
                                                                           runner: ActionsRunner) -> None:
    for login in ("dana", "erik", "farah", "gina", "hugo", "maya", "oskar", "priya"):
        world.forge.create_user(login)
    world.forge.push_files("acme", "platform", "main", without_databases(world), by="alice")
    merged = world.delivered("push")

    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(runner.run_jobs, "paved.yml", "push", merged) for _ in range(2)]
        outputs = [job.output for future in runs for job in future.result()]

    assert sum("paved ci: push: apply: applied" in output for output in outputs) == 1, outputs
    assert applied_notes(world, runner) == 1


def applied_notes(world: World, runner: ActionsRunner) -> int:
    """How many successful applies the head of main records in its note (refs/notes/paved), as git has it."""
    clone = runner.root / "notes-clone"
    subprocess.run(["git", "clone", "--quiet", "--bare", world.forge.clone_url("acme", "platform"), str(clone)],
                   check=True, capture_output=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "--quiet", "origin", "refs/notes/paved:refs/notes/paved"],
                   check=True, capture_output=True)
    note = subprocess.run(["git", "-C", str(clone), "notes", "--ref=paved", "show", "main"], check=True,
                          capture_output=True, text=True).stdout
    return sum(record.succeeded for record in read_records(note))
