"""A request's values reach a golden path as data: Jinja2 in a description is text, never code.

An attacker with write access to the platform repo asks for a service whose description holds
Jinja2 that would run a command and read Paved's webhook secret if it were rendered as a template.
The owning team approves it (a description looks harmless), it merges and Paved applies it through the
real service on the sandbox forge; the new repository carries the description as written, and
nothing ran.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.security.conftest import ORG, SECRET, Platform

SERVICE = "status-page"


def request(description: str) -> str:
    return "# yaml-language-server: $schema=../../schemas/kinds/service.json\n" + yaml.safe_dump({
        "apiVersion": "paved/v1", "kind": "Service",
        "metadata": {"name": SERVICE, "owner": "growth", "description": description},
        "spec": {"template": {"name": "fastapi-service", "parameters": {"port": "8080"}},
                 "repository": {"visibility": "private"}, "tier": "experimental", "lifecycle": "experimental"},
    }, sort_keys=False)


def found(marker: str, *folders: Path) -> list[str]:
    """Every file or folder named `marker` under `folders` (unreadable corners are skipped)."""
    hits = []
    for folder in folders:
        for root, dirs, files in os.walk(folder, onerror=lambda _: None):
            hits += [os.path.join(root, n) for n in (*dirs, *files) if n == marker]
    return hits


def test_jinja_in_a_service_description_is_scaffolded_as_text_and_runs_nothing(
        platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In production the webhook secret is in Paved's environment: put it there for the payload to look for.
    monkeypatch.setenv("PAVED_WEBHOOK_SECRET", SECRET)
    marker = f"paved-pwned-{tmp_path.name}"
    payload = (f"Status page. {{{{ cycler.__init__.__globals__.os.system('touch {tmp_path / marker} {marker}') }}}}"
               " {{ cycler.__init__.__globals__.os.environ['PAVED_WEBHOOK_SECRET'] }}")
    number = platform.open_pr({f"catalog/services/{SERVICE}.yaml": request(payload)}, by="mallory",
                              branch="status-page", title="A status page")
    platform.approve(number, by="hugo")  # growth, the owning team
    check = platform.plan_of(number)
    assert check.passing, check

    merged = platform.merge(number, by="mallory")
    assert merged.status_code == 200, merged.text
    applied = platform.applied(merged.json()["sha"])
    assert applied.conclusion == "success", applied

    readme = platform.read(SERVICE, "README.md").decode()
    entry = yaml.safe_load(platform.read(SERVICE, "catalog-entry.yaml"))
    assert payload in readme
    assert entry["metadata"]["description"] == payload
    scaffolded = [platform.read(SERVICE, path).decode() for path in
                  ("README.md", "catalog-entry.yaml", "pyproject.toml", "src/status_page/__init__.py",
                   "src/status_page/main.py")]
    assert not [text for text in scaffolded if SECRET in text]
    assert found(marker, tmp_path, platform.data_dir, Path(tempfile.gettempdir())) == []
    assert not (Path.cwd() / marker).exists()
    repo = platform.api("GET", f"/repos/{ORG}/{SERVICE}").json()
    assert repo["description"] == payload
