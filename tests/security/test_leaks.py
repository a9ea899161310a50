"""What a local user of Paved's machine, or a reader of the platform repo, can get out of Paved: nothing.

Any user of the machine can list every process's command line (`/proc/*/cmdline`), so a token given to
git there is a token given away; a reader's review must not make Paved work for them.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from bot.sandbox import recording
from tests.conftest import experimental_change
from tests.security.conftest import Platform

TOKEN_SHAPES = re.compile(r"gh[opsu]_[A-Za-z0-9]{20,}|Authorization|x-access-token", re.IGNORECASE)


@pytest.fixture
def recorded_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `git` first on PATH that writes each command line it is given to a log, then runs the real git."""
    real = shutil.which("git")
    assert real is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "git-argv.log"
    wrapper = folder / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" >> "{log}"\nprintf "\\n" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


def test_no_token_is_ever_on_a_git_command_line(recorded_git: Path, platform: Platform) -> None:
    number = experimental_change(platform.forge, "reword", by="gina")
    assert platform.plan_of(number).conclusion == "success"
    merged = platform.merge(number, by="gina").json()["sha"]
    assert platform.applied(merged).conclusion == "success"

    calls = recorded_git.read_bytes().decode("utf-8", "replace").splitlines()
    fetches = [c for c in calls if c.startswith(("fetch\0", "push\0")) or "\0fetch\0" in c or "\0push\0" in c]
    assert fetches, "Paved fetched and pushed with git while planning and applying"
    leaked = [c.replace("\0", " ") for c in calls if TOKEN_SHAPES.search(c)]
    assert leaked == []


def test_a_readers_review_does_not_make_paved_plan_again(platform: Platform) -> None:
    number = experimental_change(platform.forge, "reword", by="gina")
    platform.plan_of(number)
    published: list[str] = []  # every check run Paved publishes or edits, as the forge answers it
    stop = recording.watch(on_exchange=lambda e: published.append(e.path) if e.method in ("POST", "PATCH")
                           and "/check-runs" in e.path else None)
    try:
        platform.approve(number, by="rita")  # may only read the platform repo, and is in no team
        platform.settle()
        assert published == []

        platform.approve(number, by="bob")  # a writer's review does plan again: what makes the above worth reading
        platform.settle()
        assert published != []
    finally:
        stop()
