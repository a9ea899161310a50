"""Where services are deployed, in the web catalogue: a service's page and its team's read their status through
Paved's own App on the sandbox forge over real HTTP, and neither fails, waits long or spends the rate limit
because of GitHub."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.adapters.github import ETAGS
from bot.composition import status_forge
from bot.sandbox import Sandbox
from bot.sandbox.recording import Exchange, watch
from bot.settings import Secret, Settings
from bot.web.catalogue import PlatformSource, catalogue_router
from bot.web.deployments import DeploymentBoard
from tests.conftest import SERVICE, PlatformRepo

ENVIRONMENTS = """
apiVersion: paved/v1
kind: Environment
metadata:
  name: checkout-staging
  owner: payments
  description: Staging deployments of checkout.
spec:
  service: checkout
  name: staging
  deploymentBranches: [main]
---
apiVersion: paved/v1
kind: Environment
metadata:
  name: checkout-production
  owner: payments
  description: Production deployments of checkout.
spec:
  service: checkout
  name: production
  requiredReviewers: [payments]
  deploymentBranches: [main]
"""

SEARCH_STAGING = """
apiVersion: paved/v1
kind: Environment
metadata:
  name: search-staging
  owner: payments
  description: Staging deployments of search.
spec:
  service: search
  name: staging
  deploymentBranches: [main]
"""


@dataclass
class Catalogue:
    """acme's catalogue served with deployment status read as Paved's App on the sandbox forge."""

    forge: Sandbox
    repo: PlatformRepo
    settings: Settings
    installation: int
    tmp_path: Path

    def client(self, **board: float) -> TestClient:
        app = FastAPI()
        source = PlatformSource("acme/platform", self.repo.root, self.tmp_path / "index.sqlite")
        deployments = DeploymentBoard(lambda: status_forge(self.settings), **board)
        app.include_router(catalogue_router(source, deployments=deployments))
        return TestClient(app)

    def used(self) -> int:
        usage = self.forge.rate_limit(f"installation:{self.installation}")
        return usage.used if usage is not None else 0


def paveds_repository(forge: Sandbox, name: str) -> None:
    """A service's repository as Paved creates it: carrying the paved-managed mark."""
    forge.create_repo("acme", name, private=True, by="alice", custom_properties={"paved-managed": "true"})
    forge.push_files("acme", name, "main", {"README.md": f"# {name}\n"}, by="alice")
    forge.add_collaborator("acme", name, "bob", "write")


@pytest.fixture
def catalogue(platform_repo: PlatformRepo, tmp_path: Path) -> Iterator[Catalogue]:
    """checkout (payments) has staging and production; search (payments) has staging and was never deployed."""
    platform_repo.write("catalog/services/checkout-environments.yaml", ENVIRONMENTS)
    platform_repo.write("catalog/services/search.yaml", SERVICE.format(name="search", owner="payments",
                                                                      tier="experimental") + "---" + SEARCH_STAGING)
    platform_repo.commit("checkout's environments, and search")
    with Sandbox.start(tmp_path / "forge") as forge:
        forge.create_user("alice")
        forge.create_user("bob")
        forge.create_org("acme", owners=["alice"], members=["bob"])
        forge.create_repo("acme", "platform", by="alice")
        forge.define_property("acme", "paved-managed", "true_false", by="alice")
        for name in ("checkout", "search"):
            paveds_repository(forge, name)
        app = forge.create_app("acme", "paved", permissions={"metadata": "read", "deployments": "read",
                                                              "actions": "read"})
        installation = forge.install_app(app.id, "acme")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "paved")}), github_api_url=forge.api_url,
            github_app_id=str(app.id), github_private_key=Secret(app.private_key), catalogue_repo="acme/platform")
        ETAGS.clear()
        yield Catalogue(forge, platform_repo, settings, installation.id, tmp_path)


def page(client: TestClient, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


def deployments_section(text: str) -> str:
    found = re.search(r'<section aria-labelledby="deployments-heading".*?</section>', text, re.DOTALL)
    assert found is not None, text
    return found.group(0)


def row(section: str, name: str) -> str:
    found = re.search(rf"<tr>\s*<th scope=\"row\">(?:<a [^>]*>)?{re.escape(name)}(?:</a>)?</th>.*?</tr>", section,
                      re.DOTALL)
    assert found is not None, section
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(0)).split())


def test_a_services_page_shows_each_environments_latest_deployment_and_the_latest_run(catalogue: Catalogue) -> None:
    forge = catalogue.forge
    forge.deploy("acme", "checkout", "staging", by="bob", log_url="https://ci.example/runs/7",
                 environment_url="https://staging.checkout.example")
    forge.deploy("acme", "checkout", "production", by="alice", state="failure")
    run = forge.record_workflow_run("acme", "checkout", by="bob")
    with catalogue.client() as client:
        section = deployments_section(page(client, "/resources/Service/checkout"))
    assert re.fullmatch(r"staging deployed [0-9a-f]{7} bob \d{4}-\d\d-\d\d \d\d:\d\d UTC log · open",
                        row(section, "staging")), row(section, "staging")
    assert row(section, "production").startswith("production failed") and " alice " in row(section, "production")
    assert '<a href="https://ci.example/runs/7"' in section and '<a href="https://staging.checkout.example"' in section
    latest = " ".join(re.sub(r"<[^>]+>", " ", section.split('class="latest-run"')[1]).split())
    assert latest.startswith("> Latest run of main : CI — success , started by bob at ")
    assert f'<a href="{run.html_url}"' in section


def test_a_service_never_deployed_shows_each_environment_never_deployed_and_no_run(catalogue: Catalogue) -> None:
    with catalogue.client() as client:
        section = deployments_section(page(client, "/resources/Service/search"))
    assert row(section, "staging") == "staging never deployed — — — —"
    assert "none yet." in section


def test_a_services_repository_not_made_yet_is_said_so(catalogue: Catalogue) -> None:
    catalogue.repo.write("catalog/services/ledger.yaml", SERVICE.format(name="ledger", owner="payments",
                                                                        tier="experimental"))
    catalogue.repo.commit("ledger")
    with catalogue.client() as client:
        section = deployments_section(page(client, "/resources/Service/ledger"))
    assert "acme/ledger does not exist yet: Paved creates it when the request is applied." in section


def test_a_repository_paved_did_not_create_is_not_read(catalogue: Catalogue) -> None:
    catalogue.repo.write("catalog/services/ledger.yaml", SERVICE.format(name="ledger", owner="payments",
                                                                        tier="experimental"))
    catalogue.repo.commit("ledger")
    catalogue.forge.create_repo("acme", "ledger", by="alice")
    with catalogue.client() as client:
        section = deployments_section(page(client, "/resources/Service/ledger"))
    assert "acme/ledger exists, but Paved did not create it" in section and "<table" not in section


def test_only_a_services_page_has_deployments(catalogue: Catalogue) -> None:
    with catalogue.client() as client:
        assert 'id="deployments"' not in page(client, "/resources/Database/checkout-db")


def test_when_github_fails_the_page_still_answers_and_says_why(catalogue: Catalogue) -> None:
    catalogue.forge.faults(1.0, kinds=("500",), only=r"^GET /repos/acme/checkout")
    with catalogue.client() as client:
        text = page(client, "/resources/Service/checkout")
    section = deployments_section(text)
    assert "Paved could not read them from GitHub: GitHub failed to read the deployments of acme/checkout" in section
    assert 'id="request-heading"' in text and 'id="history-heading"' in text  # the rest of the page is there


def test_when_github_is_slow_the_page_does_not_wait_for_it(catalogue: Catalogue) -> None:
    catalogue.forge.faults(1.0, kinds=("slow",), slow_seconds=2.0, only=r"^GET /repos/acme/checkout")
    with catalogue.client(seconds=0.2) as client:
        section = deployments_section(page(client, "/resources/Service/checkout"))
    assert "GitHub did not answer within 0.2 seconds; Paved goes on asking" in section


def test_a_spent_rate_limit_is_said_in_words(catalogue: Catalogue) -> None:
    catalogue.forge.set_rate_limit(0)
    with catalogue.client() as client:
        section = deployments_section(page(client, "/resources/Service/checkout"))
    assert "Paved could not read them from GitHub" in section and "rate limit" in section


def test_what_github_holds_shows_inert(catalogue: Catalogue) -> None:
    forge = catalogue.forge
    forge.deploy("acme", "checkout", "staging", by="bob", log_url="javascript:alert(1)",
                 environment_url="https://x.example/\"onmouseover=alert(1)", description="<img src=x onerror=alert(1)>")
    forge.record_workflow_run("acme", "checkout", workflow="<script>alert(1)</script>", by="bob")
    with catalogue.client() as client:
        section = deployments_section(page(client, "/resources/Service/checkout"))
    assert "<script>" not in section and "<img" not in section and "javascript:" not in section
    assert html.escape("<script>alert(1)</script>", quote=False) in section
    assert html.escape("<img src=x onerror=alert(1)>") in section
    assert 'x.example/"' not in section and "x.example/&#34;onmouseover" in section  # the quote stays text


def test_a_second_view_of_an_unchanged_service_costs_no_rate_limited_request(catalogue: Catalogue) -> None:
    catalogue.forge.deploy("acme", "checkout", "staging", by="bob")
    catalogue.forge.record_workflow_run("acme", "checkout", by="bob")
    with catalogue.client(keep_seconds=0) as client:  # nothing kept: every view asks GitHub again
        first = page(client, "/resources/Service/checkout")
        spent = catalogue.used()
        seen: list[int] = []

        def record(exchange: Exchange) -> None:
            if exchange.path.startswith("/repos/acme/checkout"):
                seen.append(exchange.status)

        stop = watch(on_exchange=record)
        try:
            again = page(client, "/resources/Service/checkout")
        finally:
            stop()
    assert deployments_section(again) == deployments_section(first)
    assert catalogue.used() == spent and seen and set(seen) == {304}


def test_a_view_within_a_minute_of_the_last_asks_github_nothing(catalogue: Catalogue) -> None:
    with catalogue.client() as client:
        first = page(client, "/resources/Service/checkout")
        seen: list[str] = []
        stop = watch(on_exchange=lambda exchange: seen.append(exchange.path))
        try:
            again = page(client, "/resources/Service/checkout")
        finally:
            stop()
    assert deployments_section(again) == deployments_section(first) and seen == []


def test_a_teams_page_shows_its_services_deployments_at_a_glance(catalogue: Catalogue) -> None:
    forge = catalogue.forge
    forge.deploy("acme", "checkout", "staging", by="bob")
    forge.deploy("acme", "checkout", "production", by="alice", state="failure")
    forge.record_workflow_run("acme", "checkout", conclusion="failure", by="bob")
    with catalogue.client() as client:
        section = deployments_section(page(client, "/teams/payments"))
    assert row(section, "checkout") == "checkout production failed staging deployed failure"
    assert row(section, "search") == "search staging never deployed no run yet"


def test_a_teams_page_answers_when_github_fails(catalogue: Catalogue) -> None:
    catalogue.forge.faults(1.0, kinds=("500",), only=r"^GET /repos/acme/")
    with catalogue.client() as client:
        text = page(client, "/teams/payments")
    assert row(deployments_section(text), "checkout").startswith("checkout Paved could not read them from GitHub")
    assert 'id="cost-heading"' in text
