"""`paved demo --keep DIR` in a folder: new, empty, or one an earlier kept demo used (cleared of what that demo
left, and only that); never one where a demo still runs, nor one holding anything else."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo import KEPT, RUNNING, _seed, claim_folder
from bot.errors import ConfigurationError


@pytest.fixture
def ended_pid() -> int:
    """The id of a process that has ended (and been waited for)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


@pytest.fixture
def running_pid() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def earlier_demo(folder: Path, pid: int) -> Path:
    """A folder as a kept demo leaves it: its parts, its process id, and a note of the user's own."""
    _seed(folder)
    for name in KEPT:
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "state").write_text("from the earlier demo\n")
    (folder / RUNNING).write_text(f"{pid}\n")
    (folder / "notes.txt").write_text("mine\n")
    return folder


def test_a_second_kept_demo_in_the_same_folder_starts_afresh(tmp_path: Path, ended_pid: int) -> None:
    folder = earlier_demo(tmp_path / "demo", ended_pid)
    said = io.StringIO()
    claim_folder(folder, said)
    _seed(folder)  # where the second demo used to stop with FileExistsError
    assert said.getvalue() == f"{folder} holds an earlier demo: starting afresh there\n"
    assert not any((folder / name / "state").exists() for name in KEPT)
    assert (folder / "seed" / "schemas" / "kinds").is_dir()
    assert (folder / "notes.txt").read_text() == "mine\n"
    assert (folder / RUNNING).read_text().strip() != str(ended_pid)


def test_a_folder_where_a_kept_demo_still_runs_is_left_alone(tmp_path: Path, running_pid: int) -> None:
    folder = earlier_demo(tmp_path / "demo", running_pid)
    with pytest.raises(ConfigurationError, match=f"is still running \\(process {running_pid}\\)"):
        claim_folder(folder, io.StringIO())
    assert all((folder / name / "state").exists() for name in KEPT)


def test_a_folder_holding_anything_else_is_refused_untouched(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "report.md").write_text("mine\n")
    code = main(["demo", "--keep", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "the folder is not empty and holds no earlier demo" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_a_new_folder_is_made_and_marked_as_the_demos(tmp_path: Path) -> None:
    claim_folder(tmp_path / "new" / "demo", io.StringIO())
    assert (tmp_path / "new" / "demo" / RUNNING).is_file()
