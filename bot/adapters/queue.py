"""The work queue: accepted deliveries become jobs that consumer threads run, on Huey.

What a job does is not decided here. `make_queue` takes the job (`Job`: a delivery and its `Work`) and
the periodic task (`Periodic`: reconcile, run when a consumer starts and every `reconcile_minutes`) as
plain callables; this module runs them, records each delivery's progress in the delivery log, and keeps
them from overlapping where they must not, with leases (`bot.adapters.leases`) kept where the queue is:
applies to one repository, plans of one pull request, and reconcile each hold one. A lease expires
`settings.lease_seconds` (`PAVED_LEASE_SECONDS`) after its holder last renewed it, so work left by a
killed worker is taken up again by the next job on its own.

Deliveries converge the same way. A running job renews its delivery's record (its heartbeat, fenced by
its attempt number); every consumer sweeps the delivery log when it starts and every `SWEEP_SECONDS`
(`WorkQueue.sweep`), queueing again what a dead job, a lost enqueue or a failure left behind, and a
failed delivery when its retry is due. When a delivery's last attempt fails, `make_queue`'s `gave_up`
callable is told, so that the people waiting on it hear why.

Where the queue lives:
- embedded (default): `SqliteHuey` in the data folder, durable and serverless; `paved serve` runs the
  consumer threads itself.
- scale-out: `PriorityRedisHuey` when a Redis URL is set; any number of `paved worker` processes on any
  machine consume, and `paved serve` replicas only enqueue.
- immediate: jobs run inline when enqueued, in memory, for tests.

Plans come first. Huey hands a consumer the waiting job of highest priority (in SQLite, a column of its
task table; in Redis, a sorted set, which is why the Redis queue is Huey's `PriorityRedisHuey`): a plan,
which someone waits on in a pull request's check, before any other delivery's job (an apply, a command),
and those before reconcile, which nobody waits on and which, run beside the first plans after a start at
10,000 resources, doubled their latency. `make_queue` is told which deliveries' jobs are plans.

Each job's log lines carry its delivery, pull request and job id (Huey's task id, which `enqueue` returns
so the web app can log it too), and each run is measured in `bot.adapters.metrics` (duration by kind, outcome).
A `paved worker` process keeps its metrics in the data folder for `paved serve` to add up (see there).

This is the only module that imports Huey.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from huey import MemoryHuey, PriorityRedisHuey, SqliteHuey  # type: ignore[import-untyped]
from huey import signals as huey_signals
from huey.consumer import Consumer  # type: ignore[import-untyped]
from huey.exceptions import HueyException, RetryTask  # type: ignore[import-untyped]

from bot.adapters import metrics
from bot.adapters.deliveries import DeliveryLog, DeliveryLogError, delivery_context, one_line, pull_request_of
from bot.adapters.leases import (
    Held,
    Lease,
    LeaseLost,
    LeaseStoreError,
    MemoryLeases,
    RedisLeases,
    SqliteLeases,
    Together,
    kept,
)
from bot.errors import PavedError
from bot.files import private_file, private_folder
from bot.webhook import Delivery

if TYPE_CHECKING:
    from bot.settings import Settings

Trigger = Literal["delivery", "start", "schedule"]
Backend = Literal["immediate", "sqlite", "redis"]

log = logging.getLogger(__name__)

# A job that finds its repository (or its pull request) busy waits this long before trying again, and
# gives up (the delivery fails, so a redelivery is accepted) when it is still busy this long after acceptance.
BUSY_RETRY_SECONDS = 10.0
BUSY_GIVE_UP = timedelta(hours=1)
# A lease lasts `settings.lease_seconds` after its holder last renewed it, and its holder renews it this
# many times as often: a holder survives two renewals that the store did not answer (a Redis failover, a
# pause) before it loses its lease.
RENEWALS_PER_LEASE = 3
# Every consumer sweeps the delivery log this often (or every lease, when leases are shorter), so a dead
# job's delivery runs again within a lease and a sweep of its expiry, and a retry within a sweep of its time.
SWEEP_SECONDS = 60.0
# A plan that finds another plan of its pull request running waits this long for it before it is queued
# again: plans take seconds, and a consumer thread kept waiting is not running other repositories' work.
PLAN_WAIT_SECONDS = 5.0
SHUTDOWN_SECONDS = 30  # how long stopping waits for running jobs to finish
# Huey runs the waiting job of highest priority first (see the module's description).
PLAN_PRIORITY = 20
DELIVERY_PRIORITY = 10
RECONCILE_PRIORITY = 0


class QueueError(PavedError):
    """Raised when the queue cannot be reached; `backend` says which one (sqlite, redis)."""

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(message)
        self.backend = backend


class Busy(PavedError):
    """Raised when other work holds the lease a job needs; `repo` is the repository it works on.

    A job that lets it escape runs again later; the periodic task should catch it and move on (the next
    run catches up).
    """

    def __init__(self, message: str, repo: str) -> None:
        super().__init__(message)
        self.repo = repo


class RepoBusy(Busy):
    """Raised by `Work.repo_lock` when other work holds `repo`'s lease (an apply, reconcile)."""

    def __init__(self, repo: str) -> None:
        super().__init__(f"repository {repo} is busy with other work", repo)


class PullRequestBusy(Busy):
    """Raised by `Work.pull_request_lock` when another job is planning pull request `number` of `repo`."""

    def __init__(self, repo: str, number: int) -> None:
        super().__init__(f"pull request {repo}#{number} is being planned by other work", repo)
        self.number = number


@dataclass(frozen=True, slots=True)
class Work:
    """What a job or the periodic task gets besides its delivery.

    `repo_lock(repo)` holds `repo`'s lease for work that must never run concurrently for one repository
    (across every consumer of the queue: applies); it raises `RepoBusy` at once instead of waiting, and it
    is not re-entrant. `pull_request_lock(repo, numbers)` holds the leases of those pull requests for
    planning them, waiting `PLAN_WAIT_SECONDS` for a plan that is running, then `PullRequestBusy`. Both
    yield the `Held` lease, renewed while the block runs, for the job's writes to `check` first.
    `attempt` counts runs of this delivery, from 1. `trigger` says why the work runs: a delivery, a
    consumer starting, or the schedule.
    """

    settings: Settings
    trigger: Trigger
    attempt: int
    repo_lock: Callable[[str], AbstractContextManager[Held]]
    pull_request_lock: Callable[[str, tuple[int, ...]], AbstractContextManager[Held]]


Job = Callable[[Delivery, Work], None]
Periodic = Callable[[Work], None]
# Whether a delivery's job is a plan, which runs before any other work waiting in the queue.
IsPlan = Callable[[Delivery], bool]
# Told when a delivery's last attempt failed: the delivery, the work it ran with, and the error (one line).
GaveUp = Callable[[Delivery, Work, str], None]


class Heartbeat:
    """A running job's hold on its delivery's `processing` record, shaped as a `Held` lease so that
    `kept` renews it: the attempt number is its fence, and a renewal that finds the record taken up
    again by another job (or finished) is `LeaseLost`. Releasing it does nothing: `finish` ends it."""

    def __init__(self, deliveries: DeliveryLog, delivery_id: str, attempt: int) -> None:
        self.deliveries = deliveries
        self.delivery_id = delivery_id
        self.name = f"delivery:{delivery_id}"
        self.fence = attempt

    def renew(self) -> None:
        try:
            ours = self.deliveries.renew(self.delivery_id, self.fence)
        except DeliveryLogError as exc:
            raise LeaseStoreError(exc.message, backend=exc.store or "delivery log") from exc
        if not ours:
            raise LeaseLost(self.name, self.fence, "its delivery was taken up again by another job, or finished")

    def check(self) -> None:
        self.renew()

    def release(self) -> None:
        pass


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
    """Deliveries in, jobs out: enqueue, consume, and the leases that keep work from overlapping."""

    def __init__(self, huey: Any, backend: Backend, settings: Settings, deliveries: DeliveryLog, job: Job,
                 periodic: Periodic | None, *, leases: Lease, busy_retry_seconds: float = BUSY_RETRY_SECONDS,
                 busy_give_up: timedelta = BUSY_GIVE_UP, lease_seconds: float | None = None,
                 plan_wait_seconds: float = PLAN_WAIT_SECONDS, gave_up: GaveUp | None = None,
                 is_plan: IsPlan | None = None) -> None:
        self.huey = huey
        self.backend: Backend = backend
        self.settings = settings
        self.deliveries = deliveries
        self.job = job
        self.periodic = periodic
        self.leases = leases
        self.busy_retry_seconds = busy_retry_seconds
        self.busy_give_up = busy_give_up
        self.lease_seconds = settings.lease_seconds if lease_seconds is None else lease_seconds
        self.plan_wait_seconds = plan_wait_seconds
        self.gave_up = gave_up
        self.is_plan = is_plan
        self._scrub = settings.secret_values()
        self._consumer: Any = None
        self._sweeping: tuple[threading.Thread, threading.Event] | None = None
        self._errors: tuple[type[Exception], ...] = (HueyException, sqlite3.Error, OSError, LeaseStoreError)
        if backend == "redis":
            import redis

            self._errors += (redis.RedisError,)
        # With `context`, Huey hands each run its task, whose id names the job in log lines.
        self._delivery_task = huey.task(name="delivery", context=True, priority=DELIVERY_PRIORITY)(self._run_delivery)
        self._reconcile_task = huey.task(name="reconcile", context=True, priority=RECONCILE_PRIORITY)(
            self._run_periodic)
        if periodic is not None and settings.reconcile_minutes > 0:
            huey.periodic_task(every(settings.reconcile_minutes), name="reconcile_tick", context=True,
                               priority=RECONCILE_PRIORITY)(self._tick)
        huey.signal(huey_signals.SIGNAL_INTERRUPTED)(self._interrupted)

    @contextmanager
    def _reach(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise QueueError(f"the {self.backend} queue cannot {doing}: {exc}", backend=self.backend) from exc

    # -- producing ---------------------------------------------------------------------------------------

    def enqueue(self, delivery: Delivery) -> str:
        """Queue the job for `delivery` (in immediate mode: run it now), ahead of other work when it is a
        plan; returns the job's id."""
        plan = self.is_plan is not None and self.is_plan(delivery)
        task = self._delivery_task.s(delivery.id, delivery.event, delivery.payload,
                                     priority=PLAN_PRIORITY if plan else DELIVERY_PRIORITY)
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

    # -- leases ------------------------------------------------------------------------------------------------

    def _take(self, name: str) -> Held | None:
        with self._reach("take a lease"):
            return self.leases.acquire(name, self.lease_seconds)

    @contextmanager
    def _kept(self, held: Held) -> Iterator[Held]:
        with kept(held, self.lease_seconds / RENEWALS_PER_LEASE) as renewed:
            yield renewed

    @contextmanager
    def repo_lock(self, repo: str) -> Iterator[Held]:
        """Hold `repo`'s lease for the block, renewed meanwhile, or raise `RepoBusy` at once if other work
        holds it."""
        # GitHub treats owner/name case-insensitively, so the lease does too.
        held = self._take(f"repo:{repo.lower()}")
        if held is None:
            raise RepoBusy(repo)
        with self._kept(held):
            yield held

    @contextmanager
    def pull_request_lock(self, repo: str, numbers: tuple[int, ...]) -> Iterator[Held]:
        """Hold the leases of pull requests `numbers` of `repo` (one, in practice) for the block, renewed
        meanwhile; waits `plan_wait_seconds` for other work planning one of them, then raises
        `PullRequestBusy`, holding none."""
        with ExitStack() as stack:
            taken = []
            for number in sorted(set(numbers)):
                name = f"pr:{repo.lower()}#{number}"
                deadline = time.monotonic() + self.plan_wait_seconds
                while (held := self._take(name)) is None:
                    if time.monotonic() >= deadline:
                        raise PullRequestBusy(repo, number)
                    time.sleep(min(0.2, self.plan_wait_seconds / 10))
                taken.append(stack.enter_context(self._kept(held)))
            yield taken[0] if len(taken) == 1 else Together(taken)

    def flush_locks(self) -> set[str]:
        """Release every lease of this queue, held or expired (and any lock an older Paved left); returns
        the names of those that were held.

        Not needed after a crash: a lease whose holder died expires `lease_seconds` later and the next job
        takes it. Safe only when no other consumer of the queue is running.
        """
        prefix = f"{self.huey.name}.lock."
        with self._reach("flush locks"):
            keys = [k for k in self.huey.storage.result_items() if str(k).startswith(prefix)]
            for key in keys:
                self.huey.delete(key)
            flushed = self.leases.flush()
        return flushed | {str(k)[len(prefix):] for k in keys}

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

    def start(self, consumers: int, *, flush_locks: bool = False, reconcile: bool = True) -> None:
        """Start `consumers` threads in this process (none: only enqueue), sweep the delivery log, queue
        reconcile once (unless not `reconcile`: the caller calls `reconcile_on_start` when it is time), and
        keep sweeping every `SWEEP_SECONDS` until `stop`.

        In immediate mode nothing is started: the sweep and reconcile run inline, once.
        """
        if self.backend == "immediate":
            self.sweep()
            if reconcile:
                self.reconcile_on_start()
            return
        if consumers <= 0:
            return
        if flush_locks:
            self._log_flushed(self.flush_locks())
        if self.backend == "redis":
            _adopt_list_queue(self.huey)
        self._consumer = self._consumer_for(consumers, embedded=True)
        self._consumer.start()
        log.info("consuming the %s queue with %d thread(s)", self.backend, consumers)
        if reconcile:
            self.reconcile_on_start()
        self._start_sweeping()

    def stop(self) -> None:
        """Stop the threads `start` started, letting running jobs finish (up to `SHUTDOWN_SECONDS`)."""
        self._stop_sweeping()
        if self._consumer is None:
            return
        self._consumer.stop(graceful=True)
        self.huey.notify_interrupted_tasks()
        self._consumer = None

    def run_worker(self, workers: int, *, flush_locks: bool = False) -> None:
        """Consume in the foreground until SIGTERM (finish running jobs) or SIGINT (stop now)."""
        if flush_locks:
            self._log_flushed(self.flush_locks())
        if self.backend == "redis":
            _adopt_list_queue(self.huey)
        # This process runs jobs for `paved serve` to report: keep its metrics where serve reads them.
        metrics.share_between_processes(private_folder(self.settings.data_dir / metrics.METRICS_FOLDER))
        consumer = self._consumer_for(workers, embedded=False)
        self.reconcile_on_start()
        self._start_sweeping()
        try:
            consumer.run()
        finally:
            self._stop_sweeping()

    def reconcile_on_start(self) -> None:
        """Queue the reconcile a consumer runs as it starts, when there is a periodic task on a schedule."""
        if self.periodic is not None and self.settings.reconcile_minutes > 0:
            self.queue_reconcile("start")

    def queue_reconcile(self, trigger: Trigger) -> None:
        """Queue a run of the periodic task, behind every delivery's job (in immediate mode: run it now)."""
        with self._reach(f"take the {trigger} reconcile"):
            self._reconcile_task(trigger)

    # -- sweeping the delivery log ---------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> int:
        """Queue again every delivery the log finds due as of `now` (see `DeliveryLog.take_due`): a dead
        job's, an accepted one that has no job, a failed one whose retry is due. Returns how many.

        The log hands each to one sweeper only, so sweepers on every consumer never queue one twice. One
        killed between taking and queueing leaves it `accepted`, and a later sweep takes it as an orphan.
        Never raises: a sweep that cannot reach the log or the queue is logged and the next one tries.
        """
        queued = 0
        with delivery_context("-", "sweep", None):
            try:
                due = self.deliveries.take_due(now)
            except DeliveryLogError as exc:
                log.warning("sweep skipped: %s", exc.message)
                return 0
            for delivery in due:
                try:
                    self.enqueue(delivery)
                except QueueError as exc:
                    # Left `accepted`: a later sweep takes it again as an orphan.
                    log.warning("sweep could not queue delivery %s again: %s", delivery.id, exc.message)
                    continue
                queued += 1
            if queued:
                log.info("sweep queued %d delivery job(s) again", queued)
        return queued

    def _start_sweeping(self) -> None:
        # A thread per consumer process rather than a Huey periodic task: Huey schedules by the minute only,
        # and its task would wait in the very queue whose backlog (or loss) the sweep repairs; a thread
        # also follows a lease shorter than a minute.
        if self._sweeping is not None:
            return
        stop = threading.Event()
        every_seconds = min(SWEEP_SECONDS, self.lease_seconds)

        def sweep_until_stopped() -> None:
            while True:
                try:
                    self.sweep()
                except Exception as exc:  # a sweep that fails must not end the sweeping
                    log.error("sweep failed: %s", one_line(f"{type(exc).__name__}: {exc}", self._scrub), exc_info=True)
                if stop.wait(every_seconds):
                    return

        thread = threading.Thread(target=sweep_until_stopped, name="paved sweep", daemon=True)
        self._sweeping = (thread, stop)
        thread.start()

    def _stop_sweeping(self) -> None:
        if self._sweeping is None:
            return
        thread, stop = self._sweeping
        stop.set()
        thread.join(timeout=SHUTDOWN_SECONDS)
        self._sweeping = None

    @staticmethod
    def _log_flushed(names: set[str]) -> None:
        if names:
            log.warning("released leases held when the queue started: %s", ", ".join(sorted(names)))

    # -- running work ------------------------------------------------------------------------------------------

    def work(self, trigger: Trigger, attempt: int = 1) -> Work:
        """What a job (or the periodic task) run by this queue is given."""
        return Work(settings=self.settings, trigger=trigger, attempt=attempt, repo_lock=self.repo_lock,
                    pull_request_lock=self.pull_request_lock)

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
            work = self.work("delivery", attempt)
            try:
                with kept(Heartbeat(self.deliveries, delivery.id, attempt), self.lease_seconds / RENEWALS_PER_LEASE):
                    self.job(delivery, work)
            except Busy as busy:
                metrics.job_ran(delivery.kind, "waiting", time.monotonic() - started)
                self._busy(delivery, busy)
            except Exception as exc:
                metrics.job_ran(delivery.kind, "failed", time.monotonic() - started)
                message = one_line(f"{type(exc).__name__}: {exc}", self._scrub)
                # The traceback goes to the log only; the delivery log keeps one line.
                log.error("job failed after %.3fs: %s", time.monotonic() - started, message, exc_info=True)
                self._failed(delivery, work, message)
            else:
                metrics.job_ran(delivery.kind, "done", time.monotonic() - started)
                self.deliveries.finish(delivery.id, "done")
                log.info("job done in %.3fs", time.monotonic() - started)

    def _failed(self, delivery: Delivery, work: Work, message: str) -> None:
        """Record a failed attempt; when it was the last, say so through `gave_up`."""
        record = self.deliveries.finish(delivery.id, "failed", message)
        if record is None or not record.gave_up:
            if record is not None and record.retry_at:
                log.info("delivery will be tried again from %s", record.retry_at)
            return
        log.error("gave up on the delivery after %d attempt(s): %s", record.attempts, message)
        if self.gave_up is None:
            return
        try:
            self.gave_up(delivery, work, message)
        except Exception as exc:  # telling people failed too: the log says so, Huey is not bothered
            log.error("could not say that Paved gave up on the delivery: %s",
                      one_line(f"{type(exc).__name__}: {exc}", self._scrub), exc_info=True)

    def _busy(self, delivery: Delivery, busy: Busy) -> None:
        record = self.deliveries.get(delivery.id)
        accepted = (datetime.strptime(record.received_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                    if record else datetime.now(UTC))
        if datetime.now(UTC) - accepted > self.busy_give_up:
            message = (f"{busy.message} for over {self.busy_give_up}: other work has kept renewing its lease "
                       "all that time; look for a job that does not end")
            log.error("job failed: %s", message)
            self._failed(delivery, self.work("delivery", record.attempts if record else 1), message)
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
            held = self._take("reconcile")
            if held is None:
                log.info("reconcile not run: it is already running")
                return
            started = time.monotonic()
            try:
                with self._kept(held):
                    self.periodic(self.work(trigger, 1))
            except Exception as exc:
                metrics.job_ran("reconcile", "failed", time.monotonic() - started)
                # The next tick tries again; a failure must not retry in a tight loop.
                log.error("reconcile failed: %s", one_line(f"{type(exc).__name__}: {exc}", self._scrub),
                          exc_info=True)
            else:
                metrics.job_ran("reconcile", "done", time.monotonic() - started)
                log.info("reconcile done in %.3fs", time.monotonic() - started)

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
        # A job cut short by a stopping consumer is failed, so that its redelivery is accepted and a sweep
        # retries it.
        if task.name == "delivery" and len(task.args) == 3:
            delivery = Delivery(str(task.args[0]), str(task.args[1]), task.args[2])
            with delivery_context(delivery.id, delivery.kind, delivery.repository, job=_job_id(task)):
                log.warning("job interrupted by the consumer stopping")
                record = self.deliveries.get(delivery.id)
                self._failed(delivery, self.work("delivery", record.attempts if record else 1),
                             "interrupted: the consumer stopped during the job")


def _job_id(task: Any) -> str | None:
    return str(task.id) if task is not None and getattr(task, "id", None) else None


def _adopt_list_queue(huey: Any) -> None:
    """Move the jobs a Paved from before priorities left waiting in Redis into the priority queue.

    That Paved kept them in a list (`RedisHuey`) under the very key where `PriorityRedisHuey` keeps a sorted
    set, and Redis refuses a sorted set's commands on a list (a replica that only enqueues answers 503 until
    then). Every consumer moves them as it starts: the list is renamed aside at once, so that only one
    process moves it, then emptied oldest first into the sorted set (at the default priority); a move cut
    short is finished by the next consumer that starts.
    """
    import redis

    storage = huey.storage
    aside = f"{storage.queue_key}.before-priorities"
    try:
        try:
            if storage.conn.type(storage.queue_key) == b"list":
                storage.conn.rename(storage.queue_key, aside)
        except redis.ResponseError:
            pass  # another process renamed it first, and moves it
        while (data := storage.conn.rpop(aside)) is not None:
            storage.enqueue(data, DELIVERY_PRIORITY)
    except redis.RedisError as exc:
        # Unreachable now: the consumer says so as it polls, and the next start moves what is left.
        log.warning("the jobs queued in Redis before priorities could not be moved yet: %s", exc)


def make_queue(settings: Settings, deliveries: DeliveryLog, job: Job, periodic: Periodic | None = None, *,
               busy_retry_seconds: float = BUSY_RETRY_SECONDS, lease_seconds: float | None = None,
               plan_wait_seconds: float = PLAN_WAIT_SECONDS, gave_up: GaveUp | None = None,
               is_plan: IsPlan | None = None) -> WorkQueue:
    """The queue `settings` ask for: immediate, Redis when a Redis URL is set, else SQLite in the data folder.

    Its leases live with it: in this process's memory, in Redis beside the queue, or in the queue's file;
    they last `settings.lease_seconds` unless `lease_seconds` says otherwise. `gave_up` is told of each
    delivery whose last attempt failed; its own failure is logged, never raised. The jobs of deliveries
    `is_plan` names run before other waiting work (by default, every delivery's job comes before reconcile).
    """
    name = settings.queue_name
    options: dict[str, Any] = {"busy_retry_seconds": busy_retry_seconds, "lease_seconds": lease_seconds,
                               "plan_wait_seconds": plan_wait_seconds, "gave_up": gave_up, "is_plan": is_plan}
    if settings.queue_immediate:
        return WorkQueue(MemoryHuey(name, immediate=True, results=False), "immediate", settings, deliveries, job,
                         periodic, leases=MemoryLeases(), **options)
    if settings.redis_url is not None:
        huey = PriorityRedisHuey(name, url=settings.redis_url.reveal(), results=False, blocking=True,
                                 read_timeout=1)
        return WorkQueue(huey, "redis", settings, deliveries, job, periodic,
                         leases=RedisLeases(huey.storage.conn, f"paved.{name}"), **options)
    try:
        private_file(private_folder(settings.queue_db.parent) / settings.queue_db.name)
        huey = SqliteHuey(name, filename=str(settings.queue_db), results=False)
        leases = SqliteLeases(settings.queue_db)
    except (OSError, sqlite3.Error, LeaseStoreError) as exc:
        raise QueueError(f"the queue {settings.queue_db} cannot be opened: {exc}", backend="sqlite") from exc
    return WorkQueue(huey, "sqlite", settings, deliveries, job, periodic, leases=leases, **options)
