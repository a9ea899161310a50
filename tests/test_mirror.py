"""Mirrors and clones over real git and HTTP against the sandbox forge: credentials never in git's argv.

A `git` wrapper put first on PATH records every git command line and environment, then runs the real git,
so the tests see exactly what any user of the machine could read in /proc/<pid>/cmdline.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.adapters.mirror import GitMirror, MirrorError, PushRejected, clone, git_environment
from bot.apply import APPLIED_REF, NOTES_REF
from bot.stats import PLANS_REF
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
    with pytest.raises(MirrorError) as failed:
        world.ctx.mirror.fetch(REPO, ["no-such-branch"])
    assert "couldn't find remote ref" in failed.value.message
    assert token_of(world) not in failed.value.message


def test_a_wrong_token_is_refused_and_not_repeated_in_the_error(world: World, tmp_path: Path) -> None:
    wrong = "ghs_" + "NotAToken" * 4
    mirror = GitMirror(tmp_path / "other-mirrors", lambda repo: world.forge.clone_url(*repo.split("/")),
                       lambda repo: wrong)
    with pytest.raises(MirrorError) as failed:
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
    with pytest.raises(MirrorError) as failed:
        clone(world.forge.clone_url("acme", "nothing-here"), tmp_path / "nothing", token)
    assert failed.value.message.startswith("git could not clone ")
    assert token not in failed.value.message


def test_mirror_folders_are_private_to_paved_s_user(world: World) -> None:
    world.ctx.mirror.fetch(REPO, ["main"])
    owner = world.ctx.mirror.path(REPO).parent
    for folder in (owner, owner.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


# -- pushing: notes are merged, never forced; other refs move only from where they were expected ----------


def other_mirror(world: World, folder: Path) -> GitMirror:
    """Another worker's mirror of the same repositories (another machine, or another data folder)."""
    mirror = world.ctx.mirror
    assert isinstance(mirror, GitMirror)
    return GitMirror(folder, mirror.clone_url, mirror.token)


def forge_note(world: World, tmp_path: Path, ref: str, sha: str) -> list[str]:
    """The records (lines) of the note on `sha` under `ref`, as the forge has it (read through a fresh
    mirror); `git notes append` separates them with blank lines."""
    reader = other_mirror(world, tmp_path / "reader")
    assert reader.fetch_if_present(REPO, ref)
    return [line for line in reader.note(REPO, ref, sha).splitlines() if line.strip()]


def main_head(world: World) -> str:
    head = world.forge.branch_sha("acme", "platform", "main")
    assert head is not None
    return head


def test_a_notes_push_keeps_what_another_worker_pushed_first(world: World, tmp_path: Path) -> None:
    head = main_head(world)
    first, second = world.ctx.mirror, other_mirror(world, tmp_path / "second")
    first.append_note(REPO, PLANS_REF, head, '{"record": 1}')
    first.push(REPO, [PLANS_REF])
    second.append_note(REPO, PLANS_REF, head, '{"record": 2}')  # never fetched the forge's notes
    second.push(REPO, [PLANS_REF])
    assert forge_note(world, tmp_path, PLANS_REF, head) == ['{"record": 1}', '{"record": 2}']


def test_workers_recording_plans_at_once_on_two_mirrors_lose_no_record(world: World, tmp_path: Path) -> None:
    head = main_head(world)
    shared, other = world.ctx.mirror, other_mirror(world, tmp_path / "other")
    start = threading.Barrier(3)
    failures: list[BaseException] = []

    def record(mirror: GitMirror, writer: str) -> None:
        start.wait()
        try:
            for n in range(8):
                mirror.append_note(REPO, PLANS_REF, head, json.dumps({"writer": writer, "n": n}))
                mirror.push(REPO, [PLANS_REF])
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    # Two consumer threads sharing one data folder, and a worker with a mirror of its own.
    writers = [threading.Thread(target=record, args=(mirror, name))
               for mirror, name in ((shared, "a1"), (shared, "a2"), (other, "b"))]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(120)
    assert not failures, failures
    lines = forge_note(world, tmp_path, PLANS_REF, head)
    assert sorted(lines) == sorted(json.dumps({"writer": w, "n": n}) for w in ("a1", "a2", "b") for n in range(8))


def test_the_applied_ref_moves_only_from_the_commit_the_apply_found(world: World, tmp_path: Path) -> None:
    mirror = world.ctx.mirror
    first = main_head(world)
    commits = [first]
    for text in ("Requests live here.\n", "Requests live here, one file each.\n"):
        world.forge.push_files("acme", "platform", "main", {"catalog/README.md": text}, by="alice")
        commits.append(main_head(world))
    _, second, third = commits
    mirror.fetch(REPO, ["main"])

    mirror.set_ref(REPO, APPLIED_REF, first)
    mirror.push(REPO, [APPLIED_REF], expected={APPLIED_REF: None})  # the first apply: nothing there yet
    another = other_mirror(world, tmp_path / "another")
    another.fetch(REPO, ["main"])
    another.set_ref(REPO, APPLIED_REF, third)
    another.push(REPO, [APPLIED_REF], expected={APPLIED_REF: first})  # another worker moved it meanwhile

    mirror.set_ref(REPO, APPLIED_REF, second)
    for stale in (None, first):  # what this worker believed is no longer true
        with pytest.raises(PushRejected) as rejected:
            mirror.push(REPO, [APPLIED_REF], expected={APPLIED_REF: stale})
        assert token_of(world) not in rejected.value.message
    mirror.push(REPO, [APPLIED_REF], expected={APPLIED_REF: third})  # from where it is, even backwards
    assert world.ctx.forge._repo(REPO).get_git_ref("paved/applied").object.sha == second  # type: ignore[attr-defined]


# -- the mirror is a cache of the forge ----------------------------------------------------------------------


def test_a_mirror_git_cannot_open_is_fetched_again_from_the_forge(world: World) -> None:
    mirror = world.ctx.mirror
    assert isinstance(mirror, GitMirror)
    mirror.fetch(REPO, ["main"])
    (mirror.path(REPO) / "HEAD").write_bytes(b"")  # what a read-only remount left behind
    mirror.fetch(REPO, ["main"])
    assert mirror.resolve(REPO, "refs/heads/main") == main_head(world)


def test_a_mirror_without_its_objects_is_fetched_again_from_the_forge(world: World) -> None:
    mirror = world.ctx.mirror
    assert isinstance(mirror, GitMirror)
    mirror.fetch(REPO, ["main"])
    shutil.rmtree(mirror.path(REPO) / "objects")  # a half-cleaned disk took the objects away
    world.forge.push_files("acme", "platform", "main", {"catalog/README.md": "Requests.\n"}, by="alice")
    mirror.fetch(REPO, ["main"])
    with mirror.tree(REPO, main_head(world)) as tree:
        assert tree.read("catalog/README.md") == b"Requests.\n"


def test_a_mirror_git_finds_damaged_while_fetching_is_fetched_again_from_the_forge(world: World) -> None:
    mirror = world.ctx.mirror
    assert isinstance(mirror, GitMirror)
    mirror.fetch(REPO, ["main"])
    (mirror.path(REPO) / "refs" / "heads" / "lost").write_text("1" * 40 + "\n")  # names an object it lacks
    mirror.fetch(REPO, ["main"])
    assert mirror.resolve(REPO, "refs/heads/main") == main_head(world)
    assert not (mirror.path(REPO) / "refs" / "heads" / "lost").exists()


def test_a_ref_the_forge_does_not_have_is_dropped_from_the_mirror_not_carried(world: World) -> None:
    mirror = world.ctx.mirror
    mirror.fetch(REPO, ["main"])
    mirror.set_ref(REPO, APPLIED_REF, main_head(world))  # set, but its push never arrived
    assert mirror.fetch_if_present(REPO, APPLIED_REF) is False
    assert mirror.resolve(REPO, APPLIED_REF) is None


def test_a_push_whose_answer_was_lost_counts_when_the_forge_has_it(world: World) -> None:
    mirror = world.ctx.mirror
    mirror.fetch(REPO, ["main"])
    mirror.set_ref(REPO, APPLIED_REF, main_head(world))
    faults = world.forge.faults(1.0, kinds=("drop",), only="git-receive-pack", limit=1)
    mirror.push(REPO, [APPLIED_REF], expected={APPLIED_REF: None})
    world.forge.no_faults()
    assert faults.served.get("drop") == 1
    assert world.ctx.forge._repo(REPO).get_git_ref("paved/applied").object.sha == main_head(world)  # type: ignore[attr-defined]


def test_a_note_longer_than_any_command_line_is_recorded(world: World, tmp_path: Path) -> None:
    mirror = world.ctx.mirror
    mirror.fetch(REPO, ["main"])
    record = '{"results": "' + "x" * 3_000_000 + '"}'  # Linux refuses one argument over 128 KiB
    mirror.append_note(REPO, PLANS_REF, main_head(world), record)
    mirror.push(REPO, [PLANS_REF])
    assert forge_note(world, tmp_path, PLANS_REF, main_head(world)) == [record]
