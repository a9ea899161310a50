"""The results cache in the data folder: per-file judgements keyed by blob id and rules digest.

One `marshal` file holds everything; marshal because entries are plain tuples, dicts and strings,
and it reads 10,000 entries in a few milliseconds where JSON or pickle take several times longer.
The cache is only ever written by Paved itself, and a file that cannot be read is treated as empty.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

FORMAT = 1
# Past this many entries the file keeps only what the current run used, so it never grows without bound.
MAX_ENTRIES = 200_000


class ResultCache(MutableMapping[str, Any]):
    """A dict backed by `<data folder>/cache/results.marshal`, written by `save()`."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "cache" / "results.marshal"
        self._entries: dict[str, Any] = {}
        self._used: set[str] = set()
        self._dirty = False
        try:
            with open(self.path, "rb") as handle:
                stored = marshal.load(handle)
            if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == FORMAT:
                self._entries = stored[1]
        except (OSError, EOFError, ValueError, TypeError):
            self._entries = {}

    def __getitem__(self, key: str) -> Any:
        value = self._entries[key]
        self._used.add(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self._entries[key] = value
        self._used.add(key)
        self._dirty = True

    def __delitem__(self, key: str) -> None:
        del self._entries[key]
        self._dirty = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Write the cache atomically if anything was added; a failure to write is not an error."""
        if not self._dirty:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = {k: v for k, v in entries.items() if k in self._used}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".results-")
            with os.fdopen(fd, "wb") as handle:
                marshal.dump((FORMAT, entries), handle)
            os.replace(temp, self.path)
            self._dirty = False
        except OSError:
            return
