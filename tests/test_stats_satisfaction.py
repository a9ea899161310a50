"""Satisfaction in `paved stats` and on the adoption page: the authors' ratings by week, kind and golden path
beside lead time and first plans, the guardrails that fail first, and the feedback shown inert; from the
records as Paved notes them, in text, JSON, CSV and HTML, and from a real git history."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.apply import ApplyRecord, read_records
from bot.cli import main
from bot.provider import Result
from bot.satisfaction import FEEDBACK_LIMIT, Asked, Feedback, FeedbackRecord, Invited, Rating, Withdrawn, to_json
from bot.stats import PlanRecord, Stats, as_csv, as_json, as_text, compute
from bot.web.catalogue import PlatformSource, catalogue_router
from tests.conftest import PlatformRepo

HOSTILE = "@acme/everyone <script>alert(1)</script> **[x](https://evil.example)**\n=HYPERLINK(\"x\")\x1b[31m"


def plan(number: int, at: str, *, ok: bool = True, findings: dict[str, int] | None = None,
         kind: str = "Service", author: str = "carol") -> PlanRecord:
    return PlanRecord(number, "f" * 40, f"{at[:10]}T09:00:00+00:00", author, at, ok, findings or {},
                      {kind: {"create": 1}}, {"payments": 1})


def applied(number: int, at: str, *, author: str = "carol", templates: tuple[str, ...] = (),
            kind: str = "Service") -> ApplyRecord:
    record = ApplyRecord(f"{number:040d}", "p" * 40, at, "digest", (Result(f"{kind}/x{number}", "applied"),),
                         pull_request=number, requested_by=author, actions={f"{kind}/x{number}": "create"},
                         succeeded=True, templates=templates)
    [parsed] = read_records(record.to_json())  # as `paved stats` reads it from a note
    return parsed


def asked(number: int, at: str, login: str = "carol", comment: int | None = None) -> list[FeedbackRecord]:
    revision = f"{number:040d}"
    return [Asked(login, number, revision, at), Invited(login, number, revision, comment or number * 100, at)]


def rating(number: int, content: str, score: int, login: str = "carol", reaction: int = 1,
           at: str = "2026-11-03T10:00:00Z") -> Rating:
    return Rating(login, number, f"{number:040d}", number * 100, reaction, content, score, at)


def story() -> Stats:
    """Three merged pull requests: carol's service from fastapi-service (its first plan tripped a guardrail)
    rated 👍 then 😕; dave's database rated 👎; erin's service asked and never rated."""
    plans = [plan(4, "2026-11-02T10:00:00+00:00", ok=False, findings={"backups-in-production": 2, "naming": 1}),
             plan(4, "2026-11-02T11:00:00+00:00"),
             plan(5, "2026-11-10T10:00:00+00:00", kind="Database", author="dave", ok=False, findings={"naming": 1}),
             plan(6, "2026-11-10T10:00:00+00:00", author="erin")]
    applies = [applied(4, "2026-11-02T14:00:00+00:00", templates=("fastapi-service",)),
               applied(5, "2026-11-10T12:00:00+00:00", author="dave", kind="Database"),
               applied(6, "2026-11-11T12:00:00+00:00", author="erin", templates=("worker",))]
    feedback: list[FeedbackRecord] = [
        *asked(4, "2026-11-02T14:00:00+00:00"), rating(4, "+1", 3, reaction=1, at="2026-11-02T15:00:00Z"),
        Withdrawn("carol", 400, 1), rating(4, "confused", 2, reaction=2, at="2026-11-02T16:00:00Z"),
        *asked(5, "2026-11-10T12:00:00+00:00", login="dave"), rating(5, "-1", 1, login="dave"),
        rating(5, "+1", 3, login="bob", reaction=9),  # not the author's: no rating of dave's pull request
        *asked(6, "2026-11-11T12:00:00+00:00", login="erin"),
        Feedback("erin", 6, 77, "2026-11-11T13:00:00Z", HOSTILE, False),
        Feedback("carol", 4, 78, "2026-11-02T16:00:00Z", "the plan was clear", False)]
    return compute(plans, applies, feedback=feedback)


def test_satisfaction_is_the_authors_newest_rating_of_each_pull_request() -> None:
    whole = story().satisfaction
    assert whole is not None
    assert (whole.pull_requests, whole.asked, whole.ratings, whole.satisfied, whole.average) == (3, 3, 2, 0, 1.5)


def test_satisfaction_by_week_stands_beside_lead_time_and_first_plans() -> None:
    weeks = {w.name: w for w in story().satisfaction_weeks}
    assert list(weeks) == ["2026-W45", "2026-W46"]
    first, second = weeks["2026-W45"], weeks["2026-W46"]
    assert (first.pull_requests, first.lead_time_median_hours, first.first_plan_passed, first.first_plan_total,
            first.ratings, first.average) == (1, 5.0, 0, 1, 1, 2.0)
    assert (second.pull_requests, second.asked, second.ratings, second.average) == (2, 2, 1, 1.0)


def test_satisfaction_by_kind_and_by_golden_path() -> None:
    stats = story()
    kinds = {k.name: (k.pull_requests, k.ratings, k.average) for k in stats.satisfaction_kinds}
    assert kinds == {"Database": (1, 1, 1.0), "Service": (2, 1, 2.0)}
    paths = {p.name: (p.pull_requests, p.asked, p.ratings, p.average) for p in stats.satisfaction_golden_paths}
    assert paths == {"fastapi-service": (1, 1, 1, 2.0), "worker": (1, 1, 0, None)}


def test_the_guardrails_that_fail_first_count_first_plans_only() -> None:
    first = [(f.rule, f.pull_requests, f.findings) for f in story().first_failing]
    assert first == [("naming", 2, 2), ("backups-in-production", 1, 2)]


def test_feedback_is_listed_newest_first() -> None:
    assert [(f.login, f.pull_request) for f in story().feedback] == [("erin", 6), ("carol", 4)]


def test_the_text_report_shows_satisfaction_and_feedback_inert() -> None:
    text = as_text(story())
    assert "2 of 3 authors asked (67%) rated, average 1.5, 0 of 2 ratings (0%) 👍" in text
    assert "  By golden path" in text and "fastapi-service" in text
    assert "Guardrails that fail first" in text and "naming                 2 pull requests (2 findings)" in text
    line = next(lb for lb in text.splitlines() if " erin on #6: " in lb)
    assert "\x1b" not in text and "<script>" in line  # a terminal shows it as text, on one line
    assert line.endswith('**[x](https://evil.example)** =HYPERLINK("x")[31m')  # the escape character dropped


def test_the_json_report_carries_satisfaction_by_week_kind_and_golden_path() -> None:
    data = json.loads(as_json(story()))
    assert data["satisfaction"]["average"] == 1.5
    assert [w["name"] for w in data["satisfaction_weeks"]] == ["2026-W45", "2026-W46"]
    assert {k["name"] for k in data["satisfaction_kinds"]} == {"Service", "Database"}
    assert {p["name"] for p in data["satisfaction_golden_paths"]} == {"fastapi-service", "worker"}
    assert data["first_failing"][0] == {"rule": "naming", "pull_requests": 2, "findings": 2}
    assert data["feedback"][0]["text"] == HOSTILE  # data, exactly as written: JSON escapes it


def test_the_csv_export_has_a_row_per_week_kind_golden_path_guardrail_and_feedback() -> None:
    rows = list(csv.DictReader(io.StringIO(as_csv(story()))))
    by = {(r["section"], r["name"]): r for r in rows if r["section"] != "feedback"}
    assert by[("week", "2026-W45")]["average_rating"] == "2.0"
    assert by[("week", "2026-W45")]["lead_time_median_hours"] == "5.0"
    assert by[("kind", "Database")]["ratings"] == "1"
    assert by[("golden path", "fastapi-service")]["satisfied"] == "0"
    assert by[("first failing guardrail", "naming")]["pull_requests"] == "2"
    words = [r["text"] for r in rows if r["section"] == "feedback"]
    assert words[1] == "the plan was clear"
    assert "\n" not in words[0] and "\x1b" not in words[0]


def test_a_feedback_cell_a_spreadsheet_would_run_is_kept_as_text() -> None:
    stats = compute([], [], feedback=[Feedback("erin", 1, 1, "2026-11-02T10:00:00Z", "=HYPERLINK(\"x\")", False)])
    [row] = [r for r in csv.DictReader(io.StringIO(as_csv(stats))) if r["section"] == "feedback"]
    assert row["text"] == "'=HYPERLINK(\"x\")"


def test_nobody_asked_yet_says_so() -> None:
    assert "Satisfaction (authors' ratings" in as_text(compute([], []))
    assert "  nobody asked yet" in as_text(compute([], [])).splitlines()


# -- from git: the command and the adoption page ----------------------------------------------------------


def note(repo: PlatformRepo, ref: str, commit: str, lines: list[str]) -> None:
    for line in lines:
        repo.git("notes", "--ref", ref, "append", "-m", line, commit)


def noted_story(repo: PlatformRepo) -> None:
    head = repo.git("rev-parse", "HEAD")
    note(repo, "paved-plans", head, [plan(4, "2026-11-02T10:00:00+00:00", ok=False,
                                          findings={"backups-in-production": 1}).to_json()])
    note(repo, "paved", head, [applied(4, "2026-11-02T14:00:00+00:00", templates=("fastapi-service",)).to_json()])
    long_words = HOSTILE + "y" * (FEEDBACK_LIMIT - len(HOSTILE))
    note(repo, "paved-feedback", head, [to_json(r) for r in [
        *asked(4, "2026-11-02T14:00:00+00:00"), rating(4, "+1", 3),
        Feedback("erin", 4, 77, "2026-11-02T16:00:00Z", long_words, True)]])


def test_paved_stats_exports_satisfaction_as_csv_from_git_notes(platform_repo: PlatformRepo,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    noted_story(platform_repo)
    assert main(["stats", "--repo", str(platform_repo.root), "--offline", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    sections = {(r["section"], r["name"]): r for r in rows}
    assert sections[("week", "2026-W45")]["average_rating"] == "3.0"
    assert sections[("kind", "Service")]["satisfied"] == "1"
    assert sections[("golden path", "fastapi-service")]["ratings"] == "1"
    assert sections[("first failing guardrail", "backups-in-production")]["pull_requests"] == "1"


def test_paved_stats_text_shows_satisfaction_from_git_notes(platform_repo: PlatformRepo,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    noted_story(platform_repo)
    assert main(["stats", "--repo", str(platform_repo.root), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 author asked (100%) rated, average 3.0, 1 of 1 rating (100%) 👍" in out
    assert "fastapi-service" in out


def test_the_adoption_page_shows_satisfaction_first_failing_guardrails_and_feedback_inert(
        platform_repo: PlatformRepo, tmp_path: Path) -> None:
    noted_story(platform_repo)
    app = FastAPI()
    app.include_router(catalogue_router(PlatformSource("acme/platform", platform_repo.root, tmp_path / "index.sqlite")))
    with TestClient(app) as client:
        raw = client.get("/adoption").text
    page = " ".join(raw.split())
    assert "1 of 1 author asked rated, on average 3.0." in page
    assert '<th scope="row">2026-W45</th><td class="number">1</td><td class="number">5 h</td>' in page
    assert '<th scope="row">fastapi-service</th>' in page and '<th scope="row">Service</th>' in page
    assert "<code>backups-in-production</code>: 1 pull request (1 finding)" in page
    assert "<script>alert(1)" not in raw and "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    assert 'href="https://evil.example"' not in raw
