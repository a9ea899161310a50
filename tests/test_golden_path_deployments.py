"""A golden path's CI deploys on a push to the default branch, after its tests, to each environment of the
repository, and records each deployment on GitHub, so a freshly scaffolded service shows its first deployment
once its workflow runs.

The workflow's steps run here as a runner runs them (bash, with the variables GitHub Actions sets and a job
token with exactly the job's `permissions:`) against a repository rendered from the template on the sandbox
forge; Paved's forge then reads what they recorded.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.main import cookiecutter

from bot.adapters.github import ETAGS, GitHubForge, connect_with_token
from bot.sandbox import Sandbox
from tests.conftest import PROJECT

TEMPLATES = ("fastapi-service", "worker")

pytestmark = pytest.mark.usefixtures("isolated_cookiecutter")


def render(template: str, into: Path) -> Path:
    return Path(cookiecutter(str(PROJECT / "templates" / template), no_input=True, output_dir=str(into),
                             extra_context={"name": "search", "owner": "discovery", "description": "Finds things."}))


def jobs(project: Path) -> dict[str, Any]:
    document = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    found: dict[str, Any] = document["jobs"]
    return found


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_deploy_job_runs_on_a_push_to_the_default_branch_once_the_tests_pass(template: str,
                                                                                 tmp_path: Path) -> None:
    found = jobs(render(template, tmp_path))
    assert found["environments"]["needs"] == "test"
    assert "github.event_name == 'push'" in found["environments"]["if"]
    assert found["deploy"]["needs"] == "environments"


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_deploy_job_may_write_deployments_and_nothing_else(template: str, tmp_path: Path) -> None:
    assert jobs(render(template, tmp_path))["deploy"]["permissions"] == {"contents": "read", "deployments": "write"}


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_deploy_job_waits_for_its_environments_protection_rules(template: str, tmp_path: Path) -> None:
    # Referencing the environment is what makes GitHub hold the job for its reviewers, wait timer and branch
    # rules; `deployment: false` leaves recording the deployment to the job's own steps.
    environment = jobs(render(template, tmp_path))["deploy"]["environment"]
    assert environment == {"name": "${{ matrix.environment }}", "deployment": False}


# -- the steps, run against the sandbox ---------------------------------------------------------------------------

@dataclass
class Service:
    forge: Sandbox
    project: Path
    workflow: dict[str, Any]
    runner: Path  # the job's scratch folder

    def run_step(self, job: str, step: str, permissions: dict[str, str], **env: str) -> str:
        """Run one `run:` step of a job as a runner would; what it wrote to $GITHUB_OUTPUT."""
        [found] = [s for s in self.workflow[job]["steps"] if s.get("name") == step]
        output = self.runner / f"output-{job}-{len(list(self.runner.iterdir()))}"
        output.touch()
        token = self.forge.job_token("acme", "search", permissions)
        given = {key: value for key, value in (found.get("env") or {}).items() if "${{" not in str(value)}
        variables = {**{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))},
                     "GITHUB_API_URL": self.forge.api_url, "GITHUB_SERVER_URL": self.forge.url,
                     "GITHUB_REPOSITORY": "acme/search", "GITHUB_RUN_ID": "4242", "GITHUB_OUTPUT": str(output),
                     "GITHUB_SHA": self.forge.branch_sha("acme", "search", "main") or "",
                     "GITHUB_TOKEN": token, **given, **env}
        subprocess.run(["bash", "-e", "-c", found["run"]], env=variables, cwd=self.project, check=True,
                       capture_output=True, text=True, timeout=60)
        return output.read_text()


@pytest.fixture(params=TEMPLATES)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    project = render(request.param, tmp_path / "rendered")
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        forge.create_org("acme", owners=["alice"])
        forge.create_repo_from_folder("acme", "search", project, owner_token=alice.token)
        repo = connect_with_token(forge.api_url, alice.token, polite=False).get_repo("acme/search")
        repo.create_environment("staging")
        repo.create_environment("production")
        runner = tmp_path / "runner"
        runner.mkdir()
        ETAGS.clear()
        yield Service(forge, project, jobs(project), runner)


def permissions(service: Service, job: str) -> dict[str, str]:
    granted: dict[str, str] = service.workflow[job]["permissions"]
    return granted


def test_the_environments_step_lists_the_repositorys_environments(service: Service) -> None:
    output = service.run_step("environments", "List the environments", permissions(service, "environments"))
    assert output == 'names=["production", "staging"]\n'


def test_a_deploy_that_succeeds_is_read_by_paved_as_deployed_with_the_runs_log(service: Service) -> None:
    granted = permissions(service, "deploy")
    started = service.run_step("deploy", "Start the deployment", granted, ENVIRONMENT="staging")
    deployment_id = started.strip().removeprefix("id=")
    service.run_step("deploy", "Record the outcome", granted, DEPLOYMENT_ID=deployment_id, OUTCOME="success")
    token = service.forge.job_token("acme", "search", {"deployments": "read", "actions": "read"})
    status = GitHubForge(connect_with_token(service.forge.api_url, token, polite=False)).deployment_status(
        "acme/search", ["staging", "production"])
    assert status is not None
    staging, production = status.environments
    assert (staging.summary, production.summary) == ("deployed", "never deployed")
    assert staging.latest is not None
    assert (staging.latest.creator, staging.latest.log_url) == (
        "github-actions[bot]", f"{service.forge.url}/acme/search/actions/runs/4242")


def test_a_deploy_that_fails_is_read_by_paved_as_failed(service: Service) -> None:
    granted = permissions(service, "deploy")
    started = service.run_step("deploy", "Start the deployment", granted, ENVIRONMENT="production")
    service.run_step("deploy", "Record the outcome", granted, DEPLOYMENT_ID=started.strip().removeprefix("id="),
                     OUTCOME="failure")
    token = service.forge.job_token("acme", "search", {"deployments": "read", "actions": "read"})
    status = GitHubForge(connect_with_token(service.forge.api_url, token, polite=False)).deployment_status(
        "acme/search", ["production"])
    assert status is not None and status.environments[0].summary == "failed"
