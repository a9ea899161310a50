"""The work queue: accepted deliveries become jobs that consumer threads run, on Huey.

What a job does is not decided here. `make_queue` takes the job (`Job`: a delivery and its `Work`) and
the periodic task (`Periodic`: reconcile, run when a consumer starts and every `reconcile_minutes`) as
plain callables; this module runs them, records each delivery's progress in the delivery log, and keeps
them from overlapping where they must not.

Where the queue lives:
- embedded (default): `SqliteHuey` in the data folder, durable and serverless; `paved serve` runs the
  consumer threads itself.
- scale-out: `RedisHuey` when a Redis URL is set; any number of `paved worker` processes on any machine
  consume, and `paved serve` replicas only enqueue.
- immediate: jobs run inline when enqueued, in memory, for tests.

Each job's log lines carry its delivery, pull request and job id (Huey's task id, which `enqueue` returns
so the web app can log it too), and each run is measured in `bot.adapters.metrics` (duration by kind, outcome).
A `paved worker` process keeps its metrics in the data folder for `paved serve` to add up (see there).

This is the only module that imports Huey.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from huey import MemoryHuey, RedisHuey, SqliteHuey  # type: ignore[import-untyped]
from huey import signals as huey_signals
from huey.consumer import Consumer  # type: ignore[import-untyped]
from huey.exceptions import HueyException, RetryTask, TaskLockedException  # type: ignore[import-untyped]

from bot.adapters import metrics
from bot.adapters.deliveries import DeliveryLog, delivery_context, one_line, pull_request_of
from bot.errors import PavedError
from bot.files import private_file, private_folder
from bot.webhook import Delivery

if TYPE_CHECKING:
    from bot.settings import Settings

Trigger = Literal["delivery", "start", "schedule"]
Backend = Literal["immediate", "sqlite", "redis"]

log = logging.getLogger(__name__)

# A job that finds its repository locked waits this long before trying again, and gives up (the
# delivery fails, so a redelivery is accepted) when the lock is still held this long after acceptance.
BUSY_RETRY_SECONDS = 10.0
BUSY_GIVE_UP = timedelta(hours=1)
SHUTDOWN_SECONDS = 30  # how long stopping waits for running jobs to finish


class QueueError(PavedError):
    """Raised when the queue cannot be reached; `backend` says which one (sqlite, redis)."""

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(message)
        self.backend = backend


class RepoBusy(PavedError):
    """Raised by `Work.repo_lock` when other work holds `repo`'s lock.

    A job that lets it escape runs again later; the periodic task should catch it and move on to the
    next repository (the next run catches up).
    """

    def __init__(self, repo: str) -> None:
        super().__init__(f"repository {repo} is busy with other work")
        self.repo = repo


@dataclass(frozen=True, slots=True)
class Work:
    """What a job or the periodic task gets besides its delivery.

    `repo_lock(repo)` is a context manager held while doing work that must never run concurrently for
    one repository (across every consumer of the queue); it raises `RepoBusy` at once instead of
    waiting, and it is not re-entrant. `attempt` counts runs of this delivery, from 1. `trigger` says why
    the work runs: a delivery, a consumer starting, or the schedule.
    """

    settings: Settings
    trigger: Trigger
    attempt: int
    repo_lock: Callable[[str], AbstractContextManager[None]]


Job = Callable[[Delivery, Work], None]
Periodic = Callable[[Work], None]


def every(minutes: int) -> Callable[[datetime], bool]:
    """A schedule that fires every `minutes` minutes, counted from midnight UTC on 1 January 1970.

    Huey's schedulers check once a minute with naive UTC times; counting from a fixed origin keeps the
    rhythm even across hours and days when `minutes` does not divide 60.
    """
    def due(moment: datetime) -> bool:
        return (moment.toordinal() * 1440 + moment.hour * 60 + moment.minute) % minutes == 0

    return due


class _EmbeddedConsumer(Consumer):
    """Huey's consumer without its signal handlers: inside `paved serve` the web server owns the signals."""

    def _set_signal_handlers(self) -> None:
        pass


class WorkQueue:
    """Deliveries in, jobs out: enqueue, consume, and the per-repository lock."""

    def __init__(self, huey: Any, backend: Backend, settings: Settings, deliveries: DeliveryLog, job: Job,
                 periodic: Periodic | None, *, busy_retry_seconds: float = BUSY_RETRY_SECONDS,
                 busy_give_up: timedelta = BUSY_GIVE_UP) -> None:
        self.huey = huey
        self.backend: Backend = backend
        self.settings = settings
        self.deliveries = deliveries
        self.job = job
        self.periodic = periodic
        self.busy_retry_seconds = busy_retry_seconds
        self.busy_give_up = busy_give_up
        self._scrub = settings.secret_values()
        self._consumer: Any = None
        self._errors: tuple[type[Exception], ...] = (HueyException, sqlite3.Error, OSError)
        if backend == "redis":
            import redis

            self._errors += (redis.RedisError,)
        # With `context`, Huey hands each run its task, whose id names the job in log lines.
        self._delivery_task = huey.task(name="delivery", context=True)(self._run_delivery)
        self._reconcile_task = huey.task(name="reconcile", context=True)(self._run_periodic)
        if periodic is not None and settings.reconcile_minutes > 0:
            huey.periodic_task(every(settings.reconcile_minutes), name="reconcile_tick", context=True)(self._tick)
        huey.signal(huey_signals.SIGNAL_INTERRUPTED)(self._interrupted)

    @contextmanager
    def _reach(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise QueueError(f"the {self.backend} queue cannot {doing}: {exc}", backend=self.backend) from exc

    # -- producing ---------------------------------------------------------------------------------------

    def enqueue(self, delivery: Delivery) -> str:
        """Queue the job for `delivery` (in immediate mode: run it now); returns the job's id."""
        task = self._delivery_task.s(delivery.id, delivery.event, delivery.payload)
        with self._reach("take the delivery"):
            self.huey.enqueue(task)
        return str(task.id)

    def pending(self) -> int:
        """How many jobs wait in the queue; raises `QueueError` when the queue cannot be reached."""
        with self._reach("be read"):
            return int(self.huey.pending_count())

    def check(self) -> int:
        """Raise `QueueError` unless the queue can be reached now (Redis answers, the SQLite file is
        there); returns how many jobs wait."""
        if self.backend == "sqlite" and not self.settings.queue_db.is_file():
            # SQLite keeps answering on a file removed under an open connection, and what is queued
            # there is lost: that is not reachable.
            raise QueueError(f"the sqlite queue cannot be read: {self.settings.queue_db} is gone", backend="sqlite")
        return self.pending()

    # -- the per-repository lock ---------------------------------------------------------------------------

    @contextmanager
    def repo_lock(self, repo: str) -> Iterator[None]:
        """Hold `repo`'s lock for the block, or raise `RepoBusy` at once if other work holds it."""
        # GitHub treats owner/name case-insensitively, so the lock does too.
        lock = self.huey.lock_task(f"repo:{repo.lower()}")
        with self._reach("take a lock"):
            try:
                lock.acquire()
            except TaskLockedException as exc:
                raise RepoBusy(repo) from exc
        try:
            yield
        finally:
            with self._reach("release a lock"):
                lock.clear()

    def flush_locks(self) -> set[str]:
        """Release every lock of this queue, held or stale; returns their names.

        Safe only when no other consumer of the queue is running: a worker killed while holding a lock
        leaves it held, and the work of that repository waits until the lock is flushed.
        """
        prefix = f"{self.huey.name}.lock."
        with self._reach("flush locks"):
            keys = [k for k in self.huey.storage.result_items() if str(k).startswith(prefix)]
            for key in keys:
                self.huey.delete(key)
        return {str(k)[len(prefix):] for k in keys}

    # -- consuming -------------------------------------------------------------------------------------------

    def _consumer_for(self, workers: int, embedded: bool) -> Any:
        options: dict[str, Any] = {
            "workers": workers, "worker_type": "thread", "periodic": self.periodic is not None,
            "initial_delay": 0.1, "backoff": 1.15, "scheduler_interval": 1, "shutdown_timeout": SHUTDOWN_SECONDS,
            # SQLite is polled (Redis blocks on the queue), so keep the idle poll short: a job waits at
            # most this long after a quiet spell.
            "max_delay": 1.0 if self.backend == "sqlite" else 10.0,
            # Orchestrators stop processes with SIGTERM: let it finish running jobs first.
            "graceful_signal": "TERM",
        }
        return (_EmbeddedConsumer if embedded else Consumer)(self.huey, **options)

    def start(self, consumers: int, *, flush_locks: bool = False) -> None:
        """Start `consumers` threads in this process (none: only enqueue), and run reconcile once.

        In immediate mode nothing is started and reconcile runs inline.
        """
        if self.backend == "immediate":
            self._reconcile_on_start()
            return
        if consumers <= 0:
            return
        if flush_locks:
            self._log_flushed(self.flush_locks())
        self._consumer = self._consumer_for(consumers, embedded=True)
        self._consumer.start()
        log.info("consuming the %s queue with %d thread(s)", self.backend, consumers)
        self._reconcile_on_start()

    def stop(self) -> None:
        """Stop the threads `start` started, letting running jobs finish (up to `SHUTDOWN_SECONDS`)."""
        if self._consumer is None:
            return
        self._consumer.stop(graceful=True)
        self.huey.notify_interrupted_tasks()
        self._consumer = None

    def run_worker(self, workers: int, *, flush_locks: bool = False) -> None:
        """Consume in the foreground until SIGTERM (finish running jobs) or SIGINT (stop now)."""
        if flush_locks:
            self._log_flushed(self.flush_locks())
        # This process runs jobs for `paved serve` to report: keep its metrics where serve reads them.
        metrics.share_between_processes(private_folder(self.settings.data_dir / metrics.METRICS_FOLDER))
        consumer = self._consumer_for(workers, embedded=False)
        self._reconcile_on_start()
        consumer.run()

    def _reconcile_on_start(self) -> None:
        if self.periodic is not None and self.settings.reconcile_minutes > 0:
            with self._reach("take the start-up reconcile"):
                self._reconcile_task("start")

    @staticmethod
    def _log_flushed(names: set[str]) -> None:
        if names:
            log.warning("released locks left by a stopped consumer: %s", ", ".join(sorted(names)))

    # -- running work ------------------------------------------------------------------------------------------

    def _work(self, trigger: Trigger, attempt: int) -> Work:
        return Work(settings=self.settings, trigger=trigger, attempt=attempt, repo_lock=self.repo_lock)

    def _run_delivery(self, delivery_id: str, event: str, payload: dict[str, Any], task: Any = None) -> None:
        """Run the job for one delivery, recording it as processing, then done or failed."""
        delivery = Delivery(delivery_id, event, payload)
        with delivery_context(delivery.id, delivery.kind, delivery.repository, pr=pull_request_of(delivery),
                              job=_job_id(task)):
            attempt = self.deliveries.claim(delivery)
            if attempt is None:
                # Another consumer took it, or it already finished: a job runs once per acceptance.
                log.info("job not run: the delivery is no longer waiting")
                return
            log.info("job started (attempt %d)", attempt)
            started = time.monotonic()
            try:
                self.job(delivery, self._work("delivery", attempt))
            except RepoBusy as busy:
                metrics.job_ran(delivery.kind, "waiting", time.monotonic() - started)
                self._busy(delivery, busy)
            except Exception as exc:
                metrics.job_ran(delivery.kind, "failed", time.monotonic() - started)
                message = one_line(f"{type(exc).__name__}: {exc}", self._scrub)
                self.deliveries.finish(delivery.id, "failed", message)
                # The traceback goes to the log only; the delivery log keeps one line.
                log.error("job failed after %.3fs: %s", time.monotonic() - started, message, exc_info=True)
            else:
                metrics.job_ran(delivery.kind, "done", time.monotonic() - started)
                self.deliveries.finish(delivery.id, "done")
                log.info("job done in %.3fs", time.monotonic() - started)

    def _busy(self, delivery: Delivery, busy: RepoBusy) -> None:
        record = self.deliveries.get(delivery.id)
        accepted = (datetime.strptime(record.received_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                    if record else datetime.now(UTC))
        if datetime.now(UTC) - accepted > self.busy_give_up:
            message = (f"{busy.message} for over {self.busy_give_up}; if no job is running for it, a stopped "
                       "worker left its lock: run `paved worker --flush-locks` once")
            self.deliveries.finish(delivery.id, "failed", message)
            log.error("job failed: %s", message)
            return
        self.deliveries.wait(delivery.id, f"waiting: {busy.message}")
        log.info("%s; trying again in %.1fs", busy.message, self.busy_retry_seconds)
        raise RetryTask(delay=self.busy_retry_seconds) from busy

    def _tick(self, task: Any = None) -> None:
        self._run_periodic("schedule", task)

    def _run_periodic(self, trigger: Trigger, task: Any = None) -> None:
        """Run the periodic task, never twice at once, and once per scheduled tick across all consumers."""
        if self.periodic is None:
            return
        with delivery_context("-", f"reconcile.{trigger}", None, job=_job_id(task)):
            if trigger == "schedule" and not self._claim_tick():
                log.debug("reconcile of this tick already ran on another consumer")
                return
            lock = self.huey.lock_task("reconcile")
            try:
                lock.acquire()
            except TaskLockedException:
                log.info("reconcile not run: it is already running")
                return
            started = time.monotonic()
            try:
                self.periodic(self._work(trigger, 1))
            except Exception as exc:
                metrics.job_ran("reconcile", "failed", time.monotonic() - started)
                # The next tick tries again; a failure must not retry in a tight loop.
                log.error("reconcile failed: %s", one_line(f"{type(exc).__name__}: {exc}", self._scrub),
                          exc_info=True)
            else:
                metrics.job_ran("reconcile", "done", time.monotonic() - started)
                log.info("reconcile done in %.3fs", time.monotonic() - started)
            finally:
                lock.clear()

    def _claim_tick(self) -> bool:
        # Every consumer's scheduler enqueues the tick; the first to run it claims the slot. The previous
        # slot's key is removed so the claims never pile up.
        minutes = max(self.settings.reconcile_minutes, 1)
        slot = int(datetime.now(UTC).timestamp() // 60) // minutes
        claimed = bool(self.huey.put_if_empty(f"reconcile.tick.{slot}", "1"))
        if claimed:
            self.huey.delete(f"reconcile.tick.{slot - 1}")
        return claimed

    def _interrupted(self, signal: str, task: Any, *args: Any) -> None:
        # A job cut short by a stopping consumer is failed, so that its redelivery is accepted.
        if task.name == "delivery" and task.args:
            delivery_id = str(task.args[0])
            with delivery_context(delivery_id, str(task.args[1]), None, job=_job_id(task)):
                self.deliveries.finish(delivery_id, "failed", "interrupted: the consumer stopped during the job")
                log.warning("job interrupted by the consumer stopping")


def _job_id(task: Any) -> str | None:
    return str(task.id) if task is not None and getattr(task, "id", None) else None


def make_queue(settings: Settings, deliveries: DeliveryLog, job: Job, periodic: Periodic | None = None, *,
               busy_retry_seconds: float = BUSY_RETRY_SECONDS) -> WorkQueue:
    """The queue `settings` ask for: immediate, Redis when a Redis URL is set, else SQLite in the data folder."""
    name = settings.queue_name
    if settings.queue_immediate:
        return WorkQueue(MemoryHuey(name, immediate=True, results=False), "immediate", settings, deliveries, job,
                         periodic, busy_retry_seconds=busy_retry_seconds)
    if settings.redis_url is not None:
        huey = RedisHuey(name, url=settings.redis_url.reveal(), results=False, blocking=True, read_timeout=1)
        return WorkQueue(huey, "redis", settings, deliveries, job, periodic, busy_retry_seconds=busy_retry_seconds)
    try:
        private_file(private_folder(settings.queue_db.parent) / settings.queue_db.name)
        huey = SqliteHuey(name, filename=str(settings.queue_db), results=False)
    except (OSError, sqlite3.Error) as exc:
        raise QueueError(f"the queue {settings.queue_db} cannot be opened: {exc}", backend="sqlite") from exc
    return WorkQueue(huey, "sqlite", settings, deliveries, job, periodic, busy_retry_seconds=busy_retry_seconds)
