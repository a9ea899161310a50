"""Lists that grow with a platform repo's history reach git on its standard input, not its command line,
which holds 2 MiB at most: `paved audit` reads the date of every applied commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.adapters.repo import commit_dates

# 60,000 commit ids and their separators are 2.4 MB: more than Linux lets one command line hold.
COMMITS = 60_000


def many_commits(folder: Path, count: int) -> list[str]:
    """A repository with `count` empty commits on `main`, made in one `git fast-import`; their ids."""
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(folder)], check=True)
    stream = []
    for n in range(1, count + 1):
        message = f"change {n}\n".encode()
        stream.append(b"commit refs/heads/main\nmark :%d\ncommitter Alice <alice@example.com> %d +0000\n"
                      b"data %d\n%s" % (n, 1_700_000_000 + n, len(message), message))
        if n > 1:
            stream.append(b"from :%d\n" % (n - 1))
        stream.append(b"\n")
    marks = folder / "marks"
    subprocess.run(["git", "-C", str(folder), "fast-import", "--quiet", f"--export-marks={marks}"],
                   input=b"".join(stream), check=True)
    return [line.split()[1] for line in marks.read_text().splitlines()]


def test_the_dates_of_more_commits_than_a_command_line_holds_are_read(tmp_path: Path) -> None:
    commits = many_commits(tmp_path / "platform", COMMITS)
    assert sum(len(c) + 1 for c in commits) > 2 * 1024 * 1024

    dates = commit_dates(tmp_path / "platform", commits)

    assert len(dates) == COMMITS
    assert dates[commits[0]] == ("Alice <alice@example.com>", "2023-11-14T22:13:21+00:00", "change 1")
    assert dates[commits[-1]][2] == f"change {COMMITS}"
