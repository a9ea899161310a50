"""Keeps the sandbox's records in memory and mirrors every change to SQLite in the data folder.

Queries run over plain Python lists (a test forge holds hundreds of records, not millions), so the
store needs no schema per record type: SQLite keeps one JSON row per record, written when the
record is put and read back when a sandbox restarts on the same data folder. One re-entrant lock
guards all of it; the service layer holds it across each whole operation, which makes every API
call atomic with respect to every other one.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .model import RECORD_TYPES

R = TypeVar("R")



def _kind(cls: type) -> str:
    """The name a record type is kept under in SQLite: its class name without `Stored` (`Repo` for
    `StoredRepo`), as before the records were named so, so a data folder an older sandbox wrote still loads."""
    return cls.__name__.removeprefix("Stored")


_TYPES: dict[str, type] = {_kind(cls): cls for cls in RECORD_TYPES}


class Store:
    def __init__(self, path: Path) -> None:
        self.lock = threading.RLock()
        self._tables: dict[type, dict[int, Any]] = {cls: {} for cls in RECORD_TYPES}
        self._last_id = 0
        # check_same_thread=False: every use happens under self.lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A test and demo forge: trade durability for speed, WAL keeps readers unblocked.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, kind TEXT, data TEXT)")
        for record_id, kind, data in self._db.execute("SELECT id, kind, data FROM records"):
            cls = _TYPES[kind]
            self._tables[cls][record_id] = cls(**json.loads(data))
            self._last_id = max(self._last_id, record_id)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    def new_id(self) -> int:
        """Ids are unique across all record types, so an id of one kind never finds another."""
        with self.lock:
            self._last_id += 1
            return self._last_id

    def put(self, record: R) -> R:
        with self.lock:
            self._tables[type(record)][record.id] = record  # type: ignore[attr-defined]
            data = json.dumps(dataclasses.asdict(record))  # type: ignore[call-overload]
            self._db.execute(
                "INSERT OR REPLACE INTO records (id, kind, data) VALUES (?, ?, ?)",
                (record.id, _kind(type(record)), data),  # type: ignore[attr-defined]
            )
            return record

    def delete(self, record: Any) -> None:
        with self.lock:
            self._tables[type(record)].pop(record.id, None)
            self._db.execute("DELETE FROM records WHERE id = ?", (record.id,))

    def get(self, cls: type[R], record_id: int) -> R | None:
        with self.lock:
            found = self._tables[cls].get(record_id)
            return found if isinstance(found, cls) else None

    def all(self, cls: type[R], where: Callable[[R], object] | None = None) -> list[R]:
        """Records of one type in creation (id) order, optionally filtered."""
        with self.lock:
            records = sorted(self._tables[cls].values(), key=lambda record: record.id)
        return [record for record in records if where is None or where(record)]

    def first(self, cls: type[R], where: Callable[[R], object]) -> R | None:
        for record in self.iterate(cls):
            if where(record):
                return record
        return None

    def iterate(self, cls: type[R]) -> Iterator[R]:
        with self.lock:
            records = list(self._tables[cls].values())
        yield from records
