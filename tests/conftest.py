"""Fixtures shared by the whole suite: an isolated home and data folder, and real platform repos in git."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test reads or writes the machine's home, git config or Paved data folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PAVED_DATA_DIR", str(home / "paved-data"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    yield home


class PlatformRepo:
    """A real git repository laid out like a platform repo, with the project's schemas and templates."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.com",
               "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@example.com"}
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, env=env,
                              check=True)
        return done.stdout.strip()

    def write(self, path: str, text: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def remove(self, path: str) -> None:
        (self.root / path).unlink()

    def commit(self, message: str = "change") -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


TEAM = """
apiVersion: paved/v1
kind: Team
metadata:
  name: {name}
  owner: {name}
  description: The {name} team.
spec:
  members: [alice, bob]
  maintainers: [alice, bob]
  budget:
    monthly: {budget}
"""

SERVICE = """
apiVersion: paved/v1
kind: Service
metadata:
  name: {name}
  owner: {owner}
  description: The {name} service.
spec:
  template:
    name: fastapi-service
  repository:
    visibility: private
  tier: {tier}
  lifecycle: production
"""

DATABASE = """
apiVersion: paved/v1
kind: Database
metadata:
  name: {name}
  owner: {owner}
  description: Data of {service}.
spec:
  engine: postgres
  version: "16"
  size: {size}
  service: {service}
  backups:
    enabled: true
    retentionDays: 14
  deletionProtection: true
"""


@pytest.fixture
def platform_repo(tmp_path: Path) -> PlatformRepo:
    """A platform repo on `main` with the project's rules and a small clean catalogue, committed."""
    root = tmp_path / "platform"
    root.mkdir()
    repo = PlatformRepo(root)
    repo.git("init", "--quiet", "--initial-branch=main")
    shutil.copytree(PROJECT / "schemas", root / "schemas")
    shutil.copytree(PROJECT / "templates", root / "templates")
    repo.write("catalog/teams/payments.yaml", TEAM.format(name="payments", budget=500))
    repo.write("catalog/teams/data.yaml", TEAM.format(name="data", budget=300))
    repo.write("catalog/services/checkout.yaml",
               SERVICE.format(name="checkout", owner="payments", tier="production")
               + "---" + DATABASE.format(name="checkout-db", owner="payments", service="checkout", size="small"))
    repo.commit("initial catalogue")
    return repo
