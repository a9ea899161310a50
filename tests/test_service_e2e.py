"""The whole pull-request loop through the service: the sandbox forge delivers webhooks to `paved
serve`'s app over real HTTP, the queue's consumers run the real jobs, and the plan appears on GitHub."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.composition import context_for
from bot.handlers.pull_request import plan_pull_request
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.jobs import handle_delivery, reconcile
from tests.conftest import PROJECT, DiesAt, Killed
from tests.test_service import Service, running

SECRET = "a-webhook-secret-for-the-e2e-tests"


@dataclass
class Loop:
    forge: Sandbox
    service: Service
    settings: Settings
    app_id: int

    def plan_comment(self, number: int, seconds: float = 30) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [c.body for c in self.forge.comments("acme", "platform", number)
                     if c.body.startswith("<!-- paved:plan -->")]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no plan comment on #{number} within {seconds}s")


@contextmanager
def platform_with_paved(tmp_path: Path) -> Iterator[tuple[Sandbox, Settings, int]]:
    """acme's platform repo (the bundled catalogue) on a sandbox forge, carol a writer, Paved's App installed;
    the forge, the service's settings for it, and the App's id."""
    seed = tmp_path / "seed"
    for name in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / name, seed / name)
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        forge.create_user("carol")
        forge.create_org("acme", owners=["alice"], members=["carol"])
        forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "carol", "write")
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read"})
        forge.install_app(app.id, "acme")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data")}), github_api_url=forge.api_url,
            github_app_id=str(app.id), github_private_key=Secret(app.private_key), webhook_secret=Secret(SECRET))
        yield forge, settings, app.id


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    with platform_with_paved(tmp_path) as (forge, settings, app_id), \
            running(settings, handle_delivery, reconcile, consumers=2) as service:
        forge.set_app_webhook(app_id, service.url + "/webhooks/github", SECRET)
        yield Loop(forge, service, settings, app_id)


def test_a_pull_request_opened_on_the_forge_gets_its_plan_from_the_service(loop: Loop) -> None:
    path = "catalog/teams/growth.yaml"
    text = loop.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 90")
    loop.forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
    pr = loop.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
    comment = loop.plan_comment(pr.number)
    assert "1 to update" in comment
    opened = [d for d in loop.forge.deliveries("pull_request", "opened")]
    assert opened and opened[-1].status_code == 202


def test_reconcile_plans_a_pull_request_whose_delivery_was_lost(loop: Loop) -> None:
    loop.forge.set_app_webhook(loop.app_id, "http://127.0.0.1:9/webhooks/github", SECRET)  # Paved is down
    path = "catalog/teams/growth.yaml"
    text = loop.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 85")
    loop.forge.push_files("acme", "platform", "quiet", {path: text}, by="carol")
    pr = loop.forge.open_pull_request("acme", "platform", head="quiet", title="Quiet", by="carol")
    loop.forge.wait_for_deliveries()
    assert loop.forge.comments("acme", "platform", pr.number) == []

    reconcile(loop.service.queue.work("start"))
    assert "1 to update" in loop.plan_comment(pr.number, seconds=1)


def test_reconcile_finishes_a_plan_cut_short_between_its_check_and_its_comment(loop: Loop) -> None:
    loop.forge.set_app_webhook(loop.app_id, "http://127.0.0.1:9/webhooks/github", SECRET)  # Paved is down
    path = "catalog/teams/growth.yaml"
    text = loop.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 86")
    loop.forge.push_files("acme", "platform", "cut", {path: text}, by="carol")
    pr = loop.forge.open_pull_request("acme", "platform", head="cut", title="Cut short", by="carol")
    ctx = context_for(loop.settings, "acme/platform")
    with pytest.raises(Killed):
        plan_pull_request(dataclasses.replace(ctx, forge=DiesAt(ctx.forge, "upsert_comment")), "acme/platform",
                          pr.number)
    assert ctx.forge.has_check("acme/platform", pr.head_sha, "paved/plan")
    assert loop.forge.comments("acme", "platform", pr.number) == []

    reconcile(loop.service.queue.work("start"))
    assert "1 to update" in loop.plan_comment(pr.number, seconds=1)


def test_paveds_own_check_runs_and_comments_coming_back_are_not_queued(loop: Loop) -> None:
    path = "catalog/teams/growth.yaml"
    text = loop.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 95")
    loop.forge.push_files("acme", "platform", "echo", {path: text}, by="carol")
    pr = loop.forge.open_pull_request("acme", "platform", head="echo", title="Echo", by="carol")
    loop.plan_comment(pr.number)
    loop.forge.wait_for_deliveries()

    echoes = [d for d in loop.forge.deliveries("check_run") if d.action in ("created", "completed")]
    echoes += [d for d in loop.forge.deliveries("issue_comment", "created")]
    assert echoes, "the forge told Paved about its own check run and comment"
    for delivery in echoes:
        assert delivery.status_code == 200 and '"echo":true' in delivery.response_body, delivery
        assert loop.service.deliveries.get(delivery.guid) is None  # never recorded, never queued
