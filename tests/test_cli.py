"""The `paved` command as a developer uses it: output, exit codes, and errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bot.cli import main
from tests.conftest import PROJECT, SERVICE, PlatformRepo


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_exits_0_on_a_clean_catalogue(platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--repo", str(platform_repo.root))
    assert code == 0
    assert "no findings" in out


def test_validate_exits_1_and_names_file_line_column_and_field(
        platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="data", tier="prodution"))
    code, out, _ = run(capsys, "validate", "--repo", str(platform_repo.root))
    assert code == 1
    assert "catalog/services/search.yaml:12:9: error[schema] `spec.tier` must be one of" in out
    assert "did you mean `production`?" in out


def test_validate_reports_only_on_the_path_given(platform_repo: PlatformRepo,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="data", tier="prodution"))
    code, out, _ = run(capsys, "validate", "--repo", str(platform_repo.root),
                       str(platform_repo.root / "catalog" / "teams"))
    assert code == 0
    assert "search.yaml" not in out


def test_validate_as_json_lists_findings_with_positions(platform_repo: PlatformRepo,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    platform_repo.write("catalog/services/search.yaml", SERVICE.format(name="search", owner="nobody",
                                                                       tier="experimental"))
    code, out, _ = run(capsys, "validate", "--repo", str(platform_repo.root), "--format", "json")
    payload = json.loads(out)
    [finding] = payload["findings"]
    assert (finding["path"], finding["line"], finding["rule"]) == ("catalog/services/search.yaml", 5,
                                                                   "catalog.owner")
    assert code == 1


def test_plan_as_github_annotations_marks_errors_at_their_lines(
        platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    platform_repo.git("switch", "--quiet", "-c", "change")
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="data", tier="prodution"))
    platform_repo.commit()
    code, out, _ = run(capsys, "plan", "--repo", str(platform_repo.root), "--base", "main", "--head", "change",
                       "--format", "github")
    assert code == 1
    assert "::error file=catalog/services/search.yaml,line=12,col=9," in out


def test_plan_as_markdown_starts_with_the_sticky_marker(platform_repo: PlatformRepo,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="data", tier="experimental"))
    code, out, _ = run(capsys, "plan", "--repo", str(platform_repo.root), "--base", "main", "--format", "markdown")
    assert code == 0
    assert out.startswith("<!-- paved:plan -->")
    assert "Service/search" in out


def test_an_unknown_revision_exits_2_with_a_message_and_no_traceback(
        platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "--repo", str(platform_repo.root), "--base", "does-not-exist")
    assert code == 2
    assert "paved: 'does-not-exist' is not a commit" in err
    assert "Traceback" not in err + out


def test_a_broken_schema_exits_2_naming_the_file(platform_repo: PlatformRepo,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (platform_repo.root / "schemas/kinds/access.json").write_text("{ not json")
    code, _, err = run(capsys, "validate", "--repo", str(platform_repo.root))
    assert code == 2
    assert "schemas/kinds/access.json:1: invalid JSON" in err


def test_explain_lists_fields_with_allowed_values(platform_repo: PlatformRepo,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "database", "--repo", str(platform_repo.root))
    assert code == 0
    assert "spec.size  (string, required)" in out
    assert "allowed: small, medium, large" in out


def test_explain_an_unknown_kind_suggests_one(platform_repo: PlatformRepo,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "explain", "servce", "--repo", str(platform_repo.root))
    assert code == 2
    assert "did you mean `Service`?" in err


def test_new_writes_a_request_with_the_editor_schema_line(platform_repo: PlatformRepo,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "new", "Database", "search-db", "--owner", "data", "--repo",
                         str(platform_repo.root))
    assert code == 0
    written = platform_repo.root / "catalog/databases/search-db.yaml"
    assert out.strip() == "wrote catalog/databases/search-db.yaml"
    text = written.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/kinds/database.json\n")
    assert (written.parent / "../../schemas/kinds/database.json").resolve().is_file()
    assert "name: search-db" in text and "owner: data" in text
    assert "still to fill in" in err and "metadata.description" in err


def test_new_refuses_to_overwrite_an_existing_request(platform_repo: PlatformRepo,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "new", "Team", "growth", "--repo", str(platform_repo.root))
    code, _, err = run(capsys, "new", "Team", "growth", "--repo", str(platform_repo.root))
    assert code == 2
    assert "already exists" in err


def test_policy_tests_pass_and_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", "--repo", str(PROJECT))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[-1].endswith("passed, 0 failed")
    assert int(lines[-1].split()[0]) >= 14


def test_a_policy_case_in_the_wrong_folder_fails_the_run(platform_repo: PlatformRepo,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    cases = platform_repo.root / "schemas/policies/tests/database-deletion-protection"
    source = next((cases / "fail").glob("*.yaml"))
    (cases / "pass" / "misplaced.yaml").write_text(source.read_text())
    code, out, _ = run(capsys, "test", "--repo", str(platform_repo.root))
    assert code == 1
    assert "✗ pass: schemas/policies/tests/database-deletion-protection/pass/misplaced.yaml" in out


def test_the_demo_tells_the_whole_story_and_exits_0() -> None:
    bare = {k: v for k, v in os.environ.items() if k != "PAVED_POSTGRES_DSN"}  # the laptop story: SQLite
    done = subprocess.run([sys.executable, "-m", "bot.cli", "demo"], capture_output=True, text=True,
                          cwd=PROJECT, timeout=300, env=bare)
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("**Plan:** 3 to create, 1 to update, 1 to delete", "1 error to fix",
                 "waiting for approval from team data and team growth", "ready to merge", "paved/apply on",
                 "# search", "Service/search  create: applied", "PR #1 by gina, approved by dana, hugo",
                 "SQLite (embedded: paved.yaml names no PostgreSQL server): create the file",
                 "search-db.sqlite3; DATABASE_URL set on acme/search and its production environment (sqlite://",
                 "healed: Database/search-db", "drifted: Service/search, owned by growth (issue #",
                 "DATABASE_URL is back on acme/search", "its request, graph and history"):
        assert step in done.stdout, step
