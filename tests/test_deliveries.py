"""Deliveries converge: a dead job's delivery, one accepted without a job and a failed one are queued
again by the sweep, each once, on the real SQLite log and the real Redis log alike; a running job's
heartbeat keeps its record live; and when the last attempt fails, the pull request hears it once.

Time is driven through a clock the log is given, or through `now` handed to the sweep, never by
sleeping for the minutes the log counts in.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.deliveries import (
    MAX_ATTEMPTS,
    ORPHAN_AFTER,
    DeliveryLog,
    Duplicate,
    RedisDeliveryLog,
    SqliteDeliveryLog,
)
from bot.adapters.leases import ALWAYS_HELD
from bot.adapters.queue import Work, WorkQueue, make_queue
from bot.settings import Settings
from bot.web.jobs import GAVE_UP_MARKER, say_gave_up
from bot.webhook import Delivery
from tests.test_drift import REPO as PLATFORM
from tests.test_drift import Estate, applied_estate
from tests.test_service import (
    REDIS_URL,
    REPO,
    Recorder,
    redis_queue,  # noqa: F401  (the fixture `store` asks for by name)
    redis_settings,
    settings_for,
)

STORES = ["sqlite", "redis"]
LEASE = timedelta(seconds=60)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        self._guard = threading.Lock()

    def __call__(self) -> datetime:
        with self._guard:
            return self.now

    def advance(self, by: timedelta) -> datetime:
        with self._guard:
            self.now += by
            return self.now


def parsed(stamp: str | None) -> datetime:
    assert stamp is not None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def push(delivery_id: str) -> Delivery:
    return Delivery(delivery_id, "push", {"ref": "refs/heads/main", "after": "a" * 40,
                                          "repository": {"full_name": REPO, "default_branch": "main"}})


@dataclasses.dataclass
class Store:
    """Where the log lives for one test: its settings (the queue goes with them) and a way to open it."""

    settings: Settings
    kind: str

    def log(self, clock: Clock | None = None, lease: timedelta = LEASE) -> DeliveryLog:
        def tell() -> datetime:
            return clock() if clock is not None else datetime.now(UTC)

        if self.kind == "sqlite":
            return SqliteDeliveryLog(self.settings.deliveries_db, lease=lease, clock=tell)
        return RedisDeliveryLog(REDIS_URL, prefix=f"paved.{self.settings.queue_name}.delivery.", lease=lease,
                                clock=tell)

    def queue(self, log: DeliveryLog, job: Recorder, **options: object) -> WorkQueue:
        """A queue on the store's backend that only enqueues until it is started."""
        return make_queue(self.settings, log, job, busy_retry_seconds=0.2, **options)  # type: ignore[arg-type]

    def inline(self, log: DeliveryLog, job: Recorder, **options: object) -> WorkQueue:
        """A queue that runs each job as it is enqueued, on the same log."""
        immediate = dataclasses.replace(self.settings, queue_immediate=True)
        return make_queue(immediate, log, job, **options)  # type: ignore[arg-type]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "redis":
        name = request.getfixturevalue("redis_queue")
        return Store(redis_settings(tmp_path, name), "redis")
    return Store(settings_for(tmp_path, queue_immediate=False), "sqlite")


def wait_until(predicate: object, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.02)


# -- a job that died ----------------------------------------------------------------------------------------


def test_a_redelivery_of_a_dead_jobs_delivery_is_accepted_once_its_heartbeat_expired_and_not_before(
        store: Store) -> None:
    clock = Clock()
    log = store.log(clock)
    assert log.accept(push("died-1")) is None
    assert log.claim(push("died-1")) == 1  # and then its worker was killed: nothing renews the record
    clock.advance(LEASE - timedelta(seconds=1))
    assert log.accept(push("died-1")) == Duplicate("died-1", "processing")
    clock.advance(timedelta(seconds=2))
    assert log.accept(push("died-1")) is None


def test_the_heartbeat_keeps_a_long_jobs_record_live_past_its_lease(store: Store) -> None:
    clock = Clock()
    log = store.log(clock)
    release, running = threading.Event(), threading.Event()

    def long_job(delivery: Delivery, work: Work) -> None:
        running.set()
        release.wait(30)

    # Heartbeats every 0.1s of real time; the log counts its lease on the test's clock.
    queue = make_queue(dataclasses.replace(store.settings, lease_seconds=0.3), log, long_job)
    assert log.accept(push("long-1")) is None
    queue.enqueue(push("long-1"))
    queue.start(1)
    try:
        assert running.wait(20)
        for _ in range(3):  # three times two thirds of a lease: past it, with a heartbeat after each step
            moved_to = clock.advance(LEASE * 2 / 3)
            wait_until(lambda moved_to=moved_to: parsed(log.get("long-1").updated_at) >= moved_to,  # type: ignore[union-attr]
                       "a heartbeat")
        assert log.accept(push("long-1")) == Duplicate("long-1", "processing")
    finally:
        release.set()
        wait_until(lambda: log.get("long-1").status == "done", "the job's end")  # type: ignore[union-attr]
        queue.stop()


def test_a_heartbeat_from_an_earlier_attempt_does_not_renew_a_record_taken_up_again(store: Store) -> None:
    clock = Clock()
    log = store.log(clock)
    log.accept(push("fenced-1"))
    assert log.claim(push("fenced-1")) == 1
    clock.advance(LEASE + timedelta(seconds=1))
    assert [d.id for d in log.take_due()] == ["fenced-1"]
    assert log.claim(push("fenced-1")) == 2
    clock.advance(timedelta(seconds=5))
    assert log.renew("fenced-1", 1) is False
    record = log.get("fenced-1")
    assert record is not None and parsed(record.updated_at) < clock.now
    assert log.renew("fenced-1", 2) is True


def test_the_sweep_queues_a_dead_jobs_delivery_once_however_many_sweepers_race(store: Store) -> None:
    clock = Clock()
    log = store.log(clock)
    job = Recorder()
    log.accept(push("swept-1"))
    log.claim(push("swept-1"))  # its worker died here
    clock.advance(LEASE + timedelta(seconds=1))
    sweepers = [store.queue(log, job) for _ in range(4)]
    start = threading.Barrier(len(sweepers))
    queued: list[int] = []

    def sweep(queue: WorkQueue) -> None:
        start.wait()
        queued.append(queue.sweep())

    threads = [threading.Thread(target=sweep, args=(queue,)) for queue in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(queued) == [0, 0, 0, 1]
    assert sweepers[0].pending() == 1
    sweepers[0].start(1)
    try:
        wait_until(lambda: log.get("swept-1").status == "done", "the job")  # type: ignore[union-attr]
    finally:
        sweepers[0].stop()
    assert job.runs == [("swept-1", "push", REPO, 2)]


# -- a delivery without a job, and a failed one ------------------------------------------------------------


def test_an_accepted_delivery_whose_job_was_never_queued_is_picked_up_by_the_sweep(store: Store) -> None:
    log = store.log()
    job = Recorder()
    queue = store.inline(log, job)
    log.accept(push("orphan-1"))  # and queueing it failed, or the process died before
    accepted_at = parsed(log.get("orphan-1").updated_at)  # type: ignore[union-attr]
    assert queue.sweep(now=accepted_at + ORPHAN_AFTER - timedelta(seconds=1)) == 0
    assert queue.sweep(now=accepted_at + ORPHAN_AFTER + timedelta(seconds=1)) == 1
    record = log.get("orphan-1")
    assert record is not None and (record.status, record.attempts) == ("done", 1)
    assert job.runs == [("orphan-1", "push", REPO, 1)]


def test_a_failed_delivery_is_retried_when_its_retry_is_due_and_not_before(store: Store) -> None:
    log = store.log()
    job = Recorder(failures=1)
    queue = store.inline(log, job)
    log.accept(push("flaky-1"))
    queue.enqueue(push("flaky-1"))
    failed = log.get("flaky-1")
    assert failed is not None and failed.status == "failed" and failed.retry_at is not None
    due = parsed(failed.retry_at)
    assert due - parsed(failed.updated_at) == timedelta(minutes=1)
    assert queue.sweep(now=due - timedelta(seconds=1)) == 0
    assert queue.sweep(now=due) == 1
    done = log.get("flaky-1")
    assert done is not None and (done.status, done.attempts, done.keeps_payload) == ("done", 2, False)
    assert [attempt for *_, attempt in job.runs] == [1, 2]


def test_a_delivery_keeps_its_payload_only_until_it_is_done(store: Store) -> None:
    log = store.log()
    log.accept(push("kept-1"))
    accepted = log.get("kept-1")
    log.claim(push("kept-1"))
    finished = log.finish("kept-1", "done")
    assert accepted is not None and accepted.keeps_payload
    assert finished is not None and (finished.status, finished.keeps_payload) == ("done", False)


def test_the_last_failure_tells_gave_up_once_and_drops_the_payload(store: Store) -> None:
    log = store.log()
    job = Recorder(failures=MAX_ATTEMPTS + 1)
    told: list[tuple[str, int, str]] = []
    queue = store.inline(log, job, gave_up=lambda delivery, work, error: told.append(
        (delivery.id, work.attempt, error)))
    log.accept(push("doomed-1"))
    queue.enqueue(push("doomed-1"))
    retries = []
    while (record := log.get("doomed-1")) is not None and record.retry_at is not None:
        retries.append(parsed(record.retry_at) - parsed(record.updated_at))
        assert queue.sweep(now=parsed(record.retry_at)) == 1
    assert record is not None and record.gave_up and not record.keeps_payload
    assert retries == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30)]
    assert told == [("doomed-1", MAX_ATTEMPTS, f"RuntimeError: GitHub answered 502 for {REPO} while planning")]
    assert queue.sweep(now=datetime.now(UTC) + timedelta(days=1)) == 0
    assert len(job.runs) == MAX_ATTEMPTS


def test_a_failure_of_gave_up_itself_is_logged_and_the_delivery_still_recorded(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    def cannot_tell(delivery: Delivery, work: Work, error: str) -> None:
        raise RuntimeError("GitHub answered 503")

    log = store.log()
    queue = store.inline(log, Recorder(failures=MAX_ATTEMPTS), gave_up=cannot_tell)
    log.accept(push("silent-1"))
    queue.enqueue(push("silent-1"))
    while (record := log.get("silent-1")) is not None and record.retry_at is not None:
        queue.sweep(now=parsed(record.retry_at))
    assert record is not None and record.gave_up
    assert any("could not say that Paved gave up" in r.getMessage() and "GitHub answered 503" in r.getMessage()
               for r in caplog.records)


# -- the pull request hears it ----------------------------------------------------------------------------------


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    with applied_estate(tmp_path) as applied:
        yield applied


def last_work(settings: Settings) -> Work:
    return Work(settings, "delivery", MAX_ATTEMPTS, lambda repo: nullcontext(ALWAYS_HELD),
                lambda repo, numbers: nullcontext(ALWAYS_HELD))


def pull_request_delivery(delivery_id: str, number: int) -> Delivery:
    return Delivery(delivery_id, "pull_request", {"action": "synchronize", "pull_request": {"number": number},
                                                  "repository": {"full_name": PLATFORM, "default_branch": "main"}})


def paveds_comments(estate: Estate, number: int) -> list[str]:
    return [c.body for c in estate.forge.comments("acme", "platform", number) if c.body.startswith(GAVE_UP_MARKER)]


def test_a_pull_request_hears_once_that_paved_gave_up_and_a_second_give_up_edits_that_comment(
        estate: Estate, tmp_path: Path) -> None:
    estate.forge.push_files("acme", "platform", "typo", {"README.md": "typo\n"}, by="bob")
    number = estate.forge.open_pull_request("acme", "platform", head="typo", title="A typo", by="bob").number
    settings = dataclasses.replace(estate.settings, queue_immediate=True)
    log = SqliteDeliveryLog(settings.deliveries_db)
    secret = settings.secret_values()[0]

    def failing(delivery: Delivery, work: Work) -> None:
        raise RuntimeError(f"GitHub answered 502 with {secret}\n  Traceback (most recent call last)")

    queue = make_queue(settings, log, failing, gave_up=say_gave_up)
    for delivery_id in ("plan-1", "plan-2"):
        log.accept(pull_request_delivery(delivery_id, number))
        queue.enqueue(pull_request_delivery(delivery_id, number))
        while (record := log.get(delivery_id)) is not None and record.retry_at is not None:
            queue.sweep(now=parsed(record.retry_at))
        if delivery_id == "plan-1":
            first = paveds_comments(estate, number)
    assert len(first) == 1
    [said] = paveds_comments(estate, number)
    assert said == (f"{GAVE_UP_MARKER}\n⚠️ Paved could not finish planning this pull request "
                    f"(`pull_request.synchronize`) after {MAX_ATTEMPTS} attempts: RuntimeError: GitHub answered 502 "
                    "with ******** Traceback (most recent call last). Paved's reconcile picks it up again; comment "
                    "`/paved plan` to try now.")
    assert secret not in said


def test_a_push_paved_gave_up_on_is_told_on_the_pull_request_whose_merge_made_it(estate: Estate) -> None:
    estate.forge.push_files("acme", "platform", "docs", {"README.md": "docs\n"}, by="bob")
    number = estate.forge.open_pull_request("acme", "platform", head="docs", title="Docs", by="bob").number
    merged = estate.forge.merge("acme", "platform", number, by="alice")
    delivery = Delivery("push-1", "push", {"ref": "refs/heads/main", "after": merged,
                                           "repository": {"full_name": PLATFORM, "default_branch": "main"}})
    say_gave_up(delivery, last_work(estate.settings), "ForgeError: GitHub failed to create the team")
    [said] = paveds_comments(estate, number)
    assert f"could not finish applying {merged[:12]} after {MAX_ATTEMPTS} attempts" in said
    assert "`/paved retry`" in said
