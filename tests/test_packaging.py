"""Paved as a platform engineer meets it: installed from its own wheel, on a machine without its source.

The wheel is built from the files of this checkout, offline (no build isolation, no dependencies), and
installed into a fresh virtual environment that sees the dependencies of the running one through a `.pth`
line naming its site-packages. A plain path line does not run that folder's own `.pth` files, so the
editable install there (which would import `bot` from this checkout) stays out of the way.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import bot.starter
from tests.conftest import PROJECT

VERSION = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
STARTER_IN_WHEEL = "bot/starter/data/"


@dataclass(frozen=True)
class Installed:
    """Paved installed from its wheel into a virtual environment of its own, and a folder outside the checkout."""

    sources: Path
    wheel: Path
    venv: Path
    elsewhere: Path

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PAVED_POSTGRES_DSN", "VIRTUAL_ENV")}
        return subprocess.run([str(self.venv / "bin" / argv[0]), *argv[1:]], capture_output=True, text=True,
                              cwd=self.elsewhere, env=env, timeout=timeout)


def _sources(into: Path) -> Path:
    """The checkout's files as git lists them (committed or not, never ignored ones), as a clean clone has them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("packaging")
    sources = _sources(work / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--quiet", "--wheel-dir", str(work / "dist"), str(sources)], check=True, capture_output=True,
                   timeout=120)
    [wheel] = (work / "dist").glob("paved-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "--quiet", str(wheel)], check=True, capture_output=True, timeout=120)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run([str(venv / "bin" / "python"), "-c", where], capture_output=True, text=True,
                          check=True).stdout.strip()
    (Path(site) / "paved-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return Installed(sources, wheel, venv, elsewhere)


def test_paved_is_imported_from_the_wheel_not_from_the_checkout(installed: Installed) -> None:
    done = installed.run("python", "-c", "import bot, bot.starter; print(bot.__file__); print(bot.starter.root())")
    module, starter = done.stdout.split()
    assert Path(module).is_relative_to(installed.venv)
    assert Path(starter) == Path(module).parent / "starter" / "data"


def test_the_demo_tells_its_story_from_the_installed_wheel(installed: Installed) -> None:
    done = installed.run("paved", "demo", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("paved/apply on", "waiting for approval from team data and team growth",
                 "Service/search  create: applied", "healed: Database/search-db", "its request, graph and history"):
        assert step in done.stdout, step


def test_explain_works_outside_any_platform_repo_from_paveds_own_schemas(installed: Installed) -> None:
    done = installed.run("paved", "explain", "database")
    assert done.returncode == 0, done.stderr
    assert "spec.size  (string, required)" in done.stdout
    assert "Paved's starter schemas" in done.stderr


def test_paved_version_is_pyprojects(installed: Installed) -> None:
    done = installed.run("paved", "--version")
    assert (done.returncode, done.stdout) == (0, f"paved {VERSION}\n")


def test_the_wheel_holds_every_file_of_the_starter_at_its_path_in_this_repo(installed: Installed) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--", "schemas", "templates", "catalog",
                             "examples/new-search-service", ".github/workflows/paved*.yml"],
                            cwd=PROJECT, capture_output=True, text=True, check=True).stdout.split("\0")
    tracked = [name for name in listed if name and (installed.sources / name).is_file()]
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = {name.removeprefix(STARTER_IN_WHEEL) for name in wheel.namelist()
                   if name.startswith(STARTER_IN_WHEEL)}
    assert len(tracked) > 100
    assert [name for name in tracked if name not in shipped] == []
    assert {".github/workflows/paved.yml", ".github/workflows/paved-publish.yml"} <= shipped
    assert ".github/workflows/ci.yml" not in shipped and "setup.py" not in shipped  # Paved's own, not a starter's


def test_the_wheel_holds_every_module_of_paved(installed: Installed) -> None:
    modules = sorted(path.relative_to(installed.sources).as_posix()
                     for path in (installed.sources / "bot").rglob("*.py") if "__pycache__" not in path.parts)
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    assert [module for module in modules if module not in names] == []
    assert {"bot/py.typed", "bot/web/static/paved.css", "bot/web/templates/base.html"} <= names


def test_the_wheel_says_its_license_and_where_the_project_lives(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        metadata = email.message_from_bytes(wheel.read(f"paved-{VERSION}.dist-info/METADATA"))
        license_text = wheel.read(f"paved-{VERSION}.dist-info/licenses/LICENSE").decode()
    assert metadata["License-Expression"] == "MIT"
    assert license_text.startswith("MIT License")
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL"))
    assert {"Source", "Issues", "Changelog"} <= set(urls)


def test_every_workflow_installs_the_paved_release_of_this_version() -> None:
    # A platform repo's workflows pin the release tag of the Paved that wrote them (`paved init`).
    source = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Source"]
    workflows = sorted((PROJECT / ".github" / "workflows").glob("paved*.yml"))
    pins = [line.strip().removeprefix("run: ") for path in workflows
            for line in path.read_text(encoding="utf-8").splitlines()
            if "pip install" in line and not line.lstrip().startswith("#")]
    assert len(pins) >= 6
    assert set(pins) == {f'python -m pip install "paved @ git+{source}@v{VERSION}"'}


def test_the_changelog_has_an_entry_for_this_version() -> None:
    changelog = (PROJECT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[?{re.escape(VERSION)}\]?", changelog, re.MULTILINE)


def test_an_editable_install_reads_the_checkouts_own_starter_files() -> None:
    assert bot.starter.root() == PROJECT
    assert bot.starter.rules()["schemas/kinds/team.json"] == PROJECT / "schemas" / "kinds" / "team.json"


def test_make_says_what_it_does_before_each_step_of_building_the_environment(tmp_path: Path) -> None:
    # As a newcomer types it, not as a make already running (`make test`) would pass its flags down.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(["make", "--dry-run", f"VENV={tmp_path / 'venv'}", "demo"], cwd=PROJECT, env=env,
                          capture_output=True, text=True, check=True, timeout=30)
    lines = done.stdout.splitlines()
    steps = [i for i, line in enumerate(lines) if not line.startswith("echo ") and not line.startswith("touch ")]
    assert lines[steps[-1]].endswith("paved demo")
    for i in steps[:-1]:
        assert lines[i - 1].startswith("echo "), lines[i]
    assert not [line for line in lines if "pip install" in line and ("--quiet" in line or " -q" in line)]


def test_pytest_started_as_its_own_command_collects_the_suite() -> None:
    pytest_command = Path(sys.executable).parent / "pytest"
    done = subprocess.run([str(pytest_command), "--collect-only", "-q", "-p", "no:cacheprovider", "tests/test_cli.py"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_cli.py::test_validate_exits_0_on_a_clean_catalogue" in done.stdout
