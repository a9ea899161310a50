"""A service's deployment status: which repository and environments the catalogue gives it, the one word each
environment is summed up in, and what Paved reads of GitHub for it, against the sandbox forge over real HTTP:
the latest deployment to each environment with its latest status, the latest run of the default branch, and
nothing of the rate limit spent when nothing changed since the last read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.github import ETAGS, GitHubForge, connect_with_token
from bot.adapters.repo import FolderTree
from bot.catalogue import judge
from bot.deployments import Deployment, EnvironmentStatus, LatestRun, close_services, service_target, web_url
from bot.rules import load_rules
from bot.sandbox import Sandbox, User
from bot.sandbox.recording import Exchange, watch
from tests.conftest import PROJECT

# -- the core: summaries and the catalogue's side -----------------------------------------------------------------


@pytest.mark.parametrize(("state", "word"), [
    ("success", "deployed"), ("failure", "failed"), ("error", "failed"), ("in_progress", "in progress"),
    ("queued", "in progress"), ("pending", "in progress"), (None, "in progress"), ("inactive", "inactive")])
def test_an_environment_is_summed_up_by_its_latest_deployments_latest_state(state: str | None, word: str) -> None:
    deployment = Deployment(1, "a" * 40, "main", "bob", "2025-01-01T00:00:00Z", state)
    assert EnvironmentStatus("staging", deployment).summary == word


def test_an_environment_without_a_deployment_was_never_deployed() -> None:
    assert EnvironmentStatus("production").summary == "never deployed"


def test_a_runs_outcome_is_its_conclusion_once_completed_else_its_status() -> None:
    done = LatestRun("CI", "completed", "failure", "bob", "2025-01-01T00:00:00Z", "https://ci/1")
    running = LatestRun("CI", "in_progress", None, "bob", "2025-01-01T00:00:00Z", "https://ci/2")
    assert (done.outcome, running.outcome) == ("failure", "in progress")


@pytest.mark.parametrize(("url", "kept"), [
    ("https://staging.example/app", "https://staging.example/app"), ("javascript:alert(1)", ""),
    ("https://x.example/a b", ""), ("data:text/html,hi", ""), ("", "")])
def test_only_an_http_address_is_ever_a_link(url: str, kept: str) -> None:
    assert web_url(url) == kept


@pytest.fixture(scope="module")
def bundled() -> Iterator[object]:
    tree = FolderTree(PROJECT)
    yield judge(tree, load_rules(tree), SQLiteCatalogueIndex())


def test_a_service_of_the_catalogue_is_read_in_its_organizations_repository_with_its_environments(
        bundled: object) -> None:
    target = service_target(bundled, "payments-api", "acme")  # type: ignore[arg-type]
    assert target is not None
    assert (target.repository, target.environments) == ("acme/payments-api", ("production", "staging"))


def test_a_name_the_catalogue_has_no_service_of_has_no_target_but_close_names(bundled: object) -> None:
    assert service_target(bundled, "payment-api", "acme") is None  # type: ignore[arg-type]
    assert close_services(bundled, "payment-api")[0] == "payments-api"  # type: ignore[arg-type]


# -- reading GitHub -----------------------------------------------------------------------------------------------

@dataclass
class Service:
    forge: Sandbox
    alice: User
    bob: User

    def reader(self) -> GitHubForge:
        """Paved's forge as a new job builds it: a new client, sharing the process's kept answers."""
        return GitHubForge(connect_with_token(self.forge.api_url, self.alice.token, polite=False))

    def used(self) -> int:
        usage = self.forge.rate_limit("user:alice")
        return usage.used if usage is not None else 0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with Sandbox.start(tmp_path / "forge") as forge:
        alice, bob = forge.create_user("alice"), forge.create_user("bob")
        forge.create_org("acme", owners=["alice"], members=["bob"])
        forge.create_repo("acme", "search", private=True)
        forge.push_files("acme", "search", "main", {"README.md": "# search\n"}, by="alice")
        forge.add_collaborator("acme", "search", "bob", "write")
        ETAGS.clear()
        yield Service(forge, alice, bob)


def test_a_service_never_deployed_has_each_environment_never_deployed_and_no_run(service: Service) -> None:
    status = service.reader().deployment_status("acme/search", ["staging", "production"])
    assert status is not None
    assert [(e.name, e.summary) for e in status.environments] == [("staging", "never deployed"),
                                                                  ("production", "never deployed")]
    assert (status.default_branch, status.latest_run) == ("main", None)


def test_each_environment_has_its_latest_deployment_with_its_latest_status(service: Service) -> None:
    service.forge.deploy("acme", "search", "staging", by="bob", state="failure")
    latest = service.forge.deploy("acme", "search", "staging", by="bob", state="in_progress")
    service.forge.deploy("acme", "search", "production", by="alice", log_url="https://ci.example/runs/9",
                         environment_url="https://search.example")
    status = service.reader().deployment_status("acme/search", ["staging", "production"])
    assert status is not None
    staging, production = status.environments
    assert staging.latest is not None and production.latest is not None
    assert (staging.latest.id, staging.latest.creator, staging.summary) == (latest.id, "bob", "in progress")
    assert (production.summary, production.latest.log_url, production.latest.environment_url) == (
        "deployed", "https://ci.example/runs/9", "https://search.example")


def test_the_latest_run_is_the_one_a_push_to_the_default_branch_started(service: Service) -> None:
    pushed = service.forge.record_workflow_run("acme", "search", conclusion="failure", by="bob")
    service.forge.create_branch("acme", "search", "feature", by="bob")
    service.forge.record_workflow_run("acme", "search", branch="feature", event="pull_request", by="bob")
    status = service.reader().deployment_status("acme/search", [])
    assert status is not None and status.latest_run is not None
    run = status.latest_run
    assert (run.name, run.outcome, run.actor, run.html_url) == ("CI", "failure", "bob", pushed.html_url)


def test_a_repository_github_does_not_have_has_no_status(service: Service) -> None:
    assert service.reader().deployment_status("acme/nothing", ["staging"]) is None


def test_a_second_read_of_an_unchanged_service_costs_no_rate_limited_request(service: Service) -> None:
    service.forge.deploy("acme", "search", "staging", by="bob")
    service.forge.record_workflow_run("acme", "search", by="bob")
    first = service.reader().deployment_status("acme/search", ["staging", "production"])
    spent = service.used()
    seen: list[int] = []

    def record(exchange: Exchange) -> None:
        seen.append(exchange.status)

    stop = watch(on_exchange=record)
    try:
        again = service.reader().deployment_status("acme/search", ["staging", "production"])
    finally:
        stop()
    assert (again, service.used()) == (first, spent)
    assert seen == [304] * 5  # the repository, 2 environments, 1 deployment's statuses, the runs


def test_a_new_status_is_read_on_the_next_read(service: Service) -> None:
    deployed = service.forge.deploy("acme", "search", "staging", by="bob", state="in_progress")
    service.reader().deployment_status("acme/search", ["staging"])
    service.reader().client.get_repo("acme/search").get_deployment(deployed.id).create_status("success")
    status = service.reader().deployment_status("acme/search", ["staging"])
    assert status is not None and status.environments[0].summary == "deployed"
