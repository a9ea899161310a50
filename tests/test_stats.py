"""`paved stats`: plan records kept in git, the figures computed from them and the apply records, the
command on a real git history, and a pull request planned then merged on the sandbox forge."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from github import Auth

from bot.adapters.github import GitHubForge, installation_client, installation_of
from bot.adapters.mirror import GitMirror
from bot.apply import ApplyRecord, read_records
from bot.cli import main
from bot.handlers import Context
from bot.handlers.pull_request import plan_pull_request
from bot.handlers.router import route
from bot.model import Change, Finding, Plan
from bot.provider import Result, Status
from bot.stats import PLANS_REF, TOP_FINDINGS, PlanRecord, as_json, as_text, compute, percentile, read_plan_records
from bot.web.catalogue import PlatformSource, catalogue_router
from bot.webhook import Delivery
from tests.conftest import REPO, PlatformRepo, World


def plan_record(number: int, planned_at: str, *, ok: bool = True, opened_at: str = "2026-11-02T09:00:00+00:00",
                findings: dict[str, int] | None = None, changes: dict[str, dict[str, int]] | None = None,
                teams: dict[str, int] | None = None) -> PlanRecord:
    return PlanRecord(number, "f" * 40, opened_at, "carol", planned_at, ok, findings or {},
                      changes if changes is not None else {"Service": {"create": 1}},
                      teams if teams is not None else {"payments": 1})


def apply_record(applied_at: str, *, pr: int | None = 7, status: Status = "applied", trigger: str | None = None,
                 previous: str | None = "p" * 40, actions: dict[str, str] | None = None,
                 results: tuple[Result, ...] | None = None) -> ApplyRecord:
    record = ApplyRecord("a" * 40, previous, applied_at, "digest",
                         results if results is not None else (Result("Service/search", status),),
                         pull_request=pr, requested_by="carol" if pr else None,
                         actions=actions if actions is not None else {"Service/search": "create"})
    data = json.loads(record.to_json())
    if trigger is not None:
        data["trigger"] = trigger
    [parsed] = read_records(json.dumps(data))  # as `paved stats` reads it from a note
    return parsed


# -- plan records -----------------------------------------------------------------------------------


def change(kind: str, name: str, action: str, owner: str) -> Change:
    return Change(action, kind, name, owner, f"catalog/{name}.yaml", 1)  # type: ignore[arg-type]


def finding(rule: str, severity: str = "error") -> Finding:
    return Finding("catalog/x.yaml", 3, 1, "/spec", "wrong", severity, rule)  # type: ignore[arg-type]


def test_a_plan_record_counts_findings_by_rule_and_changes_by_kind_action_and_team() -> None:
    plan = Plan("base", "head", (change("Service", "search", "create", "growth"),
                                 change("Database", "search-db", "create", "growth"),
                                 change("Team", "growth", "update", "growth")),
                (change("Access", "old", "delete", "data"),), 0, (),
                (finding("backups-in-production"), finding("backups-in-production"), finding("naming", "warning")))
    record = PlanRecord.of(plan, pull_request=12, head="h" * 40, opened_at="2026-11-02T09:00:00+00:00",
                           author="gina", planned_at="2026-11-02T09:01:00+00:00")
    assert record.ok is False
    assert record.findings == {"backups-in-production": 2, "naming": 1}
    assert record.changes == {"Access": {"delete": 1}, "Database": {"create": 1}, "Service": {"create": 1},
                              "Team": {"update": 1}}
    assert record.teams == {"data": 1, "growth": 3}
    assert read_plan_records(record.to_json()) == [record]


def test_lines_of_a_plans_note_that_paved_did_not_write_are_ignored() -> None:
    kept = plan_record(3, "2026-11-02T10:00:00+00:00")
    note = "\n".join(["reviewed by hand", '{"something": "else"}', "{broken json", kept.to_json()])
    assert read_plan_records(note) == [kept]


# -- the figures -----------------------------------------------------------------------------------


def test_only_the_first_plan_of_a_pull_request_decides_whether_it_passed_first_time() -> None:
    plans = [plan_record(1, "2026-11-02T10:05:00+00:00", ok=True),
             plan_record(1, "2026-11-02T10:00:00+00:00", ok=False),
             plan_record(2, "2026-11-02T11:00:00+00:00", ok=True)]
    stats = compute(plans, [])
    assert (stats.first_plan_passed, stats.first_plan_total) == (1, 2)
    assert stats.first_plan_pass_rate == 0.5


def test_lead_time_runs_from_opening_to_the_first_apply_that_went_through() -> None:
    plans = [plan_record(7, "2026-11-02T09:30:00+00:00", opened_at="2026-11-02T09:00:00+00:00")]
    applies = [apply_record("2026-11-02T12:00:00+00:00", status="failed"),
               apply_record("2026-11-02T15:00:00+00:00", trigger="retry")]
    stats = compute(plans, applies)
    assert stats.lead_time.pull_requests == 1
    assert stats.lead_time.median_hours == 6.0


def test_the_90th_percentile_is_the_nearest_rank_sample() -> None:
    assert percentile([float(h) for h in range(10, 0, -1)], 0.9) == 9.0
    assert percentile([4.0], 0.9) == 4.0
    assert percentile([], 0.9) is None


def test_a_rule_tripped_on_every_push_of_one_pull_request_counts_as_one_trip() -> None:
    plans = [plan_record(1, f"2026-11-02T10:0{i}:00+00:00", ok=False, findings={"backups-in-production": 1})
             for i in range(3)] + [plan_record(2, "2026-11-03T10:00:00+00:00", ok=False,
                                               findings={"backups-in-production": 2, "schema": 1})]
    stats = compute(plans, [])
    assert [(f.rule, f.pull_requests, f.findings) for f in stats.findings] == [
        ("backups-in-production", 2, 5), ("schema", 1, 1)]


def test_drift_heals_are_left_out_of_the_apply_failure_rate() -> None:
    applies = [apply_record("2026-11-02T10:00:00+00:00"), apply_record("2026-11-03T10:00:00+00:00", status="failed"),
               apply_record("2026-11-04T10:00:00+00:00", pr=None, status="failed", trigger="heal")]
    stats = compute([], applies)
    assert (stats.applies, stats.applies_failed, stats.heals_left_out) == (2, 1, 1)
    assert stats.apply_failure_rate == 0.5


def test_an_apply_refused_because_the_catalogue_had_errors_counts_as_failed() -> None:
    refused = apply_record("2026-11-02T10:00:00+00:00", results=())
    assert compute([], [refused]).applies_failed == 1


def test_requests_per_week_are_the_merged_heads_changes_by_kind_and_team() -> None:
    plans = [plan_record(1, "2026-11-02T10:00:00+00:00", changes={"Service": {"create": 1}}, teams={"growth": 1}),
             plan_record(1, "2026-11-02T11:00:00+00:00", changes={"Service": {"create": 1}, "Database": {"create": 1}},
                         teams={"growth": 2}),
             plan_record(2, "2026-11-03T10:00:00+00:00", changes={"Team": {"update": 1}}, teams={"data": 1}),
             plan_record(3, "2026-11-03T10:00:00+00:00", changes={"Team": {"update": 1}}, teams={"data": 1})]
    applies = [apply_record("2026-11-02T12:00:00+00:00", pr=1), apply_record("2026-11-10T12:00:00+00:00", pr=2)]
    weeks = compute(plans, applies).weeks  # pull request 3 was never merged
    assert [(w.week, w.requests, w.changes, dict(w.by_kind), dict(w.by_team)) for w in weeks] == [
        ("2026-W45", 1, 2, {"Database": 1, "Service": 1}, {"growth": 2}),
        ("2026-W46", 1, 1, {"Team": 1}, {"data": 1})]


def test_pull_requests_merged_before_plans_were_recorded_count_from_their_apply_actions() -> None:
    bootstrap = apply_record("2026-11-02T08:00:00+00:00", pr=1, previous=None,
                             actions={"Team/payments": "create", "Service/checkout": "create"})
    legacy = apply_record("2026-11-02T12:00:00+00:00", pr=2, actions={"Service/search": "create", "Team/x": "delete"})
    [week] = compute([], [bootstrap, legacy], owners={"Service/search": "growth"}).weeks
    assert (week.requests, week.changes) == (2, 2)  # the first apply brings in the catalogue: no request
    assert dict(week.by_kind) == {"Service": 1, "Team": 1}
    assert dict(week.by_team) == {"growth": 1, "unknown": 1}


def test_since_leaves_out_earlier_pull_requests_and_applies() -> None:
    plans = [plan_record(1, "2026-10-01T10:00:00+00:00", opened_at="2026-10-01T09:00:00+00:00"),
             plan_record(2, "2026-11-05T10:00:00+00:00", opened_at="2026-11-05T09:00:00+00:00", ok=False)]
    applies = [apply_record("2026-10-01T12:00:00+00:00", pr=1), apply_record("2026-11-05T12:00:00+00:00", pr=2)]
    stats = compute(plans, applies, since=datetime(2026, 11, 1, tzinfo=UTC))
    assert (stats.pull_requests_planned, stats.first_plan_passed, stats.applies) == (1, 0, 1)
    assert [w.week for w in stats.weeks] == ["2026-W45"]


def test_the_text_report_names_every_figure() -> None:
    plans = [plan_record(7, "2026-11-02T09:30:00+00:00", ok=False, findings={"backups-in-production": 1})]
    text = as_text(compute(plans, [apply_record("2026-11-02T14:00:00+00:00")]))
    assert "1 pull request planned, 1 merged and applied" in text
    assert "2026-W45" in text and "Service 1" in text and "payments 1" in text
    assert "median 5 h, p90 5 h (1 pull request)" in text
    assert "First plan passed: 0 of 1 pull request (0%)" in text
    assert "Apply failure rate: 0 of 1 apply (0%) failed" in text
    assert "backups-in-production  1 pull request (1 finding)" in text


def test_one_drift_heal_left_out_is_counted_in_the_singular() -> None:
    heal = apply_record("2026-11-04T10:00:00+00:00", pr=None, status="failed", trigger="heal")
    text = as_text(compute([], [apply_record("2026-11-02T10:00:00+00:00"), heal]))
    assert "Apply failure rate: 0 of 1 apply (0%) failed (1 drift heal not counted)" in text


def test_one_rule_past_the_shown_ones_is_counted_in_the_singular() -> None:
    rules = {f"rule-{i:02d}": 1 for i in range(TOP_FINDINGS + 1)}
    text = as_text(compute([plan_record(1, "2026-11-02T10:00:00+00:00", ok=False, findings=rules)], []))
    assert "  … and 1 more rule (--format json lists all)" in text.splitlines()


def test_the_adoption_page_counts_one_pull_request_in_the_singular(platform_repo: PlatformRepo,
                                                                    tmp_path: Path) -> None:
    head = platform_repo.git("rev-parse", "HEAD")
    note(platform_repo, "paved-plans", head, plan_record(4, "2026-11-02T10:00:00+00:00").to_json())
    note(platform_repo, "paved", head, apply_record("2026-11-02T14:00:00+00:00", pr=4).to_json())
    app = FastAPI()
    app.include_router(catalogue_router(PlatformSource("acme/platform", platform_repo.root, tmp_path / "index.sqlite")))
    with TestClient(app) as client:
        page = " ".join(client.get("/adoption").text.split())
    assert "From all recorded history: 1 pull request planned, 1 merged and applied." in page
    assert "Median 5 h, 90th percentile 5 h, over 1 pull request." in page


def test_the_json_report_carries_the_rates_for_the_adoption_page() -> None:
    data = json.loads(as_json(compute([plan_record(1, "2026-11-02T10:00:00+00:00")], [])))
    assert data["version"] == 1
    assert data["first_plan_pass_rate"] == 1.0 and data["apply_failure_rate"] is None
    assert data["lead_time"] == {"pull_requests": 0, "median_hours": None, "p90_hours": None}


# -- the command on a real git history -------------------------------------------------------------


def note(repo: PlatformRepo, ref: str, commit: str, text: str) -> None:
    repo.git("notes", "--ref", ref, "append", "-m", text, commit)


def test_paved_stats_reads_plan_and_apply_records_from_git_notes(platform_repo: PlatformRepo,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    platform_repo.write("catalog/teams/growth.yaml", platform_repo.root.joinpath("catalog/teams/data.yaml")
                        .read_text().replace("data", "growth"))
    head = platform_repo.commit("Add growth")
    first = plan_record(4, "2026-11-02T10:00:00+00:00", ok=False, findings={"schema": 1})
    fixed = plan_record(4, "2026-11-02T11:00:00+00:00", changes={"Team": {"create": 1}}, teams={"growth": 1})
    note(platform_repo, "paved-plans", head, first.to_json())
    note(platform_repo, "paved-plans", head, fixed.to_json())
    note(platform_repo, "paved", head, apply_record("2026-11-03T09:00:00+00:00", pr=4,
                                                    actions={"Team/growth": "create"}).to_json())
    assert main(["stats", "--repo", str(platform_repo.root), "--offline", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["pull_requests_planned"], data["pull_requests_applied"], data["first_plan_passed"]) == (1, 1, 0)
    assert data["weeks"] == [{"week": "2026-W45", "requests": 1, "changes": 1, "by_kind": {"Team": 1},
                              "by_team": {"growth": 1}}]
    assert data["lead_time"]["median_hours"] == 24.0
    assert data["findings"] == [{"rule": "schema", "pull_requests": 1, "findings": 1}]


def test_paved_stats_since_that_is_not_a_date_is_a_usage_error(platform_repo: PlatformRepo,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--repo", str(platform_repo.root), "--offline", "--since", "last week"]) == 2
    err = capsys.readouterr().err
    assert "--since 'last week' is not a date" in err and "Traceback" not in err


# -- end to end on the sandbox forge ---------------------------------------------------------------


def test_a_planned_then_merged_pull_request_is_recorded_and_counted(world: World, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = "catalog/teams/growth.yaml"
    text = world.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
    assert plan_pull_request(world.ctx, REPO, pr.number).status == "published"
    world.forge.approve("acme", "platform", pr.number, by="bob")
    world.forge.merge("acme", "platform", pr.number, by="alice")
    assert route(world.ctx, Delivery("push-1", "push", world.delivered("push"))).result.startswith("applied")

    clone = tmp_path / "clone"
    url = world.forge.authenticated_clone_url("acme", "platform", world.forge.create_token("alice"))
    subprocess.run(["git", "clone", "--quiet", url, str(clone)], check=True, capture_output=True)
    recorded = subprocess.run(["git", "-C", str(clone), "fetch", "--quiet", "origin", f"+{PLANS_REF}:{PLANS_REF}"],
                              capture_output=True, text=True)
    assert recorded.returncode == 0, recorded.stderr
    [record] = read_plan_records(subprocess.run(["git", "-C", str(clone), "notes", "--ref", PLANS_REF, "show",
                                                 pr.head_sha], capture_output=True, text=True, check=True).stdout)
    assert (record.pull_request, record.author, record.ok) == (pr.number, "carol", True)
    assert record.opened_at and record.changes == {"Team": {"update": 1}} and record.teams == {"growth": 1}

    assert main(["stats", "--repo", str(clone), "--format", "json"]) == 0  # fetches both notes refs itself
    data = json.loads(capsys.readouterr().out)
    assert (data["pull_requests_planned"], data["pull_requests_applied"], data["first_plan_passed"]) == (1, 1, 1)
    assert data["lead_time"]["pull_requests"] == 1
    assert [(w["requests"], w["by_kind"], w["by_team"]) for w in data["weeks"]] == [
        (1, {"Team": 1}, {"growth": 1})]
    assert (data["applies"], data["applies_failed"]) == (1, 0)


def test_a_plan_is_published_even_when_its_record_cannot_be_pushed(world: World, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    app = world.forge.create_app("acme", "paved-read-only", permissions={
        "checks": "write", "contents": "read", "issues": "write", "pull_requests": "write", "metadata": "read"})
    world.forge.install_app(app.id, "acme")
    installation = installation_of(world.forge.api_url, app.id, app.private_key, REPO)
    client = installation_client(world.forge.api_url, app.id, app.private_key, installation, polite=False)
    auth = client.requester.auth
    assert isinstance(auth, Auth.AppInstallationAuth)
    mirror = GitMirror(tmp_path / "read-only-mirrors", lambda repo: world.forge.clone_url(*repo.split("/")),
                       lambda repo: auth.token)
    ctx = Context(GitHubForge(client), mirror, world.ctx.store)
    path = "catalog/teams/growth.yaml"
    text = world.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")

    assert plan_pull_request(ctx, REPO, pr.number).status == "published"
    assert len(world.plan_comments(pr.number)) == 1
    assert f"could not record the plan for {REPO}#{pr.number}" in caplog.text
    assert not mirror.fetch_if_present(REPO, PLANS_REF)  # nothing reached the forge
