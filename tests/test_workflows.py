"""Paved's own GitHub workflows, and the CI workflow each golden-path template renders, are sound.

They validate against GitHub's workflow schema (the copy vendored in check-jsonschema, so no
network), grant read-only permissions by default, and pin every action to a full commit SHA.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.main import cookiecutter

from tests.actions_runner import evaluate, substitute

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
TEMPLATES = ROOT / "templates"
TEMPLATE_NAMES = ("fastapi-service", "worker")

REPOSITORY_WORKFLOWS = sorted(
    path.relative_to(ROOT).as_posix() for path in [*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")]
)
RENDERED_WORKFLOWS = [f"{name}/rendered/.github/workflows/ci.yml" for name in TEMPLATE_NAMES]

PINNED = re.compile(r"[^@\s]+@[0-9a-f]{40}")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+)*\b")


# Rendering never reads the user's own cookiecutter configuration (the shared fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("isolated_cookiecutter")


@pytest.fixture(scope="module", params=[*REPOSITORY_WORKFLOWS, *RENDERED_WORKFLOWS])
def workflow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each workflow file: Paved's own, and the CI workflow of each freshly rendered template."""
    case: str = request.param
    if case in REPOSITORY_WORKFLOWS:
        return ROOT / case
    template = case.split("/")[0]
    project = cookiecutter(
        str(TEMPLATES / template),
        no_input=True,
        extra_context={"name": "payments-api", "owner": "payments", "description": "Takes payments."},
        output_dir=str(tmp_path_factory.mktemp(template)),
    )
    return Path(project) / ".github" / "workflows" / "ci.yml"


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


def triggers(document: dict[str, Any]) -> Any:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return document.get("on", document.get(True))


def action_references(document: dict[str, Any]) -> list[str]:
    """Every `uses:` of the workflow: reusable workflows called by jobs and actions used by steps."""
    references = []
    for job in document.get("jobs", {}).values():
        if "uses" in job:
            references.append(job["uses"])
        references += [step["uses"] for step in job.get("steps", []) if "uses" in step]
    return references


def test_paved_ships_its_ci_and_paved_check_workflows() -> None:
    assert {"ci.yml", "paved-check.yml"} <= {Path(path).name for path in REPOSITORY_WORKFLOWS}


def test_workflow_validates_against_the_github_workflow_schema(workflow: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", workflow],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_sets_top_level_permissions(workflow: Path) -> None:
    assert "permissions" in load(workflow)


def test_workflow_grants_no_write_permission_at_the_top_level(workflow: Path) -> None:
    permissions = load(workflow)["permissions"]

    if isinstance(permissions, str):
        assert permissions in ("read-all", "{}")
    else:
        assert {scope: level for scope, level in permissions.items() if level not in ("read", "none")} == {}


def test_workflow_pins_every_action_to_a_full_commit_sha(workflow: Path) -> None:
    references = [ref for ref in action_references(load(workflow)) if not ref.startswith("./")]

    assert references
    assert [ref for ref in references if not PINNED.fullmatch(ref)] == []


def test_every_pinned_action_names_its_version_in_a_comment(workflow: Path) -> None:
    unlabelled = []
    for line in workflow.read_text().splitlines():
        match = USES_LINE.match(line)
        if match and not match["ref"].startswith("./") and not VERSION_COMMENT.search(match["rest"]):
            unlabelled.append(line.strip())

    assert unlabelled == []


def test_ci_tests_python_3_11_and_3_12_against_postgres_and_redis() -> None:
    job = next(iter(load(WORKFLOWS_DIR / "ci.yml")["jobs"].values()))
    services = job["services"]

    assert job["runs-on"] == "ubuntu-latest"
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "5432:5432" in services["postgres"]["ports"]
    assert services["redis"]["image"] == "redis:7"
    assert "6379:6379" in services["redis"]["ports"]


def test_ci_runs_on_push_and_pull_request() -> None:
    assert set(triggers(load(WORKFLOWS_DIR / "ci.yml"))) == {"push", "pull_request"}


def test_ci_runs_the_project_checks_with_ci_set() -> None:
    job = next(iter(load(WORKFLOWS_DIR / "ci.yml")["jobs"].values()))
    run_steps = [step for step in job["steps"] if "run" in step]

    assert [step["run"] for step in run_steps] == ["bash .ci/run"]
    assert run_steps[0]["env"]["CI"] == "true"


def test_paved_check_runs_on_pull_requests_to_the_default_branch_and_on_merge_groups() -> None:
    assert triggers(load(WORKFLOWS_DIR / "paved-check.yml")) == {
        "pull_request": {"branches": ["main"]}, "merge_group": {"types": ["checks_requested"]}}


def test_paved_check_fetches_full_history_for_the_base_comparison() -> None:
    steps = next(iter(load(WORKFLOWS_DIR / "paved-check.yml")["jobs"].values()))["steps"]
    checkout = next(step for step in steps if "actions/checkout@" in step.get("uses", ""))

    assert checkout["with"]["fetch-depth"] == 0


def test_paved_check_installs_a_pinned_paved_release() -> None:
    text = (WORKFLOWS_DIR / "paved-check.yml").read_text()

    assert re.search(r'pip install "paved @ git\+https://github\.com/[\w.-]+/paved@v\d+\.\d+\.\d+"', text)


def test_paved_check_plans_the_pull_request_as_github_annotations() -> None:
    steps = next(iter(load(WORKFLOWS_DIR / "paved-check.yml")["jobs"].values()))["steps"]
    plan = next(step for step in steps if step.get("run", "").startswith("paved plan"))

    assert plan["run"] == ('paved plan --base "${MERGE_GROUP_BASE:-origin/$BASE_REF}" --head "$HEAD_SHA" '
                           '--format github')
    assert plan["env"] == {"BASE_REF": "${{ github.base_ref }}", "HEAD_SHA": "${{ github.sha }}",
                           "MERGE_GROUP_BASE": "${{ github.event.merge_group.base_sha }}"}


@pytest.mark.parametrize(("github", "planned"), [
    ({"base_ref": "main", "sha": "b" * 40, "event": {"pull_request": {"number": 7}}},
     f"--base origin/main --head {'b' * 40}"),
    ({"base_ref": "", "sha": "c" * 40, "event": {"merge_group": {"base_sha": "a" * 40}}},
     f"--base {'a' * 40} --head {'c' * 40}"),
])
def test_paved_check_plans_a_pull_request_against_its_branch_and_a_merge_group_against_its_base_commit(
        github: dict[str, Any], planned: str) -> None:
    steps = next(iter(load(WORKFLOWS_DIR / "paved-check.yml")["jobs"].values()))["steps"]
    plan = next(step for step in steps if step.get("run", "").startswith("paved plan"))
    env = {name: substitute(value, {"github": github}) for name, value in plan["env"].items()}
    done = subprocess.run(["bash", "-e", "-c", 'paved() { echo "$@"; }; ' + plan["run"]], env=env,
                          capture_output=True, text=True, check=True)
    assert done.stdout == f"plan {planned} --format github\n"


def paved_jobs() -> dict[str, Any]:
    return load(WORKFLOWS_DIR / "paved.yml")["jobs"]


def test_no_job_is_named_paved_plan(workflow: Path) -> None:
    # GitHub Actions publishes a check run named after every job: one named `paved/plan` would stand
    # beside the App's and pass whenever its job does, approvals or not.
    names = [job.get("name", job_id) for job_id, job in load(workflow)["jobs"].items()]

    assert "paved/plan" not in names


def test_apply_and_retry_share_one_concurrency_group_that_is_never_cancelled() -> None:
    groups = {name: paved_jobs()[name]["concurrency"] for name in ("apply", "retry")}

    assert groups["apply"] == groups["retry"] == {"group": "paved-apply", "cancel-in-progress": False}


def test_plans_and_replies_queue_per_pull_request_in_groups_of_their_own() -> None:
    plan, reply = paved_jobs()["plan"]["concurrency"]["group"], paved_jobs()["reply"]["concurrency"]["group"]

    assert plan.startswith("paved-plan-") and reply.startswith("paved-reply-")


def app_jobs() -> dict[str, Any]:
    """The jobs that publish or apply as the platform's App, by name."""
    return {**{name: paved_jobs()[name] for name in ("apply", "retry", "reply")}, "publish": publish_job()}


def test_jobs_that_publish_or_apply_use_the_platform_apps_installation_token() -> None:
    for job in app_jobs().values():
        steps = job["steps"]
        minted = next(step for step in steps if "actions/create-github-app-token@" in step.get("uses", ""))
        ran = next(step for step in steps if step.get("run") == "paved ci")

        assert minted["with"] == {"app-id": "${{ secrets.PAVED_APP_ID }}",
                                  "private-key": "${{ secrets.PAVED_APP_PRIVATE_KEY }}"}
        assert ran["env"]["GITHUB_TOKEN"] == "${{ steps.app-token.outputs.token }}"


def jobs_using_secrets(workflow: Path) -> dict[str, Any]:
    return {name: job for name, job in load(workflow)["jobs"].items() if "secrets." in yaml.safe_dump(job)}


def test_every_job_given_the_apps_key_declares_the_paved_environment() -> None:
    for workflow in (WORKFLOWS_DIR / "paved.yml", WORKFLOWS_DIR / "paved-publish.yml"):
        for name, job in jobs_using_secrets(workflow).items():
            assert job.get("environment") == "paved", f"{workflow.name}: {name}"


@pytest.mark.parametrize("event", ["pull_request", "pull_request_review"])
def test_no_job_that_runs_for_a_pull_request_is_given_a_secret_or_the_paved_environment(event: str) -> None:
    # GitHub runs these events from the workflow file as the pull request changed it.
    pull_request = {"number": 1, "head": {"repo": {"full_name": "acme/platform"}}}
    contexts = {"github": {"event_name": event, "event": {"pull_request": pull_request, "review": {}},
                           "repository": "acme/platform"}}
    for name, job in paved_jobs().items():
        if "if" not in job or evaluate(str(job["if"]), contexts):
            assert "environment" not in job and name not in jobs_using_secrets(WORKFLOWS_DIR / "paved.yml"), name


def test_the_plan_job_may_only_read() -> None:
    assert set(paved_jobs()["plan"]["permissions"].values()) == {"read"}


def publish_job() -> dict[str, Any]:
    return load(WORKFLOWS_DIR / "paved-publish.yml")["jobs"]["publish"]


def test_fork_plans_are_published_after_paveds_own_run_completes() -> None:
    assert triggers(load(WORKFLOWS_DIR / "paved-publish.yml")) == {
        "workflow_run": {"workflows": [load(WORKFLOWS_DIR / "paved.yml")["name"]], "types": ["completed"]}}


def test_the_publishing_job_checks_out_nothing_from_the_fork() -> None:
    uses = [step.get("uses", "") for step in publish_job()["steps"]]

    assert not any("actions/checkout@" in ref for ref in uses)
    assert [step["run"] for step in publish_job()["steps"] if "run" in step][-1] == "paved ci"


@pytest.mark.parametrize("head_repository", ["acme/platform", "mallory/platform"])
def test_the_publishing_job_runs_for_every_pull_requests_run(head_repository: str) -> None:
    run = {"event": "pull_request", "head_repository": {"full_name": head_repository}}
    contexts = {"github": {"event_name": "workflow_run", "event": {"workflow_run": run},
                           "repository": "acme/platform"}}

    assert evaluate(publish_job()["if"], contexts)


def test_the_publishing_job_fetches_the_record_with_a_token_that_may_only_read_actions() -> None:
    assert publish_job()["permissions"] == {"actions": "read"}


def test_the_plan_job_uploads_the_record_even_when_its_plan_failed() -> None:
    upload = next(step for step in paved_jobs()["plan"]["steps"] if "actions/upload-artifact@" in step.get("uses", ""))

    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "paved-plan"


def test_merge_groups_get_their_paved_plan_from_a_job_that_publishes_as_the_app() -> None:
    assert triggers(load(WORKFLOWS_DIR / "paved.yml"))["merge_group"] == {"types": ["checks_requested"]}
    contexts = {"github": {"event_name": "merge_group", "event": {"merge_group": {"head_sha": "c" * 40}}}}
    running = [name for name, job in paved_jobs().items() if evaluate(str(job["if"]), contexts)]
    job = paved_jobs()["merge-group"]
    minted = next(step for step in job["steps"] if "actions/create-github-app-token@" in step.get("uses", ""))
    assert running == ["merge-group"]
    assert (job["environment"], job["permissions"], job["steps"][-1]["run"]) == ("paved", {}, "paved ci")
    assert job["steps"][-1]["env"]["GITHUB_TOKEN"] == "${{ steps.app-token.outputs.token }}" and minted
