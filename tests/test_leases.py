"""Leases, not locks: work that must not overlap holds a lease with an owner and an expiry, on Redis, on the
embedded SQLite queue and in memory alike.

A worker killed while holding one (`kill -9`, in a real process) leaves it to the next job once it expired;
a holder that renews keeps it past its ttl; a holder whose lease another took learns it and publishes
nothing. Through the real handlers on the sandbox forge: racing `/paved plan` triggers give one plan
comment and one check run, and a push to a feature branch takes no repository lease.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis

from bot.adapters.deliveries import open_delivery_log
from bot.adapters.leases import ALWAYS_HELD, Held, Lease, LeaseLost, MemoryLeases, RedisLeases, SqliteLeases
from bot.adapters.queue import PullRequestBusy, RepoBusy, WorkQueue, make_queue
from bot.apply import APPLIED_REF, NOTES_REF
from bot.handlers.pull_request import CHECK_NAME, plan_pull_request
from bot.handlers.push import CHECK_NAME as APPLY_CHECK
from bot.handlers.push import apply_default_branch
from bot.settings import Secret, Settings
from bot.web.jobs import handle_delivery
from bot.webhook import Delivery
from tests.conftest import PROJECT, REPO, World, experimental_change
from tests.test_service import REDIS_URL, Recorder, redis_queue, redis_settings, settings_for

__all__ = ["redis_queue"]  # the fixture, shared with the service's scale-out tests

NAME = "repo:acme/platform"


# -- the stores ------------------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def leases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lease]:
    if request.param == "memory":
        yield MemoryLeases()
    elif request.param == "sqlite":
        yield SqliteLeases(tmp_path / "queue.sqlite")
    else:
        name = request.getfixturevalue("redis_queue")
        client = redis.Redis.from_url(REDIS_URL)
        yield RedisLeases(client, f"paved.{name}")
        client.close()


def test_a_lease_is_refused_while_held_and_taken_again_once_released(leases: Lease) -> None:
    first = leases.acquire(NAME, 30)
    assert first is not None
    assert leases.acquire(NAME, 30) is None
    first.release()
    second = leases.acquire(NAME, 30)
    assert second is not None and second.fence > first.fence
    second.release()


def test_an_expired_lease_is_taken_by_the_next_holder_and_the_first_learns_it_lost_it(leases: Lease) -> None:
    first = leases.acquire(NAME, 0.5)
    assert first is not None
    time.sleep(0.8)  # its holder never renewed it
    second = leases.acquire(NAME, 30)
    assert second is not None and second.fence == first.fence + 1
    with pytest.raises(LeaseLost) as lost:
        first.check()
    assert lost.value.name == NAME and lost.value.fence == first.fence
    with pytest.raises(LeaseLost):
        first.renew()
    first.release()  # releasing what is no longer ours leaves the new holder's lease alone
    assert leases.acquire(NAME, 30) is None
    second.check()
    second.release()


def test_a_holder_that_renews_keeps_its_lease_past_its_ttl(leases: Lease) -> None:
    held = leases.acquire(NAME, 0.6)
    assert held is not None
    for _ in range(6):
        time.sleep(0.2)
        held.renew()
    assert leases.acquire(NAME, 0.6) is None  # 1.2s after it was taken for 0.6s
    held.check()
    held.release()


def test_flushing_releases_every_lease_and_their_holders_learn_it(leases: Lease) -> None:
    held = leases.acquire(NAME, 30)
    assert held is not None
    assert leases.flush() == {NAME}
    with pytest.raises(LeaseLost):
        held.check()
    again = leases.acquire(NAME, 30)
    assert again is not None and again.fence > held.fence


# -- the queue's leases, held by a process that is killed -------------------------------------------------------

HOLDER = textwrap.dedent("""
    import os, sys, time
    from bot.adapters.deliveries import open_delivery_log
    from bot.adapters.queue import make_queue
    from bot.settings import Settings

    settings = Settings.from_env(dict(os.environ))
    queue = make_queue(settings, open_delivery_log(settings), lambda delivery, work: None,
                       lease_seconds=float(sys.argv[2]))
    with queue.repo_lock(sys.argv[1]) as held:
        print(held.fence, flush=True)
        time.sleep(600)
""")

LEASE_SECONDS = 1.5


def queue_settings(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> tuple[Settings, dict[str, str]]:
    env = {**os.environ, "PAVED_DATA_DIR": str(tmp_path / "data"), "PAVED_WEBHOOK_SECRET": "x" * 32,
           "PAVED_GITHUB_TOKEN": "ghp_" + "a" * 36}
    if backend == "redis":
        name = request.getfixturevalue("redis_queue")
        env.update({"PAVED_REDIS_URL": REDIS_URL, "PAVED_QUEUE_NAME": name})
        return redis_settings(tmp_path, name), env
    return settings_for(tmp_path, queue_immediate=False), env


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_lease_held_by_a_killed_worker_is_taken_by_the_next_job_once_it_expired(
        request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    settings, env = queue_settings(request, tmp_path, backend)
    queue = make_queue(settings, open_delivery_log(settings), Recorder(), lease_seconds=LEASE_SECONDS)
    assert queue.backend == backend
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, "acme/platform", str(LEASE_SECONDS)], env=env,
                              cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        their_fence = int(holder.stdout.readline() or "0")
        assert their_fence >= 1, holder.stderr.read() if holder.stderr else ""
        # The holder renews its lease: it is still held at twice its ttl.
        time.sleep(2 * LEASE_SECONDS)
        with pytest.raises(RepoBusy), queue.repo_lock("acme/platform"):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed_at = time.monotonic()
        while True:
            try:
                with queue.repo_lock("ACME/platform") as held:
                    taken_after = time.monotonic() - killed_at
                    assert held.fence == their_fence + 1
                break
            except RepoBusy:
                assert time.monotonic() - killed_at < LEASE_SECONDS + 2, "the dead worker's lease never expired"
                time.sleep(0.05)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate(timeout=10)
    assert taken_after <= LEASE_SECONDS + 1


def test_a_job_that_finds_the_pull_request_being_planned_waits_then_runs_again_later(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, queue_immediate=False)
    queue = make_queue(settings, open_delivery_log(settings), Recorder(), plan_wait_seconds=0.3)
    with queue.pull_request_lock(REPO, (7,)):
        started = time.monotonic()
        with pytest.raises(PullRequestBusy) as busy, queue.pull_request_lock("ACME/Platform", (7,)):
            pass
        assert time.monotonic() - started >= 0.3
        with queue.pull_request_lock(REPO, (8,)) as other:  # another pull request is not held up
            other.check()
    assert (busy.value.repo, busy.value.number) == ("ACME/Platform", 7)
    with queue.pull_request_lock(REPO, (7, 8)) as both:
        both.check()


# -- fencing: a holder that lost its lease publishes nothing ----------------------------------------------------


def lost_lease(tmp_path: Path, name: str) -> Held:
    store = SqliteLeases(tmp_path / "queue.sqlite")
    stalled = store.acquire(name, 0.3)
    assert stalled is not None
    time.sleep(0.5)  # it stalled past its expiry without renewing …
    assert store.acquire(name, 60) is not None  # … and another job took the lease
    return stalled


def check_runs(world: World, sha: str, name: str) -> list[object]:
    commit = world.ctx.forge._repo(REPO).get_commit(sha)  # type: ignore[attr-defined]
    return list(commit.get_check_runs(check_name=name))


def test_a_plan_whose_pull_request_lease_was_taken_publishes_nothing(world: World, tmp_path: Path) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    stalled = lost_lease(tmp_path, f"pr:acme/platform#{number}")
    with pytest.raises(LeaseLost):
        plan_pull_request(replace(world.ctx, lease=stalled), REPO, number)
    head = world.forge.pull_request("acme", "platform", number).head_sha
    assert world.plan_comments(number) == []
    assert check_runs(world, head, CHECK_NAME) == []


def test_an_apply_whose_repository_lease_was_taken_publishes_nothing(world: World, tmp_path: Path) -> None:
    stalled = lost_lease(tmp_path, NAME)
    with pytest.raises(LeaseLost):
        apply_default_branch(replace(world.ctx, lease=stalled), REPO, ())
    head = world.forge.branch_sha("acme", "platform", "main")
    assert head is not None
    assert not world.ctx.mirror.fetch_if_present(REPO, APPLIED_REF)
    assert not world.ctx.mirror.fetch_if_present(REPO, NOTES_REF)
    assert check_runs(world, head, APPLY_CHECK) == []


# -- the service's jobs, racing on the sandbox forge -----------------------------------------------------------


@dataclass
class Jobs:
    world: World
    queue: WorkQueue

    def run(self, delivery: Delivery) -> None:
        """Run the job as a consumer does: a job that finds its pull request busy runs again later."""
        deadline = time.monotonic() + 60
        while True:
            try:
                handle_delivery(delivery, self.queue.work("delivery"))
                return
            except PullRequestBusy:
                assert time.monotonic() < deadline
                time.sleep(0.1)


def delivered(delivery_id: str, event: str, payload: dict[str, object]) -> Delivery:
    """A delivery the forge sent, as this test's App receives it (its installation is found by repository)."""
    return Delivery(delivery_id, event, {k: v for k, v in payload.items() if k != "installation"})


@pytest.fixture
def jobs(world: World, tmp_path: Path) -> Iterator[Jobs]:
    """The service's job on acme's platform repo, as a Paved App of its own, with the SQLite queue's leases."""
    app = world.forge.create_app("acme", "paved-jobs", permissions={
        "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read"})
    world.forge.install_app(app.id, "acme")
    settings = dataclasses.replace(
        Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "jobs-data")}), github_api_url=world.forge.api_url,
        github_app_id=str(app.id), github_private_key=Secret(app.private_key), queue_immediate=False)
    yield Jobs(world, make_queue(settings, open_delivery_log(settings), handle_delivery))


def together(runs: list[Callable[[], None]]) -> None:
    """Start every run at the same instant, each in its thread; re-raise the first failure."""
    start = threading.Barrier(len(runs))
    failures: list[BaseException] = []

    def go(run: Callable[[], None]) -> None:
        start.wait()
        try:
            run()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=go, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if failures:
        raise failures[0]


def test_four_simultaneous_plan_commands_give_one_plan_comment_and_one_check_run(jobs: Jobs) -> None:
    world = jobs.world
    number = experimental_change(world.forge, "reword", by="carol")
    for _ in range(4):
        world.forge.comment("acme", "platform", number, "/paved plan", by="bob")
    world.forge.wait_for_deliveries()
    commands = [delivered(f"plan-{i}", "issue_comment", d.payload)
                for i, d in enumerate(world.forge.deliveries("issue_comment", "created")[-4:])]
    assert len({d.payload["comment"]["id"] for d in commands}) == 4

    together([lambda d=d: jobs.run(d) for d in commands])

    head = world.forge.pull_request("acme", "platform", number).head_sha
    assert len(world.plan_comments(number)) == 1
    runs = check_runs(world, head, CHECK_NAME)
    assert len(runs) == 1 and runs[0].conclusion == "success"  # type: ignore[attr-defined]


def test_a_push_to_a_feature_branch_takes_no_repository_lease(jobs: Jobs) -> None:
    world = jobs.world
    world.forge.push_files("acme", "platform", "feature", {"catalog/README.md": "Requests live here.\n"}, by="carol")
    world.forge.wait_for_deliveries()
    feature = delivered("push-feature", "push", world.forge.deliveries("push")[-1].payload)
    assert feature.payload["ref"] == "refs/heads/feature"
    main = dict(feature.payload, ref="refs/heads/main")
    with jobs.queue.repo_lock(REPO):  # an apply is running
        handle_delivery(feature, jobs.queue.work("delivery"))  # not busy: nothing to apply
        with pytest.raises(RepoBusy):
            handle_delivery(Delivery("push-main", "push", main), jobs.queue.work("delivery"))


def test_work_that_nothing_can_race_is_always_held() -> None:
    ALWAYS_HELD.check()
    ALWAYS_HELD.renew()
    ALWAYS_HELD.release()
    ALWAYS_HELD.check()
