"""Mirrors and clones over real git and HTTP against the sandbox forge: credentials never in git's argv.

A `git` wrapper put first on PATH records every git command line and environment, then runs the real git,
so the tests see exactly what any user of the machine could read in /proc/<pid>/cmdline.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.adapters.workspace import Workspace, WorkspaceError, clone, git_environment
from bot.apply import NOTES_REF
from tests.conftest import REPO, World

SENTINEL = "paved-secret-sentinel-8c1f"


@dataclass
class Call:
    argv: list[str]
    env: dict[str, str]


class GitRecorder:
    """Every git run through PATH while it is installed: its argv and environment."""

    def __init__(self, folder: Path) -> None:
        real = shutil.which("git")
        assert real is not None
        self.log = folder / "calls"
        folder.mkdir(parents=True, exist_ok=True)
        wrapper = folder / "git"
        # NUL-separated argv, then the environment (`env -0`), then a record separator.
        wrapper.write_text(f"""#!/bin/sh
{{ printf 'argv\\0'; printf '%s\\0' "$@"; printf 'env\\0'; env -0; printf 'end\\0'; }} >> '{self.log}'
exec '{real}' "$@"
""")
        wrapper.chmod(0o755)
        self.bin = folder

    def calls(self) -> list[Call]:
        found: list[Call] = []
        if not self.log.exists():
            return found
        fields = self.log.read_bytes().decode().split("\0")
        index = 0
        while index < len(fields) - 1:
            assert fields[index] == "argv"
            end_argv = fields.index("env", index)
            end_env = fields.index("end", end_argv)
            env = dict(item.split("=", 1) for item in fields[end_argv + 1:end_env] if "=" in item)
            found.append(Call(fields[index + 1:end_argv], env))
            index = end_env + 1
        return found


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRecorder:
    recording = GitRecorder(tmp_path / "recording-bin")
    monkeypatch.setenv("PATH", f"{recording.bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PAVED_WEBHOOK_SECRET", SENTINEL)  # what Paved's own environment holds
    return recording


def token_of(world: World) -> str:
    token: str = world.ctx.mirror.token(REPO)
    return token


def test_a_fetch_and_a_push_carry_the_token_in_git_s_environment_never_in_its_command_line(
        world: World, recorder: GitRecorder) -> None:
    mirror = world.ctx.mirror
    mirror.fetch(REPO, ["main"])
    head = mirror.resolve(REPO, "refs/heads/main")
    assert head is not None
    mirror.set_ref(REPO, "refs/paved/applied", head)
    mirror.push(REPO, ["refs/paved/applied"])
    assert world.forge.branch_sha("acme", "platform", "main") == head
    assert world.ctx.forge._repo(REPO).get_git_ref("paved/applied").object.sha == head  # type: ignore[attr-defined]

    token = token_of(world)
    network = [call for call in recorder.calls() if call.argv[:1] in (["fetch"], ["push"])]
    assert [call.argv[0] for call in network] == ["fetch", "push"]
    for call in recorder.calls():
        assert not any(token in arg for arg in call.argv), call.argv
    for call in network:
        assert "-c" not in call.argv and not any("extraHeader" in arg for arg in call.argv)
        assert call.env["GIT_CONFIG_KEY_1"] == "http.extraHeader"
        assert call.env["GIT_CONFIG_VALUE_1"].startswith("Authorization: Basic ")
        assert SENTINEL not in "".join(call.env.values())
        assert not {name for name in call.env if name.startswith("PAVED_")}
    # Nothing of the credential was written into the mirror.
    config = (mirror.path(REPO) / "config").read_text()
    assert token not in config and "extraHeader" not in config


def test_git_s_error_is_scrubbed_of_the_token(world: World) -> None:
    with pytest.raises(WorkspaceError) as failed:
        world.ctx.mirror.fetch(REPO, ["no-such-branch"])
    assert "couldn't find remote ref" in failed.value.message
    assert token_of(world) not in failed.value.message


def test_a_wrong_token_is_refused_and_not_repeated_in_the_error(world: World, tmp_path: Path) -> None:
    wrong = "ghs_" + "NotAToken" * 4
    mirror = Workspace(tmp_path / "other-mirrors", lambda repo: world.forge.clone_url(*repo.split("/")),
                       lambda repo: wrong)
    with pytest.raises(WorkspaceError) as failed:
        mirror.fetch(REPO, ["main"])
    assert failed.value.message.startswith(f"git could not fetch for {REPO}: ")
    assert wrong not in failed.value.message


def test_git_s_environment_holds_only_what_git_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAVED_GITHUB_PRIVATE_KEY", SENTINEL)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    env = git_environment("ghs_token")
    assert SENTINEL not in env.values()
    assert env["HTTPS_PROXY"] == "http://proxy.internal:3128" and env["PATH"] == os.environ["PATH"]
    assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"]) == (
        "2", "credential.helper", "")
    assert "ghs_token" not in env["GIT_CONFIG_VALUE_1"]  # base64, as git sends it
    assert "GIT_CONFIG_KEY_1" not in git_environment()


def test_a_clone_keeps_no_credential_in_its_config(world: World, recorder: GitRecorder, tmp_path: Path) -> None:
    token = token_of(world)
    target = tmp_path / "platform-clone"
    world.ctx.mirror.fetch(REPO, ["main"])
    head = world.ctx.mirror.resolve(REPO, "refs/heads/main")
    assert head is not None
    world.ctx.mirror.append_note(REPO, NOTES_REF, head, '{"applied": true}')
    world.ctx.mirror.push(REPO, [NOTES_REF])

    clone(world.forge.clone_url("acme", "platform"), target, token, refs=[NOTES_REF])

    assert (target / "catalog").is_dir()
    shown = subprocess.run(["git", "-C", str(target), "notes", f"--ref={NOTES_REF}", "show", head],
                           capture_output=True, text=True, check=True).stdout
    assert '"applied": true' in shown
    config = (target / ".git" / "config").read_text()
    assert token not in config and "x-access-token" not in config and "extraHeader" not in config
    for call in recorder.calls():
        assert not any(token in arg for arg in call.argv), call.argv


def test_a_clone_that_fails_says_so_without_the_token(world: World, tmp_path: Path) -> None:
    token = token_of(world)
    with pytest.raises(WorkspaceError) as failed:
        clone(world.forge.clone_url("acme", "nothing-here"), tmp_path / "nothing", token)
    assert failed.value.message.startswith("git could not clone ")
    assert token not in failed.value.message


def test_mirror_folders_are_private_to_paved_s_user(world: World) -> None:
    world.ctx.mirror.fetch(REPO, ["main"])
    owner = world.ctx.mirror.path(REPO).parent
    for folder in (owner, owner.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
