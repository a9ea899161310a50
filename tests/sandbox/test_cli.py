"""`paved sandbox …` (here `python -m bot.sandbox …`): serve, then script a story from the shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox import Sandbox
from bot.sandbox.commands import main

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Sandbox]:
    """A forge running in this process, found by the CLI through its data folder."""
    with Sandbox.start(tmp_path / "forge") as forge:
        yield forge


def cli(forge: Sandbox | Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    data = forge.data_dir if isinstance(forge, Sandbox) else forge
    code = main([*args, "--data", str(data)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_story_is_scripted_from_the_shell(running: Sandbox, platform_folder: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(running, "create-user", "alice", capsys=capsys)[0] == 0
    code, out, _ = cli(running, "create-user", "bob", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["token"].startswith("ghp_")
    assert cli(running, "create-org", "acme", "--owner", "alice", "--member", "bob", capsys=capsys)[0] == 0
    code, out, _ = cli(running, "create-repo", "acme/platform", "--from", str(platform_folder), "--as", "alice",
                       "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["full_name"] == "acme/platform"
    assert cli(running, "add-collaborator", "acme/platform", "bob", "--permission", "write", capsys=capsys)[0] == 0
    running.push_files("acme", "platform", "scale", {"services/billing.yaml": "replicas: 2\n"}, by="bob")
    code, out, _ = cli(running, "open-pr", "acme/platform", "--head", "scale", "--title", "Scale billing",
                       "--as", "bob", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["number"] == 1
    assert cli(running, "comment", "acme/platform", "1", "/paved plan", "--as", "bob", capsys=capsys)[0] == 0
    assert cli(running, "approve", "acme/platform", "1", "--as", "alice", capsys=capsys)[0] == 0
    code, out, _ = cli(running, "merge", "acme/platform", "1", "--as", "bob", "--method", "squash", capsys=capsys)
    assert code == 0
    assert out.strip() == running.branch_sha("acme", "platform", "main")
    assert running.read_file("acme", "platform", "services/billing.yaml") == b"replicas: 2\n"


def test_an_app_is_created_and_installed_from_the_shell(running: Sandbox, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    running.create_user("alice")
    running.create_org("acme", owners=["alice"])
    key = tmp_path / "paved.pem"
    code, out, _ = cli(running, "create-app", "acme", "Paved", "--permission", "checks=write", "--key-file", str(key),
                       "--json", capsys=capsys)
    assert code == 0 and key.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert json.loads(out)["slug"] == "paved"
    code, out, _ = cli(running, "install-app", "paved", "acme", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["account"] == "acme"


def test_a_refused_command_reports_githubs_reason(running: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    running.create_user("alice")
    code, _, err = cli(running, "create-user", "alice", capsys=capsys)
    assert code == 1
    assert "422" in err


def test_a_command_without_a_running_forge_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(tmp_path / "nothing", "create-user", "alice", capsys=capsys)
    assert code == 1
    assert "no running sandbox forge" in err


def test_serve_prints_its_url_and_stops_on_interrupt(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen([sys.executable, "-m", "bot.sandbox", "serve", "--data", str(tmp_path / "forge")],
                               stdout=subprocess.PIPE, text=True, env=env, cwd=PROJECT)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Sandbox forge running at http://127.0.0.1:")
        assert (tmp_path / "forge" / "sandbox.json").exists()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (tmp_path / "forge" / "sandbox.json").exists()
