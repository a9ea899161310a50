"""The `paved` command as a developer uses it: output, exit codes, and errors without tracebacks."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import subprocess
import sys

import pytest

from bot.cli import build_parser, main
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
    for step in (": 3 to create, 1 to update, 1 to delete · cost +$70.00/month",
                 "+ create Service/search  catalog/services/search.yaml:3  owner: growth  +$40.00/month",
                 "What Paved will do after merge:", "1 error to fix",
                 "waiting for approval from team data and team growth", "ready to merge", "paved/apply on",
                 "# search", "Service/search  create: applied", "PR #1 by gina, approved by dana, hugo",
                 "SQLite (embedded: paved.yaml names no PostgreSQL server): create the file",
                 "search-db.sqlite3; DATABASE_URL set on acme/search and its production environment (sqlite://",
                 "healed: Database/search-db", "drifted: Service/search, owned by growth (issue #",
                 "DATABASE_URL is back on acme/search", "its request, graph and history"):
        assert step in done.stdout, step
    # The plan comment's Markdown is GitHub's to show; the terminal gets the plan as text.
    assert not [mark for mark in ("<!-- paved:plan -->", "**Plan:**", "| Action |", "<details>", "### ")
                if mark in done.stdout]


def test_validate_of_a_folder_says_what_was_found_elsewhere_in_the_repo(
        platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    platform_repo.write("catalog/services/search.yaml", SERVICE.format(name="search", owner="data", tier="prodution"))
    code, out, _ = run(capsys, "validate", "--repo", str(platform_repo.root),
                       str(platform_repo.root / "catalog" / "teams"))
    assert code == 0
    assert out == ("✓ 2 files, no findings\n"
                   "only catalog/teams is reported (2 files of 4 judged); 1 error elsewhere in the repo: "
                   "run `paved validate`\n")


def test_validate_of_a_file_in_a_clean_repo_says_nothing_is_wrong_elsewhere(
        platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--repo", str(platform_repo.root),
                       str(platform_repo.root / "catalog" / "teams" / "data.yaml"))
    assert code == 0
    assert out.splitlines()[-1] == ("only catalog/teams/data.yaml is reported (1 file of 3 judged); "
                                    "no findings elsewhere in the repo either")


def test_validate_as_json_of_a_folder_says_what_was_found_elsewhere_on_stderr(
        platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    platform_repo.write("catalog/services/search.yaml", SERVICE.format(name="search", owner="data", tier="prodution"))
    code, out, err = run(capsys, "validate", "--repo", str(platform_repo.root), "--format", "json",
                         str(platform_repo.root / "catalog" / "teams"))
    assert (code, json.loads(out)["findings"]) == (0, [])
    assert "1 error elsewhere in the repo" in err


def test_new_refuses_a_name_paved_does_not_take_and_writes_nothing(platform_repo: PlatformRepo,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "new", "Service", "Search_API", "--owner", "data", "--repo", str(platform_repo.root))
    assert (code, out) == (1, "")
    assert "paved: catalog/services/Search_API.yaml was not written:" in err
    assert "error[schema] `metadata.name`" in err
    assert not (platform_repo.root / "catalog/services/Search_API.yaml").exists()


def test_new_refuses_an_owner_that_is_no_team_and_writes_nothing(platform_repo: PlatformRepo,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "new", "Service", "search", "--owner", "dta", "--repo", str(platform_repo.root))
    assert code == 1
    assert "catalog/services/search.yaml:6:10: error[catalog.owner] the owner 'dta' is not a Team" in err
    assert "did you mean `data`?" in err
    assert not (platform_repo.root / "catalog/services/search.yaml").exists()


def test_new_refuses_a_resource_another_file_requests_already(platform_repo: PlatformRepo,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (platform_repo.root / "catalog/services/checkout.yaml").rename(platform_repo.root / "catalog/services/shop.yaml")
    code, _, err = run(capsys, "new", "Service", "checkout", "--owner", "payments", "--repo", str(platform_repo.root))
    assert code == 1 and "Service/checkout is already defined" in err
    assert not (platform_repo.root / "catalog/services/checkout.yaml").exists()


@pytest.mark.parametrize("name", ["../../escape", "a/b", ".."])
def test_new_refuses_a_name_that_is_a_path(platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str],
                                           name: str) -> None:
    before = sorted(p for p in platform_repo.root.rglob("*") if ".git" not in p.parts)
    code, _, err = run(capsys, "new", "Service", name, "--owner", "data", "--repo", str(platform_repo.root))
    assert code == 2 and "is not a name Paved takes" in err
    assert sorted(p for p in platform_repo.root.rglob("*") if ".git" not in p.parts) == before


def test_a_new_team_owns_itself_unless_told(platform_repo: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "new", "Team", "search", "--repo", str(platform_repo.root))
    assert (code, out) == (0, "wrote catalog/teams/search.yaml\n")
    assert "  owner: search\n" in (platform_repo.root / "catalog/teams/search.yaml").read_text()


@pytest.mark.parametrize("argv", [["validate", "--verbose"], ["--verbose", "validate"], ["validate", "-v"],
                                  ["serve", "--verbose"], ["ci", "-v"]])
def test_verbose_is_accepted_before_or_after_the_command(argv: list[str]) -> None:
    assert build_parser(argv).parse_args(argv).verbose is True


def test_without_verbose_paved_is_quiet() -> None:
    assert build_parser(["validate"]).parse_args(["validate"]).verbose is False


def test_verbose_after_test_lists_the_passing_cases(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", "--repo", str(PROJECT), "--verbose")
    assert code == 0 and "    ✓ pass: schemas/policies/tests/" in out


def help_of(*argv: str) -> str:
    """What `paved ARGV --help` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as leaving:
        build_parser([*argv, "--help"]).parse_args([*argv, "--help"])
    assert leaving.value.code == 0
    return out.getvalue()


def every_command() -> list[str]:
    parser = build_parser(["--help"])
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(commands.choices)


def test_every_command_has_help_of_its_own() -> None:
    descriptions = {}
    for command in every_command():
        text = help_of(command)
        assert text.startswith(f"usage: paved {command} "), command
        descriptions[command] = text.split("\n\n")[1]
    assert len(set(descriptions.values())) == len(descriptions) >= 15


def test_the_demos_help_tells_the_demo_and_offers_only_its_own_options() -> None:
    text = help_of("demo")
    assert "sandbox forge" in text and "--keep DIR" in text and "Ctrl-C" in text
    assert "--repo" not in text and "--no-cache" not in text


def test_paved_version_names_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["--version"])
    assert (leaving.value.code, capsys.readouterr().out) == (0, f"paved {importlib.metadata.version('paved')}\n")
