"""`paved init`: a new platform repo that passes `paved validate` as written, never written over anything;
and `paved init --upgrade`, what this Paved's starter rules would change in an existing one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot import starter
from bot.adapters.repo import FolderTree
from bot.cli import main
from bot.config import load_config
from bot.providers import installed, settings_schemas

ACME = ("--org", "acme", "--maintainer", "maya", "--maintainer", "oskar")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=Maya", "-c", "user.email=maya@example.com",
                           *args], capture_output=True, text=True, check=True).stdout


def written(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts}


@pytest.fixture
def new_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    folder = tmp_path / "platform"
    code, _, err = run(capsys, "init", str(folder), *ACME)
    assert code == 0, err
    return folder


def test_a_new_platform_repo_passes_validate_and_its_policy_cases(new_repo: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--repo", str(new_repo))
    assert (code, out) == (0, "✓ 1 file, no findings\n")
    code, out, _ = run(capsys, "test", "--repo", str(new_repo))
    assert code == 0 and out.strip().splitlines()[-1].endswith("passed, 0 failed")


def test_init_says_what_it_wrote_and_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "init", str(tmp_path / "platform"), *ACME)
    assert code == 0
    assert out.startswith(f"Created a platform repo in {tmp_path / 'platform'} (a new git repository, branch main")
    for line in ("paved.yaml", "catalog/teams/platform.yaml  the platform team (platform), maintained by maya, oskar",
                 "schemas/", "templates/", ".github/workflows/", ".github/CODEOWNERS", "README.md"):
        assert f"\n  {line}" in out, line


def test_the_new_repo_has_the_starter_rules_and_workflows_of_this_paved(new_repo: Path) -> None:
    for path, source in starter.rules().items():
        assert (new_repo / path).read_bytes() == source.read_bytes(), path
    assert {".github/workflows/paved.yml", ".github/workflows/paved-publish.yml"} <= written(new_repo)
    assert not (new_repo / "catalog" / "services").exists()  # the example catalogue is the demo's, not a new repo's


def test_the_settings_name_the_platform_team_as_owners_and_the_organisation(new_repo: Path) -> None:
    config = load_config(FolderTree(new_repo), settings_schemas(installed()))
    assert (config.platform_owners, config.organization) == (("platform",), "acme")
    assert (new_repo / "paved.yaml").read_text().count("\n# ") >= 5  # every key is explained


def test_codeowners_makes_the_platform_team_review_the_rule_folders(new_repo: Path) -> None:
    rules = [line.split() for line in (new_repo / ".github/CODEOWNERS").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules == [["/schemas/", "@acme/platform"], ["/templates/", "@acme/platform"],
                     ["/paved.yaml", "@acme/platform"], ["/.github/", "@acme/platform"]]


def test_without_an_organisation_codeowners_says_what_to_fill_in(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "init", str(tmp_path), "--maintainer", "maya")
    text = (tmp_path / ".github/CODEOWNERS").read_text()
    assert code == 0 and "name your organisation in it" in out
    assert "# /schemas/    @ORG/platform" in text and "Name your GitHub organisation in place of ORG" in text


def test_the_readme_tells_the_repos_users_how_to_ask_for_something(new_repo: Path) -> None:
    readme = (new_repo / "README.md").read_text()
    assert readme.startswith("# acme's platform\n")
    assert "paved new Service my-service --owner my-team" in readme and "paved validate" in readme


def test_the_new_repo_is_a_git_repository_on_main(new_repo: Path) -> None:
    assert git(new_repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"


def test_init_in_a_clone_adds_to_it_instead_of_making_another_repository(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    git(tmp_path, "init", "--quiet")
    code, out, _ = run(capsys, "init", str(tmp_path / "platform"), *ACME)
    assert code == 0 and f"inside the git repository {tmp_path}" in out
    assert not (tmp_path / "platform" / ".git").exists()


def test_a_new_team_and_service_can_be_planned_in_the_new_repo(new_repo: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    git(new_repo, "add", "-A")
    git(new_repo, "commit", "--quiet", "-m", "Start the platform repo")
    run(capsys, "new", "Team", "payments", "--owner", "platform", "--repo", str(new_repo))
    code, out, _ = run(capsys, "plan", "--repo", str(new_repo), "--base", "HEAD")
    assert "+ create Team/payments  catalog/teams/payments.yaml:3  owner: platform" in out
    assert code == 1  # the new request still has blanks to fill in, and the plan says so


def test_init_refuses_to_write_over_anything_and_names_what_is_there(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("# Ours\n")
    (tmp_path / "schemas" / "kinds").mkdir(parents=True)
    (tmp_path / "schemas" / "kinds" / "team.json").write_text("{}")
    code, _, err = run(capsys, "init", str(tmp_path), *ACME)
    assert code == 2
    assert f"paved: {tmp_path} already has " in err and "README.md" in err and "schemas/kinds/team.json" in err
    assert "nothing was written" in err and "paved init --upgrade" in err
    assert written(tmp_path) == {"README.md", "schemas/kinds/team.json"}
    assert (tmp_path / "README.md").read_text() == "# Ours\n"


def test_init_refuses_a_folder_linked_elsewhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "repo" / "templates").symlink_to(tmp_path / "elsewhere")
    code, _, err = run(capsys, "init", str(tmp_path / "repo"), *ACME)
    assert code == 2 and "templates/" in err
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize(("option", "value"), [("--maintainer", "not a login"), ("--team", "Platform_Team"),
                                               ("--org", "acme_corp")])
def test_init_refuses_names_github_would_not_take_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    code, _, err = run(capsys, "init", str(tmp_path / "platform"), "--maintainer", "maya", option, value)
    assert code == 2 and f"{option} {value!r}" in err
    assert not (tmp_path / "platform").exists()


def test_upgrade_of_a_repo_with_this_paveds_starter_changes_nothing(new_repo: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "init", "--upgrade", str(new_repo))
    assert (code, out) == (0, "")
    assert "are this Paved's: nothing to change" in err


def test_upgrade_shows_as_a_patch_what_the_starter_would_change_and_writes_nothing(
        new_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(new_repo, "add", "-A")
    git(new_repo, "commit", "--quiet", "-m", "Start the platform repo")
    prices = new_repo / "schemas" / "prices.yaml"
    prices.write_text(prices.read_text().replace("small", "tiny", 1))
    (new_repo / "schemas" / "kinds" / "access.json").unlink()
    (new_repo / "schemas" / "policies" / "ours.json").write_text("{}\n")
    git(new_repo, "commit", "--quiet", "-am", "Our own rules")
    git(new_repo, "add", "-A")
    git(new_repo, "commit", "--quiet", "-m", "Our own policy")

    code, patch, err = run(capsys, "init", "--upgrade", str(new_repo))
    assert code == 0
    assert "--- a/schemas/prices.yaml\n+++ b/schemas/prices.yaml\n" in patch
    assert "\n-    monthly: {tiny: 25, " in patch and "\n+    monthly: {small: 25, " in patch
    assert "diff --git a/schemas/kinds/access.json b/schemas/kinds/access.json\nnew file mode 100644\n" in patch
    assert "ours.json" not in patch and "left as they are, since Paved's starter has no such files: " \
        "schemas/policies/ours.json" in err
    assert "would change 1 file and add 1" in err
    assert git(new_repo, "status", "--porcelain") == ""  # nothing written

    subprocess.run(["git", "-C", str(new_repo), "apply"], input=patch, text=True, check=True)
    for path, source in starter.rules().items():
        assert (new_repo / path).read_bytes() == source.read_bytes(), path
    assert (new_repo / "schemas" / "policies" / "ours.json").exists()


def test_upgrade_outside_a_platform_repo_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", "--upgrade", str(tmp_path))
    assert code == 2 and "is not inside a platform repo" in err
