"""Plans come first: with reconcile work waiting in the queue, a plan queued after it runs before it, then
any other delivery's job, then reconcile; on the embedded SQLite queue and on Redis alike.

One consumer thread starts after everything is queued, so the order the jobs run in is the queue's own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from huey import RedisHuey  # type: ignore[import-untyped]

from bot.adapters.deliveries import open_delivery_log
from bot.adapters.queue import Work, WorkQueue, make_queue
from bot.settings import Settings
from bot.web.jobs import is_plan
from bot.webhook import Delivery
from tests.test_service import EXAMPLES, OPENED, REDIS_URL, redis_queue, redis_settings, settings_for  # noqa: F401

RECONCILE_BACKLOG = 3


class RunOrder:
    """A job and a periodic task that write down, in one list, what ran in which order."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.changed = threading.Condition()

    def job(self, delivery: Delivery, work: Work) -> None:
        self._add(delivery.kind)

    def periodic(self, work: Work) -> None:
        if work.trigger == "schedule":
            return  # the clock's tick, due whenever a run crosses a minute, is no part of the queued order
        self._add(f"reconcile.{work.trigger}")

    def _add(self, what: str) -> None:
        with self.changed:
            self.ran.append(what)
            self.changed.notify_all()

    def wait_for(self, count: int, seconds: float = 30) -> list[str]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.ran) >= count, seconds), f"only ran {self.ran}"
            return list(self.ran)


@pytest.fixture(params=["sqlite", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return settings_for(tmp_path, queue_immediate=False)
    return redis_settings(tmp_path, request.getfixturevalue("redis_queue"))


@pytest.fixture
def order() -> RunOrder:
    return RunOrder()


@pytest.fixture
def queue(settings: Settings, order: RunOrder) -> Iterator[WorkQueue]:
    queue = make_queue(settings, open_delivery_log(settings), order.job, order.periodic, is_plan=is_plan)
    yield queue
    queue.stop()


def opened() -> Delivery:
    return Delivery("opened-1", "pull_request", json.loads((EXAMPLES / OPENED).read_text()))


def pushed() -> Delivery:
    return Delivery("push-1", "push", {"ref": "refs/heads/main", "after": "1" * 40,
                                       "repository": {"full_name": "acme/platform", "default_branch": "main"}})


def accepted(queue: WorkQueue, delivery: Delivery) -> None:
    assert queue.deliveries.accept(delivery) is None
    queue.enqueue(delivery)


def reconcile_backlog(queue: WorkQueue) -> None:
    # Runs of a start, not of the schedule: a schedule's tick runs once a minute however often it is queued.
    for _ in range(RECONCILE_BACKLOG):
        queue.queue_reconcile("start")


def test_a_plan_queued_after_a_reconcile_backlog_runs_first(queue: WorkQueue, order: RunOrder) -> None:
    reconcile_backlog(queue)
    accepted(queue, pushed())
    accepted(queue, opened())

    queue.start(1)

    assert order.wait_for(RECONCILE_BACKLOG + 3)[0] == "pull_request.opened"  # with the start's own reconcile


def test_every_delivery_job_runs_before_the_reconcile_backlog(queue: WorkQueue, order: RunOrder) -> None:
    reconcile_backlog(queue)
    accepted(queue, pushed())
    accepted(queue, opened())

    queue.start(1)

    ran = order.wait_for(RECONCILE_BACKLOG + 3)
    assert ran[:2] == ["pull_request.opened", "push"]
    assert ran[2:] == ["reconcile.start"] * (RECONCILE_BACKLOG + 1)


def _delivery_as_queued_before(*args: object, task: object = None) -> None:
    """Stands for the queue's delivery task, under the name Huey knows it by, to queue it as before."""


_delivery_as_queued_before.__module__ = "bot.adapters.queue"


def test_jobs_a_paved_without_priorities_left_in_redis_run(redis_queue: str, tmp_path: Path,  # noqa: F811
                                                           order: RunOrder) -> None:
    settings = redis_settings(tmp_path, redis_queue)
    queue = make_queue(settings, open_delivery_log(settings), order.job, is_plan=is_plan)
    earlier = RedisHuey(settings.queue_name, url=REDIS_URL, results=False)  # how the queue was kept before
    task = earlier.task(name="delivery", context=True)(_delivery_as_queued_before)
    delivery = pushed()
    assert queue.deliveries.accept(delivery) is None
    earlier.enqueue(task.s(delivery.id, delivery.event, delivery.payload))
    assert redis.Redis.from_url(REDIS_URL).type(f"huey.redis.{settings.queue_name}") == b"list"

    queue.start(1)
    try:
        assert order.wait_for(1) == ["push"]
    finally:
        queue.stop()
    deadline = time.monotonic() + 10
    while queue.deliveries.get(delivery.id).status != "done":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
