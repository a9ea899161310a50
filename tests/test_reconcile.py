"""Reconcile, end to end on the sandbox forge: a merge whose apply fails is retried on its backoff
(time is driven through `now`), Paved stops after the last attempt and says so once, `/paved retry`
still applies, the scheduled task checks for drift, and `paved reconcile` runs as a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.leases import ALWAYS_HELD
from bot.adapters.queue import Work
from bot.apply import APPLIED_REF
from bot.drift import BACKOFF, MAX_ATTEMPTS
from bot.handlers.drift import check_drift, reconcile_repo
from bot.handlers.push import apply_default_branch, apply_when_due
from bot.handlers.router import route
from bot.sandbox.recording import Exchange, watch
from bot.web.jobs import reconcile, reconcile_once
from bot.webhook import Delivery
from tests.conftest import PROJECT
from tests.test_drift import REPO, Estate, applied_estate

GROWTH = """apiVersion: paved/v1
kind: Team
metadata: {name: growth, owner: growth, description: Runs the experiments.}
spec:
  members: [alice, zoe]
  maintainers: [alice]
  budget: {monthly: 100}
"""
NO_ZOE = "GitHub has no user zoe (named in Team/growth)"


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    with applied_estate(tmp_path) as applied:
        yield applied


def merge(estate: Estate, files: dict[str, str], branch: str = "change") -> tuple[int, str]:
    estate.forge.push_files("acme", "platform", branch, dict(files), by="bob")  # type: ignore[arg-type]
    number = estate.forge.open_pull_request("acme", "platform", head=branch, title="A change", by="bob").number
    return number, estate.forge.merge("acme", "platform", number, by="alice")


def merge_failing(estate: Estate) -> tuple[int, str, datetime]:
    """A merged team naming someone GitHub does not know, applied once as after the merge: it fails."""
    number, merged = merge(estate, {"catalog/teams/growth.yaml": GROWTH}, "growth")
    first = apply_default_branch(estate.ctx, REPO, estate.ctx.providers)
    assert (first.status, first.record and first.record.results[-1].message) == ("failed", NO_ZOE)
    assert first.record is not None
    return number, merged, datetime.fromisoformat(first.record.applied_at)


def give_up(estate: Estate, failed_at: datetime) -> datetime:
    """Run reconcile each time a retry falls due, until the last attempt; the time of the last one."""
    now = failed_at
    for wait in BACKOFF:
        now += wait
        done = reconcile_repo(estate.ctx, REPO, now=now)
        assert done.applied is not None and done.applied.status == "failed"
    return now


def comments(estate: Estate, number: int) -> list[str]:
    return [c.body for c in estate.forge.comments("acme", "platform", number)]


def test_a_failed_apply_is_retried_only_when_its_backoff_is_due(estate: Estate) -> None:
    _, merged, failed_at = merge_failing(estate)
    ctx = estate.ctx
    assert apply_when_due(ctx, REPO, ctx.providers, now=failed_at + timedelta(seconds=59)).status == "waiting"
    retried = apply_when_due(ctx, REPO, ctx.providers, now=failed_at + timedelta(minutes=1))
    assert (retried.status, retried.attempts) == ("failed", 2)
    assert apply_when_due(ctx, REPO, ctx.providers, now=failed_at + timedelta(minutes=5)).status == "waiting"
    assert [r.trigger for r in estate.notes(merged)] == ["merge", "reconcile"]


def test_quiet_retries_end_in_one_comment_saying_paved_stopped_with_the_error(estate: Estate) -> None:
    number, merged, failed_at = merge_failing(estate)
    before = comments(estate, number)
    last = give_up(estate, failed_at)
    later = reconcile_repo(estate.ctx, REPO, now=last + timedelta(days=1))
    assert later.applied is not None and (later.applied.status, later.applied.attempts) == ("gave up", MAX_ATTEMPTS)
    assert len([r for r in estate.notes(merged) if r.trigger != "drift"]) == MAX_ATTEMPTS  # drift checks apply nothing
    [stopped] = comments(estate, number)[len(before):]
    assert f"Paved stopped retrying {merged[:12]}" in stopped
    assert NO_ZOE in stopped and "`/paved retry`" in stopped


def test_the_drift_issue_of_a_resource_paved_gave_up_on_carries_the_error(estate: Estate) -> None:
    number, _, failed_at = merge_failing(estate)
    give_up(estate, failed_at)
    [issue] = estate.drift_issues()
    assert issue.title == "Paved could not apply Team/growth"
    assert NO_ZOE in issue.body
    assert f"pull request #{number}" in issue.body and "stopped retrying" in issue.body
    assert "add zoe to team growth as member" in issue.body


def test_paved_retry_still_applies_after_paved_gave_up(estate: Estate) -> None:
    number, merged, failed_at = merge_failing(estate)
    give_up(estate, failed_at)
    estate.forge.create_user("zoe")
    estate.forge.add_member("acme", "zoe")
    estate.forge.comment("acme", "platform", number, "/paved retry", by="alice")
    estate.forge.wait_for_deliveries()
    payload = estate.forge.deliveries("issue_comment", "created")[-1].payload
    assert route(estate.ctx, Delivery("retry", "issue_comment", payload)).result == "ran retry"
    assert comments(estate, number)[-1] == "Applied again: applied."
    assert estate.ctx.mirror.resolve(REPO, APPLIED_REF) == merged
    assert sorted(u.login for u in estate.team("growth").get_members()) == ["alice", "zoe"]
    assert len(check_drift(estate.ctx, REPO).closed) == 1 and estate.drift_issues() == []


def test_paved_retry_with_nothing_pending_puts_back_what_drifted(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    [issue] = check_drift(estate.ctx, REPO).opened
    number, merged = merge(estate, {"catalog/teams/payments.yaml": estate.forge.read_file(
        "acme", "platform", "catalog/teams/payments.yaml").decode().replace("monthly: 500", "monthly: 600")})
    apply_default_branch(estate.ctx, REPO, estate.ctx.providers)
    estate.forge.comment("acme", "platform", number, "/paved retry", by="alice")
    estate.forge.wait_for_deliveries()
    payload = estate.forge.deliveries("issue_comment", "created")[-1].payload
    route(estate.ctx, Delivery("retry", "issue_comment", payload))
    assert "put back what had drifted from the catalogue: `Service/checkout`" in comments(estate, number)[-1]
    assert estate.checkout().visibility == "private"
    assert estate.notes(merged)[-1].trigger == "retry"
    closing = list(estate.alice.get_repo(REPO).get_issue(issue).get_comments())[-1].body
    assert closing.startswith("Paved put `Service/checkout` back as the catalogue asks")


def test_the_scheduled_reconcile_reports_drift(estate: Estate) -> None:
    estate.checkout().edit(visibility="public")
    reconcile(Work(estate.settings, "schedule", 1, lambda repo: nullcontext(ALWAYS_HELD),
                   lambda repo, numbers: nullcontext(ALWAYS_HELD)))
    [issue] = estate.drift_issues()
    assert issue.title == "Service/checkout has drifted from the catalogue"


def requests_about(repo: str) -> Iterator[list[str]]:
    """The REST requests (method and route) made about `repo` while the block runs."""
    seen: list[str] = []

    def record(exchange: Exchange) -> None:
        if exchange.path.startswith(f"/repos/{repo}/") or exchange.path == f"/repos/{repo}":
            seen.append(f"{exchange.method} {exchange.route}")

    stop = watch(on_exchange=record)
    try:
        yield seen
    finally:
        stop()


def test_reconcile_passes_over_the_service_repos_the_app_is_installed_on(estate: Estate) -> None:
    service = "acme/checkout"  # scaffolded by Paved from the catalogue, and covered by the App's installation
    with contextmanager(requests_about)(service) as asked:
        reconcile(Work(estate.settings, "schedule", 1, lambda repo: nullcontext(ALWAYS_HELD),
                       lambda repo, numbers: nullcontext(ALWAYS_HELD)))
        done = reconcile_once(estate.settings)
    assert [r.repo for r in done] == [REPO]
    # Each of the two reconciles asked whether the service holds kind schemas, in one listing of its root
    # folder (which the second asked again with its ETag), and neither fetched it nor looked for pull requests
    # to plan there. Its drift check observed the service for the standards: the same listing again, and the
    # service's golden-path record (.paved/scaffold.json), the one file of it read.
    assert asked.count("GET /repos/{owner}/{repo}/contents") == 4
    assert asked.count("GET /repos/{owner}/{repo}/contents/{path}") == 2
    assert "GET /repos/{owner}/{repo}/pulls" not in asked
    assert not estate.ctx.mirror.path(service).exists()  # type: ignore[attr-defined]
    assert estate.ctx.mirror.path(REPO).exists()  # type: ignore[attr-defined]


# -- `paved reconcile` ------------------------------------------------------------------------------------

def paved_reconcile(estate: Estate, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAVED_GITHUB_API_URL": estate.forge.api_url, "PAVED_GITHUB_APP_ID": str(estate.app_id),
           "PAVED_GITHUB_PRIVATE_KEY": estate.private_key, "PAVED_DATA_DIR": str(tmp_path / "cli-data")}
    return subprocess.run([sys.executable, "-m", "bot.cli", "reconcile", *args], capture_output=True, text=True,
                          env=env, cwd=PROJECT, timeout=120)


def test_paved_reconcile_exits_0_when_everything_matches_the_catalogue(estate: Estate, tmp_path: Path) -> None:
    done = paved_reconcile(estate, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "acme/platform at" in done.stdout and "matches the catalogue (5 resources checked)" in done.stdout


def test_paved_reconcile_exits_1_while_drift_remains(estate: Estate, tmp_path: Path) -> None:
    estate.checkout().edit(visibility="public")
    done = paved_reconcile(estate, tmp_path, "--format", "json")
    assert done.returncode == 1, done.stderr
    [platform] = [r for r in json.loads(done.stdout)["repositories"] if r["repository"] == REPO]
    [issue] = estate.drift_issues()
    assert [(d["resource"], d["owner"], d["issue"]) for d in platform["drifted"]] == [
        ("Service/checkout", "payments", issue.number)]


def test_paved_reconcile_without_credentials_exits_2_and_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAVED_GITHUB")}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "reconcile"], capture_output=True, text=True, env=env,
                          cwd=PROJECT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("paved: no GitHub credentials") and "Traceback" not in done.stderr
