"""Plan on every pull request, end to end: the sandbox forge over real HTTP, real git, real mirrors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from github import Auth

from bot.adapters.github import GitHubForge, installation_client, installation_of
from bot.adapters.workspace import Workspace
from bot.catalog import CatalogueStore
from bot.handlers import Context
from bot.handlers.pull_request import CHECK_NAME, plan_pull_request
from bot.render.markdown import MARKER
from bot.sandbox import Sandbox
from tests.conftest import PROJECT

REPO = "acme/platform"


@dataclass
class World:
    forge: Sandbox
    ctx: Context

    def check(self, number: int) -> tuple[str | None, str, int]:
        pr = self.forge.pull_request("acme", "platform", number)
        runs = self.ctx.forge._repo(REPO).get_commit(pr.head_sha).get_check_runs(check_name=CHECK_NAME)  # type: ignore[attr-defined]
        run = next(iter(runs))
        return run.conclusion, run.output.title, len(self.forge.check_run_annotations("acme", "platform", run.id))

    def plan_comments(self, number: int) -> list[str]:
        return [c.body for c in self.forge.comments("acme", "platform", number) if c.body.startswith(MARKER)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    folder = tmp_path / "seed"
    for name in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / name, folder / name)
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        for login in ("bob", "carol", "dave"):
            forge.create_user(login)
        forge.create_org("acme", owners=["alice"], members=["bob", "carol", "dave"])
        forge.create_repo_from_folder("acme", "platform", folder, owner_token=alice.token)
        for login in ("bob", "carol", "dave"):
            forge.add_collaborator("acme", "platform", login, "write")
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
            "metadata": "read"})
        forge.install_app(app.id, "acme")
        installation = installation_of(forge.api_url, app.id, app.private_key, REPO)
        client = installation_client(forge.api_url, app.id, app.private_key, installation, polite=False)
        auth = client.requester.auth
        assert isinstance(auth, Auth.AppInstallationAuth)
        mirror = Workspace(tmp_path / "mirrors", lambda repo: forge.clone_url(*repo.split("/")),
                           lambda repo: auth.token)
        yield World(forge, Context(GitHubForge(client), mirror, CatalogueStore(tmp_path / "index.sqlite")))


def team_file(world: World, name: str) -> str:
    return world.forge.read_file("acme", "platform", f"catalog/teams/{name}.yaml").decode()


def test_a_clean_pull_request_gets_a_green_check_and_one_plan_comment(world: World) -> None:
    text = team_file(world, "growth").replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {"catalog/teams/growth.yaml": text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
    outcome = plan_pull_request(world.ctx, REPO, pr.number)
    assert outcome.status == "published" and outcome.conclusion == "success"
    assert world.check(pr.number) == ("success", "ready to merge", 0)
    [comment] = world.plan_comments(pr.number)
    assert "1 to update" in comment and "`Team/growth`" in comment


def test_a_typo_fails_the_check_with_an_annotation_at_its_line(world: World) -> None:
    text = team_file(world, "growth").replace("monthly: 80", "monthly: lots")
    world.forge.push_files("acme", "platform", "typo", {"catalog/teams/growth.yaml": text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="typo", title="Typo", by="carol")
    plan_pull_request(world.ctx, REPO, pr.number)
    conclusion, title, annotations = world.check(pr.number)
    assert (conclusion, title, annotations) == ("failure", "1 error to fix", 1)


def test_planning_again_edits_the_same_comment(world: World) -> None:
    text = team_file(world, "growth").replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {"catalog/teams/growth.yaml": text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
    plan_pull_request(world.ctx, REPO, pr.number)
    world.forge.push_files("acme", "platform", "budget", {"catalog/teams/growth.yaml": text.replace("90", "95")},
                           by="carol")
    plan_pull_request(world.ctx, REPO, pr.number)
    [comment] = world.plan_comments(pr.number)
    assert "80` → `95`" in comment


def test_a_job_for_an_older_head_publishes_nothing(world: World) -> None:
    text = team_file(world, "growth").replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {"catalog/teams/growth.yaml": text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
    outcome = plan_pull_request(world.ctx, REPO, pr.number, head_sha="0" * 40)
    assert outcome.status == "skipped" and "superseded" in outcome.reason
    assert world.plan_comments(pr.number) == []


def test_a_production_change_waits_for_its_owning_team_then_turns_green(world: World) -> None:
    path = "catalog/services/payments-api.yaml"
    text = world.forge.read_file("acme", "platform", path).decode().replace("retentionDays: 35", "retentionDays: 30")
    world.forge.push_files("acme", "platform", "retention", {path: text}, by="dave")
    pr = world.forge.open_pull_request("acme", "platform", head="retention", title="Shorter retention", by="dave")
    outcome = plan_pull_request(world.ctx, REPO, pr.number)
    assert outcome.conclusion == "neutral"
    assert world.check(pr.number)[1] == "waiting for approval from team payments"
    approver = outcome.pending[0].approvers[0]
    world.forge.approve("acme", "platform", pr.number, by=approver)
    assert plan_pull_request(world.ctx, REPO, pr.number).conclusion == "success"
