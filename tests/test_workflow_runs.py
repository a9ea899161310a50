"""Paved's workflow files, run job by job as a GitHub Actions runner runs them, against the sandbox forge.

These read `.github/workflows/paved.yml` and `paved-publish.yml` and run each job's steps with bash, with
the tokens and secrets GitHub would give each job (see `tests/actions_runner.py`), so what is tested is the
workflow as written: its `if:`s, its permissions, its environment, its steps' environment and the artifact
between two workflows. The platform's App keeps its key in the `paved` environment, which only the default
branch may deploy from, and `paved/plan` is required from that App, as README.md tells platform engineers.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bot.apply import read_records
from bot.sandbox import ApiError, AppCredentials
from tests.actions_runner import ActionsRunner, Environment, JobRun
from tests.conftest import AB_TESTING, PROJECT, World
from tests.test_actions_mode import APP_PERMISSIONS

WORKFLOWS = {f".github/workflows/{name}": (PROJECT / ".github" / "workflows" / name).read_text()
             for name in ("paved.yml", "paved-publish.yml")}
PAVED_YML = ".github/workflows/paved.yml"


@pytest.fixture
def app(world: World) -> AppCredentials:
    """The platform's own GitHub App, installed on acme."""
    credentials = world.forge.create_app("acme", "acme-paved", permissions=APP_PERMISSIONS)
    world.forge.install_app(credentials.id, "acme")
    return credentials


@pytest.fixture
def runner(world: World, app: AppCredentials, tmp_path: Path) -> ActionsRunner:
    """acme/platform with Paved's workflows adopted on main, the App's key in the `paved` environment (which
    only main may deploy from, and no repository secret), and `paved/plan` required from the App."""
    world.forge.push_files("acme", "platform", "main", dict(WORKFLOWS), by="alice", message="Adopt Paved's workflows")
    token = world.forge.create_token("alice")
    requests.put(f"{world.forge.api_url}/repos/acme/platform/branches/main/protection", timeout=30, json={
        "required_status_checks": {"strict": False, "checks": [{"context": "paved/plan", "app_id": app.id}]},
        "enforce_admins": False, "required_pull_request_reviews": None, "restrictions": None},
        headers={"Authorization": f"token {token}"}).raise_for_status()
    key = {"PAVED_APP_ID": str(app.id), "PAVED_APP_PRIVATE_KEY": app.private_key}
    return ActionsRunner(world.forge, tmp_path / "runner", environments={"paved": Environment(("main",), key)})


def reworded(world: World, owner: str = "acme") -> dict[str, str]:
    text = world.forge.read_file(owner, "platform", AB_TESTING).decode()
    return {AB_TESTING: text.replace("records which variant they saw", "remembers it", 1)}


def plan_checks(world: World, number: int) -> dict[str, str]:
    """The `paved/plan` check runs on the pull request's head, by the slug of the app that published each:
    its conclusion, or its status while it has none."""
    head = world.forge.pull_request("acme", "platform", number).head_sha
    answer = requests.get(f"{world.forge.api_url}/repos/acme/platform/commits/{head}/check-runs", timeout=30,
                          params={"check_name": "paved/plan", "filter": "all"})
    answer.raise_for_status()
    return {run["app"]["slug"]: run["conclusion"] or run["status"] for run in answer.json()["check_runs"]}


def publish(world: World, runner: ActionsRunner, number: int) -> JobRun:
    """GitHub runs `Paved publish` once the pull request's `Paved` run has completed."""
    [published] = runner.run_jobs("paved-publish.yml", "workflow_run",
                                  world.forge.complete_workflow_run("acme", "platform", number))
    return published


def test_a_pull_request_is_planned_read_only_and_published_by_the_app_through_workflow_run(
        world: World, runner: ActionsRunner) -> None:
    world.forge.push_files("acme", "platform", "change", reworded(world), by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="change", title="Reword", by="carol").number

    [planned] = runner.run_jobs("paved.yml", "pull_request", world.delivered("pull_request", "opened"))
    assert (planned.name, planned.returncode) == ("plan", 0), planned.output
    assert (plan_checks(world, number), world.plan_comments(number)) == ({}, [])
    published = publish(world, runner, number)

    assert (published.name, published.returncode) == ("publish", 0), published.output
    assert plan_checks(world, number) == {"acme-paved": "success"}
    assert len(world.plan_comments(number)) == 1


def fork_pull_request(world: World, files: dict[str, str]) -> int:
    world.forge.create_user("mallory")
    world.forge.fork("acme", "platform", by="mallory")
    world.forge.push_files("mallory", "platform", "idea", files, by="mallory")
    return world.forge.open_pull_request("acme", "platform", head="mallory:idea", title="From a fork",
                                         by="mallory").number


def test_a_forks_pull_request_is_planned_read_only_then_published_by_the_app(
        world: World, runner: ActionsRunner) -> None:
    number = fork_pull_request(world, reworded(world))

    [planned] = runner.run_jobs("paved.yml", "pull_request", world.delivered("pull_request", "opened"))
    assert (planned.returncode, world.plan_comments(number)) == (0, []), planned.output
    published = publish(world, runner, number)

    assert (published.name, published.returncode) == ("publish", 0), published.output
    assert plan_checks(world, number) == {"acme-paved": "success"}
    assert len(world.plan_comments(number)) == 1


def test_a_fork_that_rewrites_the_publishing_workflow_changes_nothing_it_runs(
        world: World, runner: ActionsRunner) -> None:
    hostile = WORKFLOWS[".github/workflows/paved-publish.yml"].replace(
        "        run: paved ci\n", "        run: touch \"$RUNNER_TEMP/../../forked\" && paved ci\n")
    number = fork_pull_request(world, {**reworded(world), ".github/workflows/paved-publish.yml": hostile})
    runner.run_jobs("paved.yml", "pull_request", world.delivered("pull_request", "opened"))

    published = publish(world, runner, number)

    assert published.returncode == 0, published.output
    assert not (runner.root / "forked").exists()
    assert len(world.plan_comments(number)) == 1


# A job a pull request adds to Paved's workflow: named like the required check, it passes at once.
IMPOSTOR = """
  impostor:
    name: paved/plan
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - run: "true"
"""


@pytest.mark.parametrize("author", ["carol, on a branch of the repository", "mallory, from a fork"])
def test_a_job_a_pull_request_names_paved_plan_passes_no_gate_while_approvals_are_pending(
        world: World, runner: ActionsRunner, author: str) -> None:
    # A change to .github/ is a platform change: it waits for the platform owners' approval.
    files = {PAVED_YML: WORKFLOWS[PAVED_YML] + IMPOSTOR}
    if author.startswith("mallory"):
        number = fork_pull_request(world, files)
    else:
        world.forge.push_files("acme", "platform", "impostor", files, by="carol")
        number = world.forge.open_pull_request("acme", "platform", head="impostor", title="CI", by="carol").number

    jobs = runner.run_jobs("paved.yml", "pull_request", world.delivered("pull_request", "opened"))
    assert {job.name: job.returncode for job in jobs} == {"plan": 0, "impostor": 0}
    published = publish(world, runner, number)

    assert plan_checks(world, number) == {"github-actions": "success", "acme-paved": "in_progress"}, published.output
    with pytest.raises(ApiError, match='Required status check "paved/plan" is expected'):
        world.forge.merge("acme", "platform", number, by="carol")


# Jobs a pull request adds to Paved's workflow to take the App's key: one asks for the environment that
# holds it, one reads it without.
THIEVES = """
  with-environment:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    environment: paved
    steps:
      - run: echo "$KEY" > "$RUNNER_TEMP/../../taken-with-environment"
        env:
          KEY: ${{ secrets.PAVED_APP_PRIVATE_KEY }}
  without-environment:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - run: echo "$KEY" > "$RUNNER_TEMP/../../taken-without-environment"
        env:
          KEY: ${{ secrets.PAVED_APP_PRIVATE_KEY }}
"""


def test_a_pull_request_on_a_branch_of_the_repository_cannot_take_the_apps_key(
        world: World, runner: ActionsRunner) -> None:
    world.forge.push_files("acme", "platform", "thief", {PAVED_YML: WORKFLOWS[PAVED_YML] + THIEVES}, by="carol")
    world.forge.open_pull_request("acme", "platform", head="thief", title="CI", by="carol")

    jobs = {job.name: job for job in runner.run_jobs("paved.yml", "pull_request",
                                                     world.delivered("pull_request", "opened"))}

    assert jobs["with-environment"].returncode == 1
    assert "is not allowed to deploy to paved" in jobs["with-environment"].output
    assert not (runner.root / "taken-with-environment").exists()
    assert (runner.root / "taken-without-environment").read_text() == "\n"


def test_a_push_to_another_branch_cannot_take_the_apps_key_by_running_the_apply_job(
        world: World, runner: ActionsRunner) -> None:
    every_branch = WORKFLOWS[PAVED_YML].replace("  push:\n    branches: [main]\n", "  push:\n").replace(
        "        run: paved ci\n", "        run: echo \"$GITHUB_TOKEN\" > \"$RUNNER_TEMP/../../taken\"\n")
    world.forge.push_files("acme", "platform", "thief", {PAVED_YML: every_branch}, by="carol")

    [apply] = runner.run_jobs("paved.yml", "push", world.delivered("push"))

    assert apply.returncode == 1 and "is not allowed to deploy to paved" in apply.output
    assert not (runner.root / "taken").exists()


def test_a_plan_command_is_answered_by_the_app_from_the_default_branchs_workflow(
        world: World, runner: ActionsRunner) -> None:
    world.forge.push_files("acme", "platform", "change", reworded(world), by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="change", title="Reword", by="carol").number
    world.forge.comment("acme", "platform", number, "/paved plan", by="carol")

    [reply] = runner.run_jobs("paved.yml", "issue_comment", world.delivered("issue_comment", "created"))

    assert (reply.name, reply.returncode) == ("reply", 0), reply.output
    assert plan_checks(world, number) == {"acme-paved": "success"}


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
    world.forge.open_pull_request("acme", "platform", head="change", title="Reword", by="carol")
    opened = world.delivered("pull_request", "opened")

    with ThreadPoolExecutor(2) as pool:
        applying = pool.submit(runner.run_jobs, "paved.yml", "push", merged)
        planning = pool.submit(runner.run_jobs, "paved.yml", "pull_request", opened)
        [applied], [planned] = applying.result(), planning.result()

    assert (applied.returncode, planned.returncode) == (0, 0), applied.output + planned.output
    assert "plan: planned; this job's token is read-only" in planned.output


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


def notes(world: World, runner: ActionsRunner, ref: str, commit: str) -> str:
    """The note on `commit` under `refs/notes/<ref>`, as the forge has it."""
    clone = runner.root / f"{ref}-clone"
    subprocess.run(["git", "clone", "--quiet", "--bare", world.forge.clone_url("acme", "platform"), str(clone)],
                   check=True, capture_output=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "--quiet", "origin", f"refs/notes/{ref}:refs/notes/{ref}"],
                   check=True, capture_output=True)
    return subprocess.run(["git", "-C", str(clone), "notes", f"--ref={ref}", "show", commit], check=True,
                          capture_output=True, text=True).stdout


def test_a_published_plan_is_recorded_for_paved_stats_while_an_apply_writes_its_own_note(
        world: World, runner: ActionsRunner) -> None:
    for login in ("dana", "erik", "farah", "gina", "hugo", "maya", "oskar", "priya"):
        world.forge.create_user(login)
    world.forge.push_files("acme", "platform", "main", without_databases(world), by="alice")
    merged = world.delivered("push")
    world.forge.push_files("acme", "platform", "change", reworded(world), by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="change", title="Reword", by="carol").number
    [planned] = runner.run_jobs("paved.yml", "pull_request", world.delivered("pull_request", "opened"))
    assert planned.returncode == 0, planned.output

    with ThreadPoolExecutor(2) as pool:
        applying = pool.submit(runner.run_jobs, "paved.yml", "push", merged)
        publishing = pool.submit(publish, world, runner, number)
        [applied], published = applying.result(), publishing.result()

    assert (applied.returncode, published.returncode) == (0, 0), applied.output + published.output
    head = world.forge.pull_request("acme", "platform", number).head_sha
    [plan] = [json.loads(line) for line in notes(world, runner, "paved-plans", head).splitlines() if line.strip()]
    assert (plan["pull_request"], plan["head"]) == (number, head)
    assert applied_notes(world, runner) == 1
