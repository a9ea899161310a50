"""What Paved keeps in its data folder is readable by Paved's user only: folders 0700, files 0600.

Each test runs under the umask most machines have (0022), with which a plain `mkdir` or `open` would
make folders 0755 and files 0644, readable by every user of the machine.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.deliveries import SqliteDeliveryLog
from bot.adapters.queue import make_queue
from bot.files import private_file, private_folder, write_private
from bot.settings import Settings
from bot.webhook import Delivery


@pytest.fixture(autouse=True)
def ordinary_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_private_folder_and_its_missing_parents_are_0700_and_an_existing_parent_is_left_alone(
        tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    made = private_folder(shared / "paved" / "backups")
    assert made == shared / "paved" / "backups"
    assert (mode(shared), mode(shared / "paved"), mode(made)) == (0o755, 0o700, 0o700)
    assert private_folder(made) == made  # again: nothing to do


def test_a_private_file_is_created_0600_and_an_existing_one_is_not_touched(tmp_path: Path) -> None:
    path = private_file(tmp_path / "db.sqlite3")
    assert (mode(path), path.read_bytes()) == (0o600, b"")
    path.write_text("kept")
    private_file(path)
    assert path.read_text() == "kept"


def test_writing_privately_narrows_a_file_that_was_readable_by_all_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "search.paved.json"
    path.write_text("old")
    assert mode(path) == 0o644
    write_private(path, '{"paved": {}}')
    assert (mode(path), path.read_text()) == (0o600, '{"paved": {}}')
    write_private(tmp_path / "new.json", "{}")
    assert mode(tmp_path / "new.json") == 0o600


def settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data")}), queue_immediate=False)


def test_the_delivery_log_and_the_embedded_queue_are_private(tmp_path: Path) -> None:
    configured = settings(tmp_path)
    log = SqliteDeliveryLog(configured.deliveries_db)
    log.accept(Delivery("d-1", "push", {}, body_sha256="ab" * 32))
    queue = make_queue(configured, log, lambda delivery, work: None)
    queue.check()
    assert mode(configured.data_dir) == 0o700
    assert (mode(configured.deliveries_db), mode(configured.queue_db)) == (0o600, 0o600)
    for sidecar in configured.data_dir.glob("*.sqlite-*"):  # SQLite's -wal and -shm files
        assert mode(sidecar) == 0o600, sidecar


def test_the_catalogue_index_is_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "catalogue.sqlite"
    store = SQLiteCatalogueIndex(path)
    try:
        assert (mode(path.parent), mode(path)) == (0o700, 0o600)
        assert {p.name: mode(p) for p in path.parent.glob("catalogue.sqlite-*")} == {
            "catalogue.sqlite-wal": 0o600, "catalogue.sqlite-shm": 0o600}
    finally:
        store.close()
