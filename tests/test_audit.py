"""`paved audit`: the trail from apply notes, plan notes and the commits no apply covers yet; filters by
resource and date; text, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from bot.adapters.repo import FolderTree
from bot.apply import ApplyRecord
from bot.audit import PendingCommit, as_csv, as_text, parse_resource, parse_since, pull_request_of, trail
from bot.cli import main
from bot.errors import UsageError
from bot.provider import Result
from bot.rules import load_rules
from bot.stats import PlanRecord
from tests.conftest import DATABASE, PROJECT, SERVICE, PlatformRepo


def applied(revision: str, applied_at: str, resources: dict[str, str], *, pr: int | None = 7,
            previous: str | None = None) -> ApplyRecord:
    return ApplyRecord(revision, previous, applied_at, "digest",
                       tuple(Result(identity, "applied") for identity in resources), pull_request=pr,
                       requested_by="carol" if pr else None, merged_by="alice" if pr else None,
                       approved_by=("bob",) if pr else (), actions=resources)


COMMITS = {"a1": ("Carol <c@x>", "2026-11-02T10:00:00+00:00", "Merge pull request #7 from acme/search")}


def test_merged_commits_without_an_apply_are_in_the_trail_as_pending() -> None:
    notes = {"a1": applied("a1", "2026-11-02T11:00:00+00:00", {"Service/search": "create"}).to_json()}
    waiting = PendingCommit("b2", "Dana <d@x>", "2026-11-03T09:00:00+00:00", "Add search-db (#9)",
                            {"Database/search-db": "create"})
    entries = trail(notes, COMMITS, pending=[waiting])
    assert [(e.resource, e.status, e.pull_request) for e in entries] == [
        ("Service/search", "applied", 7), ("Database/search-db", "pending", 9)]
    assert "Database/search-db  create: pending (merged, not applied yet)" in as_text(entries)


def test_merges_name_their_pull_request_in_the_subject() -> None:
    assert pull_request_of("Merge pull request #12 from acme/search") == 12
    assert pull_request_of("Add the search service (#31)") == 31
    assert pull_request_of("Fix a typo in #4's description") is None


def test_the_trail_says_when_the_pull_request_was_opened_from_its_first_plan_record() -> None:
    notes = {"a1": applied("a1", "2026-11-02T11:00:00+00:00", {"Service/search": "create"}).to_json()}
    plans = [PlanRecord(7, "h", "2026-11-01T08:00:00+00:00", "carol", "2026-11-01T08:02:00+00:00", True),
             PlanRecord(7, "h", "2026-11-01T08:00:00+00:00", "carol", "2026-11-01T09:00:00+00:00", True)]
    [entry] = trail(notes, COMMITS, plans=plans)
    assert entry.requested_at == "2026-11-01T08:00:00+00:00"
    assert "PR #7 by carol (opened 2026-11-01T08:00:00+00:00), approved by bob, merged by alice" in as_text([entry])


def test_since_keeps_what_was_applied_or_merged_from_that_day_on() -> None:
    notes = {"a1": applied("a1", "2026-10-30T11:00:00+00:00", {"Team/old": "create"}).to_json(),
             "a2": applied("a2", "2026-11-02T11:00:00+00:00", {"Team/new": "create"}).to_json()}
    waiting = PendingCommit("b3", "Dana <d@x>", "2026-11-03T09:00:00+00:00", "Add x", {"Team/x": "create"})
    entries = trail(notes, {}, since=parse_since("2026-11-01"), pending=[waiting])
    assert [e.resource for e in entries] == ["Team/new", "Team/x"]


def test_since_takes_an_iso_date_or_date_and_time_and_nothing_else() -> None:
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T12:30:00+01:00") == datetime(2026, 11, 1, 11, 30, tzinfo=UTC)
    with pytest.raises(UsageError, match="--since '1st of November' is not a date"):
        parse_since("1st of November")


def test_a_resource_is_kind_slash_name_with_the_kind_in_any_case() -> None:
    kinds = load_rules(FolderTree(PROJECT)).described
    assert parse_resource("service/search", kinds) == "Service/search"
    assert parse_resource("services/search", kinds) == "Service/search"  # the plural its schema gives
    with pytest.raises(UsageError, match="'search' is not a resource: write KIND/NAME"):
        parse_resource("search", kinds)
    with pytest.raises(UsageError, match="'Bucket' is not a kind of resource"):
        parse_resource("Bucket/logs", kinds)


def test_csv_has_a_header_row_and_one_row_per_entry() -> None:
    record = applied("a1", "2026-11-02T11:00:00+00:00", {"Service/search": "create", "Team/x": "update"})
    notes = {"a1": record.to_json()}
    rows = list(csv.DictReader(io.StringIO(as_csv(trail(notes, COMMITS)))))
    assert [r["resource"] for r in rows] == ["Service/search", "Team/x"]
    first = rows[0]
    assert [first[c] for c in ("revision", "subject", "pull_request", "approved_by", "requested_at")] == [
        "a1", "Merge pull request #7 from acme/search", "7", "bob", ""]


# -- the command on a real git history -------------------------------------------------------------


@pytest.fixture
def history(platform_repo: PlatformRepo) -> dict[str, str]:
    """The initial catalogue, applied; two commits applied together by the apply of the second (a
    merged pull request); then a database merged that nothing has applied yet."""
    first = platform_repo.git("rev-parse", "HEAD")
    platform_repo.git("notes", "--ref", "paved", "append", "-m", applied(
        first, "2026-11-02T09:00:00+00:00", {"Team/payments": "create"}, pr=None).to_json(), first)
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="data", tier="experimental"))
    covered = platform_repo.commit("Add search")  # applied together with the next one
    platform_repo.write("catalog/services/search.yaml", SERVICE.format(name="search", owner="data", tier="production"))
    merged = platform_repo.commit("Merge pull request #5 from acme/search")
    platform_repo.git("notes", "--ref", "paved", "append", "-m", applied(
        merged, "2026-11-03T15:30:00+00:00", {"Service/search": "create"}, pr=5, previous=first).to_json(), merged)
    platform_repo.git("notes", "--ref", "paved-plans", "append", "-m", PlanRecord(
        5, merged, "2026-11-03T10:00:00+00:00", "carol", "2026-11-03T10:01:00+00:00", True).to_json(), merged)
    platform_repo.write("catalog/services/search-db.yaml",
                        DATABASE.format(name="search-db", owner="data", service="search", size="small"))
    pending = platform_repo.commit("Add search-db (#6)")
    return {"first": first, "covered": covered, "merged": merged, "pending": pending}


def audit(platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", "--repo", str(platform_repo.root), "--offline", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_paved_audit_tells_applied_and_pending_commits_from_git(platform_repo: PlatformRepo, history: dict[str, str],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = audit(platform_repo, capsys, "--format", "json")
    assert code == 0
    entries = json.loads(out)["entries"]
    assert [(e["revision"], e["resource"], e["status"]) for e in entries] == [
        (history["first"], "Team/payments", "applied"), (history["merged"], "Service/search", "applied"),
        (history["pending"], "Database/search-db", "pending")]
    assert entries[1]["requested_at"] == "2026-11-03T10:00:00+00:00"
    assert entries[2]["pull_request"] == 6 and entries[2]["action"] == "create"


def test_a_commit_an_apply_of_a_later_commit_covered_is_not_pending(platform_repo: PlatformRepo,
                                                                     history: dict[str, str],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = audit(platform_repo, capsys, "--format", "csv")
    assert history["covered"] not in out
    assert out.splitlines()[0].startswith("revision,committed_by,committed_at,subject,applied_at,resource,")


def test_paved_audit_for_one_resource_since_a_day(platform_repo: PlatformRepo, history: dict[str, str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = audit(platform_repo, capsys, "service/search", "--since", "2026-11-03", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [(r["resource"], r["status"]) for r in rows] == [("Service/search", "applied")]


def test_paved_audit_with_a_date_that_is_not_one_says_so(platform_repo: PlatformRepo,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = audit(platform_repo, capsys, "--since", "2026-13-45")
    assert (code, out) == (2, "")
    assert "paved: --since '2026-13-45' is not a date" in err and "hint: Give an ISO date" in err


def test_paved_audit_of_an_unknown_kind_says_which_kinds_there_are(platform_repo: PlatformRepo,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = audit(platform_repo, capsys, "Bucket/logs")
    assert code == 2
    assert "'Bucket' is not a kind of resource" in err and "Team, Service, Database, Environment, Access" in err
