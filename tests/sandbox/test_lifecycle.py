"""Starting, stopping and restarting a sandbox forge."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

import bot.sandbox.endpoints  # noqa: F401 (imported up front: start-up is measured after imports)
from bot.sandbox import Sandbox, SandboxBusy


def test_a_forge_starts_on_a_loopback_port_in_well_under_a_second(tmp_path: Path) -> None:
    started = time.perf_counter()
    forge = Sandbox.start(tmp_path / "forge")
    elapsed = time.perf_counter() - started
    try:
        assert elapsed < 0.5
        assert forge.api_url.startswith("http://127.0.0.1:")
        assert requests.get(f"{forge.api_url}/users/sandbox-admin", timeout=5).status_code == 200
    finally:
        forge.stop()


def test_a_stopped_forge_leaves_no_threads_behind(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with Sandbox.start(tmp_path / "forge") as forge:
        forge.create_user("alice")
        requests.get(f"{forge.api_url}/users/alice", timeout=5)
    time.sleep(0.1)
    assert {t for t in threading.enumerate() if t.is_alive()} - before == set()


def test_a_restarted_forge_keeps_its_people_and_repositories(tmp_path: Path) -> None:
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        forge.create_repo("alice", "notes", by="alice", auto_init=True)
        sha = forge.branch_sha("alice", "notes", "main")
    with Sandbox.start(tmp_path / "forge") as again:
        answer = requests.get(f"{again.api_url}/repos/alice/notes/branches/main", timeout=5,
                              headers={"Authorization": f"token {alice.token}"})
        assert answer.json()["commit"]["sha"] == sha


def test_the_admin_token_is_written_to_the_data_folder(tmp_path: Path) -> None:
    with Sandbox.start(tmp_path / "forge") as forge:
        assert (tmp_path / "forge" / "admin-token").read_text().strip() == forge.admin_token
        assert (tmp_path / "forge" / "admin-token").stat().st_mode & 0o077 == 0


def test_two_forges_cannot_share_a_data_folder(tmp_path: Path) -> None:
    with Sandbox.start(tmp_path / "forge"), pytest.raises(SandboxBusy):
        Sandbox.start(tmp_path / "forge")
