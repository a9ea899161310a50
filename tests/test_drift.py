"""Drift, end to end on the sandbox forge: the catalogue is applied for real, someone changes what
exists by hand (as alice, who owns acme, with PyGithub), and Paved's check finds it, reports it in one
issue per resource on the platform repo, keeps that issue current, closes it when the drift is gone,
and puts back what asks to be healed."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from github import Auth, Github

from bot.apply import NOTES_REF, read_records
from bot.composition import context_for
from bot.drift import LABEL_COLOR, LABEL_DESCRIPTION
from bot.errors import PavedError
from bot.handlers import Context
from bot.handlers.drift import check_drift
from bot.handlers.push import apply_default_branch
from bot.model import Resource
from bot.provider import Result, Step, Target
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from tests.conftest import PROJECT

REPO = "acme/platform"

CATALOGUE = {
    "catalog/teams/payments.yaml": """
        apiVersion: paved/v1
        kind: Team
        metadata: {name: payments, owner: payments, description: Takes card payments.}
        spec:
          members: [alice, bob]
          maintainers: [alice]
          budget: {monthly: 500}
        """,
    "catalog/teams/data.yaml": """
        apiVersion: paved/v1
        kind: Team
        metadata: {name: data, owner: data, description: Builds the reports.}
        spec:
          members: [carol, dave]
          maintainers: [carol]
          budget: {monthly: 300}
          drift: heal
        """,
    "catalog/services/checkout.yaml": """
        apiVersion: paved/v1
        kind: Service
        metadata: {name: checkout, owner: payments, description: Takes orders in the web shop.}
        spec:
          template: {name: fastapi-service}
          repository: {visibility: private}
          tier: experimental
          lifecycle: production
        ---
        apiVersion: paved/v1
        kind: Environment
        metadata: {name: checkout-production, owner: payments, description: Production deployments of checkout.}
        spec:
          service: checkout
          name: production
          requiredReviewers: [payments]
          waitTimer: 5
        """,
    "catalog/access/data-reads-checkout.yaml": """
        apiVersion: paved/v1
        kind: Access
        metadata: {name: data-reads-checkout, owner: payments, description: Data reads checkout's models.}
        spec: {team: data, service: checkout, permission: pull}
        """,
}


@dataclass
class Estate:
    """acme's small platform repo on a sandbox forge, applied by Paved's App (which may open issues,
    administer repositories and manage teams), and `alice` (PyGithub) to change things by hand."""

    forge: Sandbox
    settings: Settings
    ctx: Context
    alice: Github
    app_id: int
    private_key: str

    def drift_issues(self, state: str = "open") -> list[Any]:
        return list(self.alice.get_repo(REPO).get_issues(state=state, labels=["paved:drift"]))

    def checkout(self) -> Any:
        return self.alice.get_repo("acme/checkout")

    def team(self, slug: str) -> Any:
        return self.alice.get_organization("acme").get_team_by_slug(slug)

    def notes(self, sha: str) -> list[Any]:
        self.ctx.mirror.fetch_if_present(REPO, NOTES_REF)
        return read_records(self.ctx.mirror.note(REPO, NOTES_REF, sha))

    def head(self) -> str:
        sha = self.forge.branch_sha("acme", "platform", "main")
        assert sha is not None
        return sha


def seed(folder: Path, files: dict[str, str]) -> Path:
    for name in ("schemas", "templates"):
        shutil.copytree(PROJECT / name, folder / name)
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


@contextmanager
def applied_estate(tmp_path: Path) -> Iterator[Estate]:
    """The forge, acme's platform repo with `CATALOGUE`, and Paved's App, with the catalogue applied."""
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        for login in ("bob", "carol", "dave"):
            forge.create_user(login)
        forge.create_org("acme", owners=["alice"], members=["bob", "carol", "dave"])
        forge.create_repo_from_folder("acme", "platform", seed(tmp_path / "seed", CATALOGUE), owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "bob", "write")
        # Deliveries go nowhere (port 9 refuses); tests read their payloads from the forge's delivery log.
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
            "administration": "write", "members": "write", "metadata": "read",
            "organization_custom_properties": "admin"},
            webhook_url="http://127.0.0.1:9/webhooks/github", webhook_secret="x" * 32)
        forge.install_app(app.id, "acme")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data")}), github_api_url=forge.api_url,
            github_app_id=str(app.id), github_private_key=Secret(app.private_key))
        ctx = context_for(settings, REPO)
        try:
            applied = apply_default_branch(ctx, REPO, ctx.providers)
            assert applied.status == "applied", applied
            person = Github(base_url=forge.api_url, auth=Auth.Token(alice.token), retry=None,
                            seconds_between_requests=None, seconds_between_writes=None)
            yield Estate(forge, settings, ctx, person, app.id, app.private_key)
        finally:
            ctx.store.close()


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    with applied_estate(tmp_path) as applied:
        yield applied


# -- what is found, and where it is reported ------------------------------------------------------------------

def test_everything_as_applied_is_no_drift_and_opens_no_issue(estate: Estate) -> None:
    report = check_drift(estate.ctx, REPO)
    assert (report.checked, report.drifts, report.opened) == (5, (), ())
    assert estate.drift_issues() == []


def test_a_service_made_public_by_hand_opens_one_issue_naming_the_owning_team(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    report = check_drift(estate.ctx, REPO)
    assert [d.identity for d in report.drifts] == ["Service/checkout"]
    [issue] = estate.drift_issues()
    assert issue.title == "Service/checkout has drifted from the catalogue"
    assert "@acme/payments" in issue.body
    assert "change the visibility of acme/checkout from public to private" in issue.body
    assert "`/paved retry`" in issue.body and "`spec.drift: heal`" in issue.body


def test_the_drift_label_is_made_once_and_says_what_it_means(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    check_drift(estate.ctx, REPO)
    estate.team("payments").remove_membership(estate.alice.get_user("bob"))
    check_drift(estate.ctx, REPO)
    labels = [lb for lb in estate.alice.get_repo(REPO).get_labels() if lb.name == "paved:drift"]
    assert [(lb.color, lb.description) for lb in labels] == [(LABEL_COLOR, LABEL_DESCRIPTION)]
    assert len(estate.drift_issues()) == 2


def test_a_second_check_updates_the_same_issue_instead_of_opening_another(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    [first] = check_drift(estate.ctx, REPO).opened
    estate.checkout().get_branch("main").remove_protection()
    again = check_drift(estate.ctx, REPO)
    assert (again.opened, again.updated) == ((), (first,))
    [issue] = estate.drift_issues()
    assert issue.number == first
    assert "protect branch main of acme/checkout" in issue.body


def test_an_unchanged_drift_leaves_its_issue_as_it_is(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    check_drift(estate.ctx, REPO)
    again = check_drift(estate.ctx, REPO)
    assert (again.opened, again.updated, again.closed) == ((), (), ())


def test_putting_it_back_by_hand_closes_the_issue_with_a_comment(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    [number] = check_drift(estate.ctx, REPO).opened
    estate.checkout().edit(visibility="private")
    assert check_drift(estate.ctx, REPO).closed == (number,)
    issue = estate.alice.get_repo(REPO).get_issue(number)
    assert issue.state == "closed"
    assert "is as the catalogue asks" in list(issue.get_comments())[-1].body


def test_what_a_check_finds_is_noted_in_git_once_and_again_when_it_clears(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    check_drift(estate.ctx, REPO)
    check_drift(estate.ctx, REPO)  # the same finding: nothing new to note
    estate.checkout().edit(visibility="private")
    check_drift(estate.ctx, REPO)
    noted = [r for r in estate.notes(estate.head()) if r.trigger == "drift"]
    assert [[(x.resource, x.status) for x in r.results] for r in noted] == [[("Service/checkout", "drifted")], []]
    assert "change the visibility of acme/checkout from public to private" in noted[0].results[0].message


def test_team_access_removed_by_hand_is_drift_of_the_access_request(estate: Estate) -> None:
    estate.team("data").remove_from_repos(estate.checkout())
    report = check_drift(estate.ctx, REPO)
    [drift] = report.drifts
    assert (drift.identity, drift.owner) == ("Access/data-reads-checkout", "payments")
    assert [s.description for s in drift.steps] == ["grant team data pull on acme/checkout"]


def test_branch_protection_removed_by_hand_is_drift_of_the_service(estate: Estate) -> None:
    estate.checkout().get_branch("main").remove_protection()
    [drift] = check_drift(estate.ctx, REPO).drifts
    assert drift.identity == "Service/checkout"
    assert [s.description for s in drift.steps] == [
        "protect branch main of acme/checkout: 1 approving review, code owners must approve"]


def test_an_environment_deleted_by_hand_is_drift_of_the_environment(estate: Estate) -> None:
    estate.checkout().delete_environment("production")
    [drift] = check_drift(estate.ctx, REPO).drifts
    assert (drift.identity, [s.verb for s in drift.steps]) == ("Environment/checkout-production", ["create"])
    [issue] = estate.drift_issues()
    assert "Environment/checkout-production" in issue.title


def test_a_team_member_removed_by_hand_is_drift_of_the_team(estate: Estate) -> None:
    estate.team("payments").remove_membership(estate.alice.get_user("bob"))
    [drift] = check_drift(estate.ctx, REPO).drifts
    assert drift.identity == "Team/payments"
    assert [s.description for s in drift.steps] == ["add bob to team payments as member"]


# -- healing ------------------------------------------------------------------------------------------------

def test_a_request_that_asks_to_heal_is_put_back_and_recorded_without_an_issue(estate: Estate) -> None:
    estate.team("data").remove_membership(estate.alice.get_user("dave"))
    report = check_drift(estate.ctx, REPO)
    assert ([r.resource for r in report.healed], report.drifts) == (["Team/data"], ())
    assert sorted(u.login for u in estate.team("data").get_members()) == ["carol", "dave"]
    heal = estate.notes(estate.head())[-1]
    assert (heal.trigger, heal.actions, [r.status for r in heal.results]) == ("heal", {"Team/data": "heal"},
                                                                             ["applied"])
    assert estate.drift_issues() == []


def test_a_merged_change_to_a_drifted_request_puts_it_back_and_its_issue_is_closed(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    [number] = check_drift(estate.ctx, REPO).opened
    text = estate.forge.read_file("acme", "platform", "catalog/services/checkout.yaml").decode()
    estate.forge.push_files("acme", "platform", "main", {
        "catalog/services/checkout.yaml": text.replace("Takes orders in the web shop.", "Takes orders.")},
        by="alice")
    applied = apply_default_branch(estate.ctx, REPO, estate.ctx.providers)
    assert [s.description for r in applied.record.results for s in r.steps] == [  # type: ignore[union-attr]
        "change the visibility of acme/checkout from public to private", "update the description of acme/checkout"]
    assert check_drift(estate.ctx, REPO).closed == (number,)


# -- what is not drift --------------------------------------------------------------------------------------

def test_a_change_merged_but_not_applied_yet_is_pending_not_drift(estate: Estate) -> None:
    text = estate.forge.read_file("acme", "platform", "catalog/services/checkout.yaml").decode()
    estate.forge.push_files("acme", "platform", "main", {
        "catalog/services/checkout.yaml": text.replace("Takes orders in the web shop.", "Takes orders.")},
        by="alice")
    report = check_drift(estate.ctx, REPO)
    assert (report.pending, report.drifts) == (("Service/checkout",), ())
    assert estate.drift_issues() == []


class Blind:
    """A provider whose reads fail, as a provider does when its API answers 502: for one kind only."""

    kinds: tuple[str, ...] = ("Environment",)

    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        raise PavedError(f"GitHub refused to show {resource.identity}: Bad Gateway (502)")

    def plan(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        return []

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None) -> Result:
        raise AssertionError("a resource that cannot be read is not applied")


def test_a_resource_its_provider_cannot_read_is_reported_alone(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    ctx = dataclasses.replace(estate.ctx, providers=(*estate.ctx.providers, Blind()))
    report = check_drift(ctx, REPO)
    assert {d.identity: d.unobserved for d in report.drifts} == {
        "Environment/checkout-production": "GitHub refused to show Environment/checkout-production: "
                                           "Bad Gateway (502)",
        "Service/checkout": ""}
    assert sorted(i.title for i in estate.drift_issues()) == [
        "Paved cannot see Environment/checkout-production", "Service/checkout has drifted from the catalogue"]
