"""Folders and files Paved keeps its state in: readable by Paved's own user only.

The data folder holds what nobody else on the machine should read: database dumps and SQLite databases,
mirrors of private repositories, the delivery log, the catalogue's index. Folders Paved creates there are
0700 and files it creates are 0600, made with that mode from the start rather than tightened after they
were written, so no other user can open them even for a moment. The process's umask can only take
permissions away, so a folder is also set to 0700 once made (in case an unusual umask took Paved's own).

Folders that already exist are left as they are: the data folder may be one an operator made (and
pointing `PAVED_DATA_DIR` at a shared folder must not change that folder's mode); what Paved creates
inside it is private either way.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """Make `path` and any missing parents, each missing one with mode 0700; return `path`."""
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made meanwhile by another thread or process, which made it private too
        os.chmod(folder, FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 unless it exists (its mode is then left alone); return `path`.

    For files that other code opens by name afterwards, as SQLite does: an empty file is a valid empty
    database, and SQLite gives its `-wal`, `-shm` and `-journal` files the database file's permissions.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE))
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path`, which is mode 0600 before anything is written to it, even if it
    existed with a wider mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(fd, FILE_MODE)
        handle.write(text)
