"""Leases: work that must not overlap holds a named lease with an owner and an expiry, renewed while it runs.

A lock without an owner or an expiry stays taken when the worker holding it is killed, and the work it
guards stops until a person clears it. A lease instead belongs to one holder (a token of its own), lasts
`ttl` seconds unless its holder renews it, and can only be renewed or released by that holder: after a
crash, the next job takes it once it expired, and nobody has to act. Like Kubernetes' `Lease` objects
(holder identity, renew time, duration), and built on what the stores give:

- Redis: redis-py's `Lock` (a token per holder, `timeout`, `reacquire`, release only by the holder).
- SQLite (the embedded queue's file): one row per lease (name, holder, expiry, fence), taken in one
  `INSERT … ON CONFLICT DO UPDATE … WHERE expires < now OR holder = ?` statement, renewed and released
  only where the holder and fence still match.
- memory: the same rules in this process, for the immediate queue of the tests.

Each acquisition increments the lease's fencing counter (`Held.fence`), so two holdings of one lease
never share a fence. A holder that renews too late, or whose lease another took after it expired, has
lost it: `renew` and `check` raise `LeaseLost`, and a writer calls `check` before each external write it
makes under the lease, so a holder that lost its lease publishes nothing (see `bot.handlers.Context`).
`kept` renews a lease from a thread while a block of work runs.

`ALWAYS_HELD` stands for work nothing else can race (`paved ci`, tests): it is always held.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import PavedError

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)


class LeaseLost(PavedError):
    """Raised when work finds that the lease it holds is no longer its own (it expired and another took
    it, or it could not be renewed in time): it must stop before writing anything more. `name` is the
    lease's, `fence` the fencing value this holder had."""

    def __init__(self, name: str, fence: int, why: str) -> None:
        super().__init__(f"the lease {name} (fence {fence}) is no longer held: {why}")
        self.name = name
        self.fence = fence


class LeaseStoreError(PavedError):
    """Raised when the store that keeps leases (Redis, the SQLite file) cannot be reached; `backend` says
    which."""

    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class Held(Protocol):
    """A lease this process holds. `fence` grows with every acquisition of the lease's name."""

    name: str
    fence: int

    def renew(self) -> None:
        """Extend the lease by its ttl from now; `LeaseLost` when it is no longer ours,
        `LeaseStoreError` when the store cannot be reached (the lease still runs until its expiry)."""
        ...

    def check(self) -> None:
        """Make sure the lease is still ours before an external write (renewing it); `LeaseLost` if not,
        or if the store cannot say so."""
        ...

    def release(self) -> None:
        """Give the lease up (once the work is done); a lease lost meanwhile is left to its new holder."""
        ...


class Lease(Protocol):
    """Where leases are kept."""

    backend: str

    def acquire(self, name: str, ttl: float) -> Held | None:
        """Take lease `name` for `ttl` seconds if nobody holds it (or its holder let it expire); None
        when another holds it."""
        ...

    def flush(self) -> set[str]:
        """Release every lease, held or expired, whoever holds it; the names that were held. Only for
        a person who knows no holder is running."""
        ...


def holder_identity() -> str:
    """Who holds a lease, for people reading the store: host, process and a token of its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


class _Held(ABC):
    """What the stores share: the local view of the expiry, and losing the lease for good."""

    def __init__(self, name: str, ttl: float, holder: str, fence: int, backend: str, taken_at: float) -> None:
        self.name = name
        self.ttl = ttl
        self.holder = holder
        self.fence = fence
        self.backend = backend
        # When the lease surely expires, by this process's clock: measured from before the store
        # answered, so it is never later than the store's own.
        self._deadline = taken_at + ttl
        self._lost: str | None = None
        self._released = False
        self._guard = threading.Lock()

    @abstractmethod
    def _extend(self) -> bool:
        """Extend the lease in the store by `ttl` if it is still this holder's; whether it was."""

    @abstractmethod
    def _drop(self) -> None:
        """Release the lease in the store if it is still this holder's."""

    def renew(self) -> None:
        with self._guard:
            if self._lost is not None:
                raise LeaseLost(self.name, self.fence, self._lost)
            if self._released:
                raise LeaseLost(self.name, self.fence, "it was released")
            started = time.monotonic()
            try:
                ours = self._extend()
            except LeaseStoreError as exc:
                if time.monotonic() >= self._deadline:
                    self._lost = f"it expired while the {self.backend} store could not be reached ({exc.message})"
                    raise LeaseLost(self.name, self.fence, self._lost) from exc
                raise
            if not ours:
                self._lost = "it expired and was taken by other work, or was flushed"
                raise LeaseLost(self.name, self.fence, self._lost)
            self._deadline = started + self.ttl

    def check(self) -> None:
        try:
            self.renew()
        except LeaseStoreError as exc:
            raise LeaseLost(self.name, self.fence, f"the {self.backend} store cannot confirm it: {exc.message}") \
                from exc

    def release(self) -> None:
        with self._guard:
            if self._released:
                return
            self._released = True
            if self._lost is not None:
                return
            try:
                self._drop()
            except LeaseStoreError as exc:
                # It expires on its own; the next holder waits at most its ttl.
                log.warning("could not release the lease %s (it expires on its own): %s", self.name, exc.message)


class _AlwaysHeld:
    """The lease of work that nothing else can race."""

    name = "unguarded"
    fence = 0

    def renew(self) -> None:
        pass

    def check(self) -> None:
        pass

    def release(self) -> None:
        pass


ALWAYS_HELD: Held = _AlwaysHeld()


class Together:
    """Several leases held as one (a check run rerun for several pull requests): checked, renewed and
    released together; its fence is the highest of theirs."""

    def __init__(self, held: Sequence[Held]) -> None:
        self.held = tuple(held)
        self.name = ", ".join(h.name for h in self.held)
        self.fence = max((h.fence for h in self.held), default=0)

    def renew(self) -> None:
        for held in self.held:
            held.renew()

    def check(self) -> None:
        for held in self.held:
            held.check()

    def release(self) -> None:
        for held in reversed(self.held):
            held.release()


@contextmanager
def kept(held: Held, every: float) -> Iterator[Held]:
    """Renew `held` every `every` seconds from a thread while the block runs, then release it.

    A renewal that finds the lease lost stops renewing and logs it; the work learns it at its next
    `check`. A renewal the store does not answer is tried again at the next beat.
    """
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(every):
            try:
                held.renew()
            except LeaseLost as lost:
                log.warning("%s", lost.message)
                return
            except LeaseStoreError as exc:
                log.warning("could not renew the lease %s, trying again in %.1fs: %s", held.name, every, exc.message)

    thread = threading.Thread(target=renew, name=f"lease {held.name}", daemon=True)
    thread.start()
    try:
        yield held
    finally:
        stop.set()
        thread.join()
        held.release()


# -- memory ----------------------------------------------------------------------------------------------------


class MemoryLeases:
    """Leases in this process only (the immediate queue): the same rules, on the monotonic clock."""

    backend = "memory"

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, float, int]] = {}  # name -> (holder, expires, fence)
        self._guard = threading.Lock()

    def acquire(self, name: str, ttl: float) -> Held | None:
        holder = holder_identity()
        with self._guard:
            now = time.monotonic()
            current, expires, fence = self._rows.get(name, ("", 0.0, 0))
            if current and expires >= now:
                return None
            self._rows[name] = (holder, now + ttl, fence + 1)
        return _RowHeld(self, name, ttl, holder, fence + 1, now)

    def flush(self) -> set[str]:
        with self._guard:
            now = time.monotonic()
            held = {name for name, (holder, expires, _) in self._rows.items() if holder and expires >= now}
            self._rows = {name: ("", 0.0, fence) for name, (_, _, fence) in self._rows.items()}
        return held

    def _extend(self, name: str, holder: str, fence: int, ttl: float) -> bool:
        with self._guard:
            now = time.monotonic()
            if self._rows.get(name, ("", 0.0, 0))[::2] != (holder, fence) or self._rows[name][1] < now:
                return False
            self._rows[name] = (holder, now + ttl, fence)
            return True

    def _drop(self, name: str, holder: str, fence: int) -> None:
        with self._guard:
            if self._rows.get(name, ("", 0.0, 0))[::2] == (holder, fence):
                self._rows[name] = ("", 0.0, fence)


class _RowStore(Protocol):
    """A store that keeps each lease as a row (holder, expiry, fence): the memory and SQLite stores."""

    backend: str

    def _extend(self, name: str, holder: str, fence: int, ttl: float) -> bool: ...

    def _drop(self, name: str, holder: str, fence: int) -> None: ...


class _RowHeld(_Held):
    """A lease held in a `_RowStore`: renewing and releasing touch its row only while it is still ours."""

    def __init__(self, store: _RowStore, name: str, ttl: float, holder: str, fence: int, taken_at: float) -> None:
        super().__init__(name, ttl, holder, fence, store.backend, taken_at)
        self._store = store

    def _extend(self) -> bool:
        return self._store._extend(self.name, self.holder, self.fence, self.ttl)

    def _drop(self) -> None:
        self._store._drop(self.name, self.holder, self.fence)


# -- SQLite ----------------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS paved_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,   -- '' once released
    expires REAL NOT NULL,  -- seconds since the epoch
    fence INTEGER NOT NULL  -- incremented at each acquisition
)
"""

# One statement, so one transaction: a free, released or expired lease is taken and its fence moves on;
# a lease another holds in time is left alone (no row comes back).
_ACQUIRE = """
INSERT INTO paved_leases (name, holder, expires, fence) VALUES (:name, :holder, :expires, 1)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires, fence = fence + 1
    WHERE paved_leases.expires < :now OR paved_leases.holder = :holder
RETURNING fence
"""


class SqliteLeases:
    """Leases in a table of the embedded queue's SQLite file, shared by every process that opens it.

    Times are the machine's clock: the processes sharing one SQLite file share one machine.
    """

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connection() as db:
            db.execute(_SCHEMA)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: a lease is renewed from another thread than the one that took it.
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise LeaseStoreError(f"the leases in {self.path} cannot be opened: {exc}", backend=self.backend) from exc
        try:
            yield db
        except sqlite3.Error as exc:
            raise LeaseStoreError(f"the leases in {self.path} cannot be used: {exc}", backend=self.backend) from exc
        finally:
            db.close()

    def acquire(self, name: str, ttl: float) -> Held | None:
        holder = holder_identity()
        with self._connection() as db:
            started, now = time.monotonic(), time.time()
            rows = db.execute(_ACQUIRE, {"name": name, "holder": holder, "expires": now + ttl, "now": now}).fetchall()
        return _RowHeld(self, name, ttl, holder, int(rows[0][0]), started) if rows else None

    def flush(self) -> set[str]:
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            held = db.execute("SELECT name FROM paved_leases WHERE holder != '' AND expires >= ?",
                              (time.time(),)).fetchall()
            db.execute("UPDATE paved_leases SET holder = '', expires = 0 WHERE holder != ''")
            db.execute("COMMIT")
        return {str(name) for (name,) in held}

    def _extend(self, name: str, holder: str, fence: int, ttl: float) -> bool:
        with self._connection() as db:
            now = time.time()
            done = db.execute("UPDATE paved_leases SET expires = ? WHERE name = ? AND holder = ? AND fence = ? "
                              "AND expires >= ?", (now + ttl, name, holder, fence, now))
            return done.rowcount == 1

    def _drop(self, name: str, holder: str, fence: int) -> None:
        with self._connection() as db:
            db.execute("UPDATE paved_leases SET holder = '', expires = 0 WHERE name = ? AND holder = ? AND fence = ?",
                       (name, holder, fence))


# -- Redis -----------------------------------------------------------------------------------------------------


class RedisLeases:
    """Leases in Redis, under `prefix`: redis-py's `Lock` keeps `<prefix>.lease.<name>` (the holder's token,
    expiring with the lease), and `<prefix>.fence.<name>` counts acquisitions (it never expires)."""

    backend = "redis"

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        import redis

        self.client = client
        self.prefix = prefix
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}.{kind}.{name}"

    @contextmanager
    def _reach(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise LeaseStoreError(f"Redis cannot {doing}: {exc}", backend=self.backend) from exc

    def acquire(self, name: str, ttl: float) -> Held | None:
        holder = holder_identity()
        # Not thread-local: the thread renewing the lease must see the token of the one that took it.
        lock = self.client.lock(self._key("lease", name), timeout=ttl, blocking=False, thread_local=False)
        with self._reach(f"take the lease {name}"):
            started = time.monotonic()
            if not lock.acquire(blocking=False, token=holder):
                return None
            fence = int(self.client.incr(self._key("fence", name)))
        return _RedisHeld(self, lock, name, ttl, holder, fence, started)

    def flush(self) -> set[str]:
        prefix = self._key("lease", "")
        with self._reach("flush leases"):
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in self.client.scan_iter(match=prefix + "*")]
            for key in keys:
                self.client.delete(key)
        return {key[len(prefix):] for key in keys}


class _RedisHeld(_Held):
    def __init__(self, store: RedisLeases, lock: Any, name: str, ttl: float, holder: str, fence: int,
                 taken_at: float) -> None:
        super().__init__(name, ttl, holder, fence, store.backend, taken_at)
        self._store = store
        self._lock = lock

    def _extend(self) -> bool:
        from redis.exceptions import LockError

        with self._store._reach(f"renew the lease {self.name}"):
            try:
                self._lock.reacquire()  # back to the full ttl, only if the key still holds our token
            except LockError:
                return False
            return True

    def _drop(self) -> None:
        from redis.exceptions import LockError

        # Only if the key still holds our token; one that expired meanwhile is someone else's business.
        with self._store._reach(f"release the lease {self.name}"), suppress(LockError):
            self._lock.release()
