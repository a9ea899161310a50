"""The delivery log: every webhook delivery Paved accepted, and how its job went.

A delivery is recorded by its `X-GitHub-Delivery` id, so a redelivery of one that was accepted is
recognised and not acted on twice, while one whose attempt failed is accepted again. It is recorded with
the SHA-256 of its body too: a body that was accepted under one id and arrives again under another (a
signed delivery captured and replayed) is a duplicate as well, for as long as the log keeps the first
(`KEEP_FOR`), unless the first failed, exactly as a redelivery would be. The job runner
moves a record through `accepted` → `processing` → `done` or `failed`; `last_error` is one line, never a
traceback and never a configured secret.

Every delivery converges: it ends `done`, or `failed` for good after `MAX_ATTEMPTS`, without GitHub or a
person acting. A record is `processing` only under a live lease: the running job renews it (`renew`, its
heartbeat) every third of the log's `lease`, fenced by its attempt number, so a record whose heartbeat
stopped belongs to a dead job. `take_due` hands out, each to one caller only, the records that need a
job again: a dead job's, one `accepted` but untouched for `ORPHAN_AFTER` (its job was never queued, or
was lost), and a failed one whose retry is due (`RETRY_AFTER`). To queue them again the log keeps each
delivery's payload until it is `done` or has failed for good.

Two stores keep the same records: an SQLite table in the data folder (the embedded default), and Redis
when the queue is in Redis, because serve replicas and workers on other machines must all see one log.

Log lines about a delivery carry its id, event, repository, pull request and job: `delivery_context`
(and `job_context` inside it) sets them for the code running inside it (threads and asyncio tasks alike,
as they are context variables), and `DeliveryContextFilter` copies them onto each log record as
`delivery_id`, `event`, `repo`, `pr` and `job`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.errors import PavedError
from bot.files import private_file, private_folder
from bot.webhook import Delivery

if TYPE_CHECKING:
    import redis

    from bot.settings import Settings

Status = Literal["accepted", "processing", "done", "failed"]
STATUSES: tuple[Status, ...] = ("accepted", "processing", "done", "failed")
KEEP_FOR = timedelta(days=30)
# A `processing` record whose heartbeat is older than the log's lease belongs to a job that died (a running
# job renews it three times as often); its redelivery is then accepted, and `take_due` hands it out again.
DEFAULT_LEASE = timedelta(seconds=60)
# An `accepted` record untouched this long has no job: its enqueueing failed, or a sweeper died between
# taking it and queueing it. A job that waits for a busy lease touches its record at each try (`wait`),
# so only a queue backlog this long could make a job that is still queued look orphaned, and then the
# second job finds the delivery taken and does nothing.
ORPHAN_AFTER = timedelta(minutes=10)
# After the 1st, 2nd and 3rd failed attempt a delivery is tried again this much later; the 4th failure is
# final (`Record.gave_up`), and the delivery's payload is dropped.
RETRY_AFTER: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
MAX_ATTEMPTS = len(RETRY_AFTER) + 1
TAKE_AT_MOST = 100  # records `take_due` hands out at once: a sweep after an outage does not flood the queue
MAX_ERROR_CHARS = 300
# What `last_error` says of a record `take_due` handed out again without a failure of its own.
DEAD_JOB = "taken up again: its job stopped renewing it (the worker was stopped or killed)"
NO_JOB = "taken up again: it was accepted but no job ran for it"

Clock = Callable[[], datetime]

log = logging.getLogger(__name__)


class DeliveryLogError(PavedError):
    """Raised when the delivery log cannot be read or written; `store` names where it lives."""

    def __init__(self, message: str, *, store: str = "") -> None:
        super().__init__(message)
        self.store = store


@dataclass(frozen=True, slots=True)
class Record:
    """One delivery as the log knows it. Times are UTC, ISO 8601 with microseconds."""

    id: str
    event: str
    action: str | None
    repo: str | None
    received_at: str
    updated_at: str
    status: Status
    attempts: int
    last_error: str | None
    body_sha256: str | None = None
    started_at: str | None = None  # when its job last started: minus `received_at`, the wait in the queue
    retry_at: str | None = None  # when a failed delivery is tried again; None once it failed for good
    keeps_payload: bool = False  # whether the log still holds its payload, to queue its job again

    @property
    def gave_up(self) -> bool:
        """Whether the delivery failed for good: failed, and no retry is coming."""
        return self.status == "failed" and self.retry_at is None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Why a delivery is not acted on: delivery `of` was accepted before and is `status`.

    `of` is the delivery itself when GitHub redelivers it; another id when the same body came back under
    a new one (`replay`).
    """

    of: str
    status: Status
    replay: bool = False
    absorbed: bool = False  # a plan job for the same pull request is still waiting, and will answer it too


class DeliveryLog(Protocol):
    """What the web app and the job runner need from the delivery log."""

    def accept(self, delivery: Delivery, coalesce: str | None = None) -> Duplicate | None:
        """Record `delivery` as accepted and return None, or say what it duplicates.

        A delivery is accepted when it is new, when its last attempt failed, or when it is `processing`
        with a heartbeat older than the log's lease (its job died); anything else is a duplicate. Its
        payload is kept with it, to queue its job again if need be. A new delivery whose
        `body_sha256` is that of another delivery in the log is a duplicate of that one (a replay) unless
        that one would be accepted again by the same rules.

        `coalesce` names what the delivery's job would do (plan one pull request): while a job for the same
        name is queued and has not started, it will do it for both, so this delivery is recorded `done` and
        returned as `absorbed` by it. A job that started absorbs nothing more.
        """

    def claim(self, delivery: Delivery) -> int | None:
        """Mark an accepted delivery `processing` and return its attempt number; None if it is not waiting.
        From then on its job absorbs no later delivery (see `accept`)."""

    def renew(self, delivery_id: str, attempt: int) -> bool:
        """The running job's heartbeat: touch a `processing` record whose attempt is still `attempt`;
        whether it was (False: the record was taken up again by another job, or finished)."""

    def wait(self, delivery_id: str, reason: str) -> None:
        """Put a claimed delivery back to `accepted` (its job will run later); the attempt is not counted."""

    def finish(self, delivery_id: str, status: Literal["done", "failed"], error: str | None = None) -> Record | None:
        """Record how the job ended and return the record; `error` is kept as `last_error`, on one line and
        scrubbed of secrets. A failure before the last attempt gets its `retry_at` (`RETRY_AFTER`); one at
        or after `MAX_ATTEMPTS` is final (`Record.gave_up`). The payload is dropped once nothing will
        run again."""

    def take_due(self, now: datetime | None = None, limit: int = TAKE_AT_MOST) -> list[Delivery]:
        """The deliveries that need their job queued again as of `now`, each moved to `accepted` (touched
        now) in one atomic step, so that two sweepers never take one: `processing` ones whose heartbeat
        expired, `accepted` ones untouched for `ORPHAN_AFTER`, and `failed` ones whose retry is due."""

    def get(self, delivery_id: str) -> Record | None:
        """The record of `delivery_id`, if there is one."""

    def check(self) -> None:
        """Raise `DeliveryLogError` unless the log can be read and written now."""


def open_delivery_log(settings: Settings) -> DeliveryLog:
    """The delivery log for `settings`: in Redis when a Redis URL is set, else SQLite in the data folder.
    Its heartbeats last `settings.lease_seconds`, as the queue's leases do."""
    scrub = settings.secret_values()
    lease = timedelta(seconds=settings.lease_seconds)
    if settings.redis_url is not None:
        return RedisDeliveryLog(settings.redis_url.reveal(), prefix=f"paved.{settings.queue_name}.delivery.",
                                scrub=scrub, display=settings.redis_display or "redis", lease=lease)
    store = SqliteDeliveryLog(settings.deliveries_db, scrub=scrub, lease=lease)
    store.prune()
    return store


def one_line(text: str, scrub: tuple[str, ...] = ()) -> str:
    """`text` on one line, at most `MAX_ERROR_CHARS` long, with each value in `scrub` masked."""
    for value in sorted(scrub, key=len, reverse=True):
        text = text.replace(value, "********")
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_ERROR_CHARS else flat[:MAX_ERROR_CHARS - 1] + "…"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    """`moment` as the log writes times: UTC, ISO 8601 with microseconds, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _retry_at(failed_at: datetime, attempts: int) -> datetime | None:
    """When a delivery whose attempt `attempts` just failed is tried again; None when that was the last."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return failed_at + RETRY_AFTER[max(attempts, 1) - 1]


def _payload_text(delivery: Delivery) -> str:
    return json.dumps(delivery.payload, separators=(",", ":"))


def _delivery_of(delivery_id: str, event: str, payload: str, body_sha256: str | None) -> Delivery | None:
    try:
        loaded = json.loads(payload)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        log.warning("delivery %s cannot be queued again: the payload the log kept is not a JSON object", delivery_id)
        return None
    return Delivery(delivery_id, event, loaded, body_sha256=body_sha256 or None)


SCHEMA = """
create table if not exists deliveries (
    id          text primary key,
    event       text not null,
    action      text,
    repo        text,
    received_at text not null,
    updated_at  text not null,
    status      text not null check (status in ('accepted', 'processing', 'done', 'failed')),
    attempts    integer not null default 0,
    last_error  text,
    body_sha256 text,
    started_at  text,
    payload     text,
    retry_at    text
)
"""
# Logs written before a column existed get it; new ones have it from `SCHEMA`.
ADDED_COLUMNS = {"body_sha256": "alter table deliveries add column body_sha256 text",
                 "started_at": "alter table deliveries add column started_at text",
                 "payload": "alter table deliveries add column payload text",
                 "retry_at": "alter table deliveries add column retry_at text"}
BODY_INDEX = "create index if not exists deliveries_by_body on deliveries (body_sha256)"
# Only deliveries that may need a job again keep their payload, so the sweep reads a small index.
IN_FLIGHT_INDEX = ("create index if not exists deliveries_in_flight on deliveries (status, updated_at)"
                   " where payload is not null")
# A job queued to do something (plan one pull request) that has not started yet: later deliveries asking
# for the same are absorbed by it.
WAITING_JOBS = "create table if not exists waiting_jobs (name text primary key, delivery_id text not null)"
# The newest other delivery with this body that a redelivery of it would not replace.
SAME_BODY = (
    "select id, status from deliveries where body_sha256 = ? and id != ? and received_at >= ?"
    " and (status in ('accepted', 'done') or (status = 'processing' and updated_at >= ?))"
    " order by received_at desc limit 1")
# `take_due` in one statement: whatever it selects is moved to `accepted` in the same write, so a second
# sweeper's statement (serialised after it by SQLite's write lock) no longer sees it.
TAKE_DUE = (
    "update deliveries set status = 'accepted', updated_at = :now, retry_at = null,"
    " last_error = case status when 'processing' then :dead when 'accepted' then :orphan else last_error end"
    " where id in (select id from deliveries where payload is not null and ("
    "  (status = 'processing' and updated_at < :stale) or (status = 'accepted' and updated_at < :orphaned)"
    "  or (status = 'failed' and retry_at <= :now)) order by updated_at limit :limit)"
    " returning id, event, payload, body_sha256")
RECORD_FIELDS = ("id", "event", "action", "repo", "received_at", "updated_at", "status", "attempts", "last_error",
                 "body_sha256", "started_at", "retry_at", "keeps_payload")
COLUMNS = ", ".join(RECORD_FIELDS[:-1]) + ", payload is not null"


class SqliteDeliveryLog:
    """The delivery log as one SQLite table in the data folder.

    Each operation opens its own connection: the log is written from the web server's thread pool and
    from consumer threads, a write is a few rows, and a fresh connection notices at once when the data
    folder has gone away. `lease` is how long a `processing` record lives without its job's heartbeat;
    `clock` tells the time (tests drive it).
    """

    def __init__(self, path: Path, *, scrub: tuple[str, ...] = (), lease: timedelta = DEFAULT_LEASE,
                 clock: Clock = _utc_now) -> None:
        self.path = path
        self.scrub = scrub
        self.lease = lease
        self.clock = clock
        try:
            private_file(private_folder(path.parent) / path.name)
        except OSError as exc:
            raise DeliveryLogError(f"cannot create the data folder {path.parent}: {exc.strerror}",
                                   store=str(path)) from exc
        with self._connect() as db:
            db.execute("pragma journal_mode=wal")
            db.execute(SCHEMA)
            columns = {row[1] for row in db.execute("pragma table_info(deliveries)")}
            for column, statement in ADDED_COLUMNS.items():
                if column in columns:
                    continue
                try:
                    db.execute(statement)
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
            db.execute(BODY_INDEX)
            db.execute(IN_FLIGHT_INDEX)
            db.execute(WAITING_JOBS)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise DeliveryLogError(f"the delivery log {self.path} cannot be opened: {exc}",
                                   store=str(self.path)) from exc
        try:
            yield db
        except sqlite3.Error as exc:
            raise DeliveryLogError(f"the delivery log {self.path} cannot be used: {exc}",
                                   store=str(self.path)) from exc
        finally:
            db.close()

    def accept(self, delivery: Delivery, coalesce: str | None = None) -> Duplicate | None:
        moment = self.clock()
        now, stale = _stamp(moment), _stamp(moment - self.lease)
        with self._connect() as db:
            # Closing the connection without a commit (on any error) rolls the transaction back.
            db.execute("begin immediate")
            row = db.execute("select status, updated_at from deliveries where id = ?", (delivery.id,)).fetchone()
            if row is not None and row[0] != "failed" and not (row[0] == "processing" and row[1] < stale):
                return Duplicate(delivery.id, _status(row[0]))
            if delivery.body_sha256:
                same = db.execute(SAME_BODY, (delivery.body_sha256, delivery.id, _stamp(moment - KEEP_FOR),
                                              stale)).fetchone()
                if same is not None:
                    return Duplicate(same[0], _status(same[1]), replay=True)
            if coalesce is not None:
                waiting = db.execute("select w.delivery_id from waiting_jobs w join deliveries d"
                                     " on d.id = w.delivery_id where w.name = ? and d.status = 'accepted'"
                                     " and d.id != ?",
                                     (coalesce, delivery.id)).fetchone()
                if waiting is not None:
                    db.execute(
                        "insert into deliveries (id, event, action, repo, received_at, updated_at, status, attempts,"
                        " last_error, body_sha256) values (?, ?, ?, ?, ?, ?, 'done', 0, ?, ?)"
                        " on conflict (id) do update set status = 'done', updated_at = excluded.updated_at,"
                        " last_error = excluded.last_error, payload = null, retry_at = null",
                        (delivery.id, delivery.event, delivery.action, delivery.repository, now, now,
                         f"absorbed by delivery {waiting[0]}", delivery.body_sha256))
                    db.execute("commit")
                    return Duplicate(waiting[0], "accepted", absorbed=True)
                db.execute("insert into waiting_jobs (name, delivery_id) values (?, ?) on conflict (name)"
                           " do update set delivery_id = excluded.delivery_id", (coalesce, delivery.id))
            db.execute(
                "insert into deliveries (id, event, action, repo, received_at, updated_at, status, attempts,"
                " body_sha256, payload) values (?, ?, ?, ?, ?, ?, 'accepted', 0, ?, ?)"
                " on conflict (id) do update set status = 'accepted', event = excluded.event,"
                " action = excluded.action, repo = excluded.repo, received_at = excluded.received_at,"
                " updated_at = excluded.updated_at, body_sha256 = excluded.body_sha256,"
                " payload = excluded.payload, retry_at = null",
                (delivery.id, delivery.event, delivery.action, delivery.repository, now, now, delivery.body_sha256,
                 _payload_text(delivery)))
            db.execute("commit")
        return None

    def claim(self, delivery: Delivery) -> int | None:
        now = _stamp(self.clock())
        with self._connect() as db:
            row = db.execute(
                "insert into deliveries (id, event, action, repo, received_at, updated_at, status, attempts,"
                " started_at, payload) values (?, ?, ?, ?, ?, ?, 'processing', 1, ?, ?)"
                " on conflict (id) do update set status = 'processing', attempts = attempts + 1,"
                " updated_at = excluded.updated_at, started_at = excluded.started_at, retry_at = null"
                " where deliveries.status = 'accepted' returning attempts",
                (delivery.id, delivery.event, delivery.action, delivery.repository, now, now, now,
                 _payload_text(delivery))).fetchone()
            db.execute("delete from waiting_jobs where delivery_id = ?", (delivery.id,))
        return None if row is None else int(row[0])

    def renew(self, delivery_id: str, attempt: int) -> bool:
        with self._connect() as db:
            touched = db.execute("update deliveries set updated_at = ? where id = ? and status = 'processing'"
                                 " and attempts = ?", (_stamp(self.clock()), delivery_id, attempt)).rowcount
        return touched == 1

    def wait(self, delivery_id: str, reason: str) -> None:
        with self._connect() as db:
            db.execute("update deliveries set status = 'accepted', attempts = max(attempts - 1, 0),"
                       " updated_at = ?, last_error = ? where id = ?",
                       (_stamp(self.clock()), one_line(reason, self.scrub), delivery_id))

    def finish(self, delivery_id: str, status: Literal["done", "failed"], error: str | None = None) -> Record | None:
        moment = self.clock()
        message = None if error is None else one_line(error, self.scrub)
        with self._connect() as db:
            db.execute("begin immediate")
            row = db.execute("select attempts, payload is not null from deliveries where id = ?",
                             (delivery_id,)).fetchone()
            if row is None:
                db.execute("rollback")
                return None
            retry = _retry_at(moment, int(row[0])) if status == "failed" and row[1] else None
            db.execute("update deliveries set status = ?, updated_at = ?, last_error = coalesce(?, last_error),"
                       " retry_at = ?, payload = case when ? is null then null else payload end where id = ?",
                       (status, _stamp(moment), message, None if retry is None else _stamp(retry),
                        None if retry is None else 1, delivery_id))
            db.execute("commit")
        return self.get(delivery_id)

    def take_due(self, now: datetime | None = None, limit: int = TAKE_AT_MOST) -> list[Delivery]:
        moment = now or self.clock()
        with self._connect() as db:
            db.execute("begin immediate")
            rows = db.execute(TAKE_DUE, {"now": _stamp(moment), "stale": _stamp(moment - self.lease),
                                         "orphaned": _stamp(moment - ORPHAN_AFTER), "limit": limit,
                                         "dead": DEAD_JOB, "orphan": NO_JOB}).fetchall()
            db.execute("commit")
        return [d for d in (_delivery_of(*row) for row in rows) if d is not None]

    def get(self, delivery_id: str) -> Record | None:
        with self._connect() as db:
            row = db.execute(f"select {COLUMNS} from deliveries where id = ?", (delivery_id,)).fetchone()
        if row is None:
            return None
        found = dict(zip(RECORD_FIELDS, row, strict=True))
        return Record(**{**found, "keeps_payload": bool(found["keeps_payload"])})

    def check(self) -> None:
        with self._connect() as db:
            db.execute("begin immediate")
            db.execute("select count(*) from deliveries where id = ''").fetchone()
            db.execute("rollback")

    def prune(self, older_than: timedelta = KEEP_FOR) -> int:
        """Forget deliveries untouched for `older_than`; GitHub redelivers only recent ones anyway."""
        with self._connect() as db:
            gone = db.execute("delete from deliveries where updated_at < ?",
                              (_stamp(self.clock() - older_than),)).rowcount
            db.execute("delete from waiting_jobs where delivery_id not in (select id from deliveries)")
            return int(gone)


# Redis keeps each record as a hash that expires `KEEP_FOR` after its last change, and for each body
# accepted a key (its SHA-256 under `body_prefix`) naming the delivery that carried it, expiring `KEEP_FOR`
# after that. The scripts make "accept unless it is a duplicate", "claim if it is waiting", "renew if
# still ours" and "take what is due" atomic across processes and machines. ACCEPT reads the record of the
# delivery a body key names, a key it builds from ARGV[8]: one Redis holds the whole log (a cluster is not
# supported, as for the queue). A job queued for something that later deliveries would ask again (plan
# one pull request) is named by a key under `waiting_prefix` (KEYS[3]) until CLAIM starts it.
#
# A sorted set (`due_key`) holds every delivery that may need a job again, scored with the time (Unix
# seconds) from which it would: an accepted one `ORPHAN_AFTER` after it was touched, a processing one a
# lease after its last heartbeat, a failed one at its retry. Each write that moves a record moves its
# score; TAKE reads the set up to now and checks each record itself before taking it.
ACCEPT = """
local function live(key)
    local found = redis.call('HMGET', key, 'status', 'updated_at')
    local status = found[1]
    if status and status ~= 'failed' and not (status == 'processing' and (found[2] or '') < ARGV[6]) then
        return status
    end
    return nil
end
local status = live(KEYS[1])
if status then return status end
if KEYS[2] ~= '' then
    local earlier = redis.call('GET', KEYS[2])
    if earlier and earlier ~= ARGV[1] then
        local other = live(ARGV[8] .. earlier)
        if other then return 'replay:' .. other .. ':' .. earlier end
    end
end
if KEYS[3] ~= '' then
    local waiting = redis.call('GET', KEYS[3])
    if waiting and waiting ~= ARGV[1] and redis.call('HGET', ARGV[8] .. waiting, 'status') == 'accepted' then
        redis.call('HSET', KEYS[1], 'id', ARGV[1], 'event', ARGV[2], 'action', ARGV[3], 'repo', ARGV[4],
                   'received_at', ARGV[5], 'updated_at', ARGV[5], 'status', 'done', 'attempts', 0,
                   'last_error', 'absorbed by delivery ' .. waiting, 'body_sha256', ARGV[9])
        redis.call('HDEL', KEYS[1], 'payload', 'retry_at')
        redis.call('ZREM', KEYS[4], ARGV[1])
        redis.call('EXPIRE', KEYS[1], ARGV[7])
        return 'absorbed:' .. waiting
    end
    redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[7])
end
local known = redis.call('EXISTS', KEYS[1]) == 1
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'event', ARGV[2], 'action', ARGV[3], 'repo', ARGV[4],
           'received_at', ARGV[5], 'updated_at', ARGV[5], 'status', 'accepted', 'body_sha256', ARGV[9],
           'payload', ARGV[10])
redis.call('HDEL', KEYS[1], 'retry_at')
if not known then redis.call('HSET', KEYS[1], 'attempts', 0) end
if KEYS[3] ~= '' then redis.call('HSET', KEYS[1], 'waiting_job', KEYS[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[11], ARGV[1])
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[7]) end
return ''
"""
CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'accepted' then return 0 end
if not status then
    redis.call('HSET', KEYS[1], 'id', ARGV[1], 'event', ARGV[2], 'action', ARGV[3], 'repo', ARGV[4],
               'received_at', ARGV[5], 'attempts', 0, 'payload', ARGV[8])
end
redis.call('HSET', KEYS[1], 'status', 'processing', 'updated_at', ARGV[5], 'started_at', ARGV[5])
redis.call('HDEL', KEYS[1], 'retry_at')
local waiting = redis.call('HGET', KEYS[1], 'waiting_job')
if waiting and redis.call('GET', waiting) == ARGV[1] then redis.call('DEL', waiting) end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
return attempts
"""
# The heartbeat, fenced: only the job whose attempt the record still counts may touch it.
RENEW = """
local found = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if found[1] ~= 'processing' or found[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
# ARGV: 1 now (seconds), 2 now, 3 heartbeats older than this are dead, 4 accepted records untouched since
# this are orphans, 5 the score of a record taken now, 6 how many at most, 7 the records' prefix, 8 their
# ttl, 9 and 10 what `last_error` says of a dead job's and of an orphan. Returns id, event, payload and
# body digest of each record taken, one after the other.
TAKE = """
local taken = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(ids) do
    local key = ARGV[7] .. id
    local found = redis.call('HMGET', key, 'status', 'updated_at', 'retry_at', 'payload', 'event', 'body_sha256')
    local status, updated, retry, payload = found[1], found[2] or '', found[3] or '', found[4]
    local why = nil
    if not status or not payload or status == 'done' or (status == 'failed' and retry == '') then
        redis.call('ZREM', KEYS[1], id)
    elseif status == 'processing' and updated < ARGV[3] then
        why = ARGV[9]
    elseif status == 'accepted' and updated < ARGV[4] then
        why = ARGV[10]
    elseif status == 'failed' and retry <= ARGV[2] then
        why = ''
    end
    if why then
        redis.call('HSET', key, 'status', 'accepted', 'updated_at', ARGV[2])
        redis.call('HDEL', key, 'retry_at')
        if why ~= '' then redis.call('HSET', key, 'last_error', why) end
        redis.call('EXPIRE', key, ARGV[8])
        redis.call('ZADD', KEYS[1], ARGV[5], id)
        table.insert(taken, id)
        table.insert(taken, found[5] or '')
        table.insert(taken, payload)
        table.insert(taken, found[6] or '')
    end
end
return taken
"""


class RedisDeliveryLog:
    """The delivery log in Redis, shared by every serve replica and worker that uses the same Redis."""

    def __init__(self, url: str, *, prefix: str, scrub: tuple[str, ...] = (), display: str = "redis",
                 body_prefix: str | None = None, lease: timedelta = DEFAULT_LEASE, clock: Clock = _utc_now) -> None:
        import redis

        self.prefix = prefix
        # Apart from the records' keys, whatever a delivery id is: ids come from a request header.
        self.body_prefix = body_prefix or prefix.rstrip(".") + "-body."
        self.waiting_prefix = prefix.rstrip(".") + "-waiting."
        self.due_key = prefix.rstrip(".") + "-due"
        self.scrub = scrub
        self.display = display
        self.lease = lease
        self.clock = clock
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._redis: redis.Redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                                        socket_connect_timeout=3)
        self._accept = self._redis.register_script(ACCEPT)
        self._claim = self._redis.register_script(CLAIM)
        self._renew = self._redis.register_script(RENEW)
        self._take = self._redis.register_script(TAKE)
        self._ttl = int(KEEP_FOR.total_seconds())

    @contextmanager
    def _reach(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise DeliveryLogError(f"the delivery log in {self.display} cannot be used: {exc}",
                                   store=self.display) from exc

    def _fields(self, delivery: Delivery, moment: datetime) -> list[str]:
        return [delivery.id, delivery.event, delivery.action or "", delivery.repository or "", _stamp(moment)]

    def accept(self, delivery: Delivery, coalesce: str | None = None) -> Duplicate | None:
        moment = self.clock()
        body_key = self.body_prefix + delivery.body_sha256 if delivery.body_sha256 else ""
        waiting_key = self.waiting_prefix + coalesce if coalesce else ""
        with self._reach():
            answer = _text(self._accept(keys=[self.prefix + delivery.id, body_key, waiting_key, self.due_key],
                                        args=[*self._fields(delivery, moment), _stamp(moment - self.lease),
                                              self._ttl, self.prefix, delivery.body_sha256 or "",
                                              _payload_text(delivery), (moment + ORPHAN_AFTER).timestamp()]))
        if not answer:
            return None
        if answer.startswith("absorbed:"):
            return Duplicate(answer.split(":", 1)[1], "accepted", absorbed=True)
        if answer.startswith("replay:"):
            _, status, of = answer.split(":", 2)
            return Duplicate(of, _status(status), replay=True)
        return Duplicate(delivery.id, _status(answer))

    def claim(self, delivery: Delivery) -> int | None:
        moment = self.clock()
        with self._reach():
            attempts = int(self._claim(keys=[self.prefix + delivery.id, self.due_key],
                                       args=[*self._fields(delivery, moment), self._ttl,
                                             (moment + self.lease).timestamp(), _payload_text(delivery)]))
        return attempts or None

    def renew(self, delivery_id: str, attempt: int) -> bool:
        moment = self.clock()
        with self._reach():
            return bool(self._renew(keys=[self.prefix + delivery_id, self.due_key],
                                    args=[attempt, _stamp(moment), (moment + self.lease).timestamp(), delivery_id]))

    def wait(self, delivery_id: str, reason: str) -> None:
        key = self.prefix + delivery_id
        moment = self.clock()
        with self._reach(), self._redis.pipeline() as pipe:
            pipe.hset(key, mapping={"status": "accepted", "updated_at": _stamp(moment),
                                    "last_error": one_line(reason, self.scrub)})
            pipe.hincrby(key, "attempts", -1)
            pipe.expire(key, self._ttl)
            pipe.zadd(self.due_key, {delivery_id: (moment + ORPHAN_AFTER).timestamp()})
            pipe.execute()

    def finish(self, delivery_id: str, status: Literal["done", "failed"], error: str | None = None) -> Record | None:
        key = self.prefix + delivery_id
        moment = self.clock()
        fields: dict[Any, str] = {"status": status, "updated_at": _stamp(moment)}
        if error is not None:
            fields["last_error"] = one_line(error, self.scrub)
        with self._reach():
            # Only the job holding the delivery finishes it, so reading its attempts first races nothing.
            attempts, has_payload = self._redis.hmget(key, ["attempts", "payload"])
            if attempts is None:
                return None
            retry = _retry_at(moment, int(attempts)) if status == "failed" and has_payload else None
            with self._redis.pipeline() as pipe:
                pipe.hset(key, mapping=fields)
                if retry is None:
                    pipe.hdel(key, "payload", "retry_at")
                    pipe.zrem(self.due_key, delivery_id)
                else:
                    pipe.hset(key, "retry_at", _stamp(retry))
                    pipe.zadd(self.due_key, {delivery_id: retry.timestamp()})
                pipe.expire(key, self._ttl)
                pipe.execute()
        return self.get(delivery_id)

    def take_due(self, now: datetime | None = None, limit: int = TAKE_AT_MOST) -> list[Delivery]:
        moment = now or self.clock()
        with self._reach():
            flat = [_text(v) for v in self._take(keys=[self.due_key], args=[
                moment.timestamp(), _stamp(moment), _stamp(moment - self.lease), _stamp(moment - ORPHAN_AFTER),
                (moment + ORPHAN_AFTER).timestamp(), limit, self.prefix, self._ttl, DEAD_JOB, NO_JOB])]
        taken = (_delivery_of(*flat[i:i + 4]) for i in range(0, len(flat), 4))
        return [d for d in taken if d is not None]

    def get(self, delivery_id: str) -> Record | None:
        with self._reach():
            raw = self._redis.hgetall(self.prefix + delivery_id)
        found = {_text(k): _text(v) for k, v in raw.items()}
        if not found or "status" not in found:
            return None
        return Record(id=found.get("id", delivery_id), event=found.get("event", ""),
                      action=found.get("action") or None, repo=found.get("repo") or None,
                      received_at=found.get("received_at", ""), updated_at=found.get("updated_at", ""),
                      status=_status(found["status"]), attempts=int(found.get("attempts", 0)),
                      last_error=found.get("last_error") or None, body_sha256=found.get("body_sha256") or None,
                      started_at=found.get("started_at") or None, retry_at=found.get("retry_at") or None,
                      keeps_payload="payload" in found)

    def check(self) -> None:
        with self._reach():
            self._redis.ping()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _status(value: str) -> Status:
    for status in STATUSES:
        if value == status:
            return status
    raise DeliveryLogError(f"the delivery log holds an unknown status {value!r}")


# -- the delivery a log line is about ------------------------------------------------------------------

_current: contextvars.ContextVar[tuple[str, str, str, str, str] | None] = contextvars.ContextVar("paved_delivery",
                                                                                                default=None)
FIELDS = ("delivery_id", "event", "repo", "pr", "job")


@contextmanager
def delivery_context(delivery_id: str, event: str, repo: str | None, *, pr: int | None = None,
                     job: str | None = None) -> Iterator[None]:
    """Make every log line written inside the block carry this delivery's id, event, repository, pull
    request and job (`-` for what is not known)."""
    token = _current.set((delivery_id, event, repo or "-", "-" if pr is None else str(pr), job or "-"))
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def job_context(job: str) -> Iterator[None]:
    """Within a delivery's context, make log lines also carry the job that runs (or was queued) for it."""
    delivery_id, event, repo, pr, _ = _current.get() or ("-", "-", "-", "-", "-")
    token = _current.set((delivery_id, event, repo, pr, job))
    try:
        yield
    finally:
        _current.reset(token)


def pull_request_of(delivery: Delivery) -> int | None:
    """The number of the pull request a delivery is about, if it names exactly one."""
    payload = delivery.payload
    for key in ("pull_request", "issue"):
        item = payload.get(key)
        # An issue comment is about a pull request only when its issue is one.
        if isinstance(item, dict) and (key == "pull_request" or "pull_request" in item):
            number = item.get("number")
            return number if isinstance(number, int) else None
    run = payload.get("check_run") or payload.get("check_suite")
    pulls = run.get("pull_requests") if isinstance(run, dict) else None
    if isinstance(pulls, list) and len(pulls) == 1 and isinstance(pulls[0], dict):
        number = pulls[0].get("number")
        return number if isinstance(number, int) else None
    return None


class DeliveryContextFilter(logging.Filter):
    """Sets `delivery_id`, `event`, `repo`, `pr` and `job` on each record (`-` outside a delivery); attach to
    handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in zip(FIELDS, _current.get() or ("-",) * len(FIELDS), strict=True):
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
