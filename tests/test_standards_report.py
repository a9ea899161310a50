"""Where scorecards are read: `paved standards` (text and JSON) and `paved stats` from the notes in git, and a
change to a standard planned as a platform change."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import FolderTree, GitTree
from bot.cli import main
from bot.plan import make_plan
from bot.rules import load_rules
from bot.standards import STANDARDS_REF, ResourceScore, Scorecard, StandardInfo, Verdict
from bot.web.catalogue import PlatformSource, catalogue_router
from tests.conftest import PlatformRepo

STANDARDS = (
    StandardInfo("codeowners-file-present", "The repository has a CODEOWNERS file", "error",
                 "Add a CODEOWNERS file naming the owning team."),
    StandardInfo("on-latest-golden-path", "The service is on the latest version of its golden path", "warning",
                 "Merge the upgrade pull request Paved opened on the repository."),
)
GOOD = ResourceScore("Service/checkout", "Service", "checkout", "payments", "production",
                     (Verdict("codeowners-file-present", True), Verdict("on-latest-golden-path", True)), latest=True)
BAD = ResourceScore("Service/ledger", "Service", "ledger", "finance", "critical", (
    Verdict("codeowners-file-present", False, "The repository has no CODEOWNERS file on its default branch."),
    Verdict("on-latest-golden-path", False, "The service is not on the latest version of its golden path: the "
            "repository has no .paved/scaffold.json", "https://github.com/acme/ledger/pulls?q=label")), latest=False)
WAITING = ResourceScore("Service/search", "Service", "search", "payments", "production",
                        unscored="it has changes not applied yet: it is scored once they are")


def note(repo: PlatformRepo, commit: str, card: Scorecard) -> None:
    repo.git("notes", f"--ref={STANDARDS_REF}", "append", "-m", card.to_json(), commit)


@pytest.fixture
def scored(platform_repo: PlatformRepo) -> PlatformRepo:
    """The platform repo with an older scorecard and, on its head, a newer one."""
    head = platform_repo.git("rev-parse", "HEAD")
    old = Scorecard(head, "2026-03-01T10:00:00+00:00", STANDARDS, (replace(GOOD, outcomes=GOOD.outcomes[:1]),))
    note(platform_repo, head, old)
    note(platform_repo, head, Scorecard(head, "2026-03-02T10:00:00+00:00", STANDARDS, (GOOD, BAD, WAITING)))
    return platform_repo


def run(repo: PlatformRepo, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["standards", "--repo", str(repo.root), "--offline", *args]) == 0
    return capsys.readouterr().out


def test_paved_standards_prints_the_newest_scorecard_with_fixes(scored: PlatformRepo,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = run(scored, capsys)
    assert "on 2026-03-02T10:00:00+00:00: 2 resources scored, 2 of 4 (50%) checks pass, 1 resource meeting every " \
           "standard (1 not scored this time)" in out
    assert "On the latest golden path: 1 of 2 (50%)" in out
    assert "Service/checkout (payments, production): meets all 2 standards" in out
    assert "Service/ledger (finance, critical): 0 of 2 standards met" in out
    assert "  FAIL error   codeowners-file-present: The repository has no CODEOWNERS file" in out
    assert ("       fix: Merge the upgrade pull request Paved opened on the repository. "
            "https://github.com/acme/ledger/pulls?q=label") in out
    assert "Service/search (payments, production): not scored: it has changes not applied yet" in out
    assert "Failing most\n  codeowners-file-present  1 of 2 (50%) (error)" in out


def test_paved_standards_as_json_says_what_fails_and_how_to_fix_it(scored: PlatformRepo,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run(scored, capsys, "--format", "json"))["scorecard"]
    assert data["scored_at"] == "2026-03-02T10:00:00+00:00"
    assert data["summary"] == {"resources": 2, "checks": 4, "passed": 2, "meeting_every_standard": 1, "unscored": 1,
                               "on_latest_golden_path": 1, "following_a_golden_path": 2}
    ledger = next(r for r in data["resources"] if r["identity"] == "Service/ledger")
    assert ledger["failed"][1] == {
        "standard": "on-latest-golden-path", "title": "The service is on the latest version of its golden path",
        "severity": "warning", "message": BAD.outcomes[1].message,
        "fix": "Merge the upgrade pull request Paved opened on the repository.",
        "link": "https://github.com/acme/ledger/pulls?q=label"}
    assert data["failing_most"][0] == {"standard": "codeowners-file-present", "failing": ["Service/ledger"],
                                       "scored": 2}


def test_paved_standards_for_one_team(scored: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(scored, capsys, "--team", "finance")
    assert "Service/ledger" in out and "Service/checkout" not in out and "of team finance" in out


def test_paved_standards_for_one_service_by_name(scored: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run(scored, capsys, "checkout", "--format", "json"))
    assert [r["identity"] for r in data["scorecard"]["resources"]] == ["Service/checkout"]


def test_paved_standards_failing_only(scored: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run(scored, capsys, "--failing", "--format", "json"))
    assert [r["identity"] for r in data["scorecard"]["resources"]] == ["Service/ledger"]


def test_paved_standards_without_a_scorecard_says_where_they_come_from(platform_repo: PlatformRepo,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert "No standards scorecard recorded yet" in run(platform_repo, capsys)
    assert json.loads(run(platform_repo, capsys, "--format", "json")) == {"version": 1, "scorecard": None}


def test_paved_standards_fetches_the_notes_from_origin(scored: PlatformRepo, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    clone = tmp_path / "clone"
    scored.git("clone", "--quiet", str(scored.root), str(clone))
    assert main(["standards", "--repo", str(clone), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["scorecard"]["summary"]["resources"] == 2


def test_paved_stats_reports_the_share_on_the_latest_golden_path(scored: PlatformRepo,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--repo", str(scored.root), "--offline", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["on_latest_golden_path"], data["following_golden_path"]) == (1, 2)
    assert main(["stats", "--repo", str(scored.root), "--offline"]) == 0
    assert "On the latest golden path: 1 of 2 services (50%) (the newest standards scorecard)" in \
        capsys.readouterr().out


def test_paved_stats_without_a_scorecard_leaves_the_share_out(platform_repo: PlatformRepo,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--repo", str(platform_repo.root), "--offline"]) == 0
    assert "golden path" not in capsys.readouterr().out


def test_a_changed_standard_is_a_platform_change_saying_what_it_scores(platform_repo: PlatformRepo) -> None:
    path = platform_repo.root / "schemas/standards/default-branch-is-main.json"
    path.write_text(path.read_text().replace('"severity": "warning"', '"severity": "error"'))
    platform_repo.git("checkout", "--quiet", "-b", "stricter")
    platform_repo.commit("Stricter")
    with GitTree(platform_repo.root, "main") as base, GitTree(platform_repo.root, "HEAD") as head:
        plan = make_plan(base, head, store=SQLiteCatalogueIndex())
    assert [(c.path, c.status) for c in plan.rule_changes] == [("schemas/standards/default-branch-is-main.json",
                                                                "modified")]
    assert plan.platform_impact == ("standard schemas/standards/default-branch-is-main.json changed: it scores "
                                    "every resource it applies to, as it exists, from the next reconcile on",)


# -- the web catalogue ----------------------------------------------------------------------------------

def web(repo: PlatformRepo, tmp_path: Path) -> TestClient:
    app = FastAPI()
    app.include_router(catalogue_router(PlatformSource("acme/platform", repo.root, tmp_path / "index.sqlite",
                                                       web_url="https://github.com")))
    return TestClient(app)


def page(client: TestClient, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_a_service_page_shows_its_scorecard_with_fixes(scored: PlatformRepo, tmp_path: Path) -> None:
    with web(scored, tmp_path) as client:
        text = page(client, "/resources/Service/checkout")
    assert 'id="standards-heading"' in text and "Meets all 2 standards that apply to it." in text


def test_a_failing_service_page_says_what_to_fix_and_links_to_it(platform_repo: PlatformRepo,
                                                                  tmp_path: Path) -> None:
    head = platform_repo.git("rev-parse", "HEAD")
    # The catalogue's own service, scored failing (a hostile message is shown as text, never as markup).
    failing = replace(BAD, identity="Service/checkout", name="checkout", owner="payments", outcomes=(
        Verdict("codeowners-file-present", False, "No CODEOWNERS <script>alert(1)</script>"),
        Verdict("on-latest-golden-path", False, "Not on the latest.", "javascript:alert(1)")))
    note(platform_repo, head, Scorecard(head, "2026-03-02T10:00:00+00:00", STANDARDS, (failing,)))
    with web(platform_repo, tmp_path) as client:
        text = page(client, "/resources/Service/checkout")
    assert "0 of 2 standards met." in text
    assert "No CODEOWNERS &lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "Fix: Add a CODEOWNERS file naming the owning team." in text
    assert "javascript:" not in text  # a link read back from a note is shown only if it is a web address


def test_a_team_page_shows_its_services_scorecards(scored: PlatformRepo, tmp_path: Path) -> None:
    with web(scored, tmp_path) as client:
        text = page(client, "/teams/payments")
    assert 'id="standards-heading"' in text
    assert "1 resource scored: 2 of 2 checks pass, 1 meeting every standard, 1 not scored this time" in text
    assert "Not scored at the last reconcile: it has changes not applied yet" in text


def test_the_standards_page_lists_what_fails_most_and_is_linked_from_home(scored: PlatformRepo,
                                                                          tmp_path: Path) -> None:
    with web(scored, tmp_path) as client:
        home = page(client, "/")
        text = page(client, "/standards")
    assert 'href="/standards">Standards</a>' in home
    rows = re.findall(r'<tr id="([a-z-]+)">', text)
    assert rows == ["codeowners-file-present", "on-latest-golden-path"]
    assert '1 of 2</td>' in text and 'href="/resources/Service/ledger">ledger</a>' in text
    assert "On the latest golden path: 1 of 2 (50%)" in text


def test_the_standards_page_before_any_scorecard_says_where_they_come_from(platform_repo: PlatformRepo,
                                                                           tmp_path: Path) -> None:
    with web(platform_repo, tmp_path) as client:
        assert "No scorecard recorded yet" in page(client, "/standards")


def test_a_new_platform_repo_starts_with_the_standards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "platform"), "--org", "acme", "--maintainer", "maya"]) == 0
    assert "the standards" in capsys.readouterr().out
    rules = load_rules(FolderTree(tmp_path / "platform"))
    assert {s.id for s in rules.standards} >= {"default-branch-protected", "on-latest-golden-path"}
