"""Scale-out on Redis: one `paved serve` that only enqueues, and two `paved worker` processes that run jobs.

A worker killed while it holds the repository's lease does not stop applies for good: the lease
expires on its own and the surviving worker applies the merge, once, with nobody flushing locks. And
however many triggers race on one pull request head across both workers, the head gets one plan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis

from tests.chaos.conftest import LEASE_SECONDS, ORG, PLAN_CHECK, REDIS_URL, REPO, Chaos, Paved

# The apply's repository creation answers this late: the worker holding the lease is killed meanwhile.
SLOW_SECONDS = 30


def scaled_out(chaos: Chaos, queue: str) -> tuple[Paved, Paved, Paved]:
    """serve (enqueueing only) and workers a and b, sharing the Redis queue `queue`."""
    shared = {"PAVED_REDIS_URL": REDIS_URL, "PAVED_QUEUE_NAME": queue}
    serve = chaos.serve(data="serve-data", **shared)
    return serve, chaos.worker("worker-a", data="worker-a", **shared), chaos.worker("worker-b", data="worker-b",
                                                                                    **shared)


def lease_holder(client: redis.Redis, queue: str, workers: tuple[Paved, ...]) -> Paved | None:
    """The worker holding the platform repo's lease (its holder names host, pid and a token), if one does."""
    token = client.get(f"paved.{queue}.lease.repo:{ORG}/{REPO}")
    if token is None:
        return None
    pid = int(token.decode().split(":")[1])
    return next((w for w in workers if w.pid == pid), None)


def test_a_worker_killed_holding_the_repository_lease_leaves_the_apply_to_the_other_once_the_lease_expires(
        chaos: Chaos, redis_queue: str, redis_client: redis.Redis,
        record_property: Callable[[str, object], None]) -> None:
    _, worker_a, worker_b = scaled_out(chaos, redis_queue)
    number = chaos.planned_request()
    creating = chaos.forge.faults(rate=1.0, kinds=("slow",), only=r"^POST /orgs/acme/repos$", limit=1,
                                  slow_seconds=SLOW_SECONDS)
    head = chaos.merge(number)
    chaos.wait_for("a worker to be creating the repository", lambda: creating.served, seconds=30, every=0.05)
    holder = lease_holder(redis_client, redis_queue, (worker_a, worker_b))
    assert holder is not None, "the worker applying holds the repository's lease"
    holder.kill()
    chaos.forge.no_faults()

    watch = chaos.converging("the surviving worker applies after the lease expired")
    chaos.wait_for("the killed worker's lease to expire", lambda: lease_holder(redis_client, redis_queue, (holder,)),
                   seconds=LEASE_SECONDS + 3, until=lambda still: still is None)
    chaos.wait_until_reported(number, head, seconds=LEASE_SECONDS + 30)
    watch.stop(record_property)
    chaos.assert_applied_once(number, head)


def test_triggers_racing_on_one_head_across_two_workers_give_it_one_plan_comment_and_one_check_run(
        chaos: Chaos, redis_queue: str, record_property: Callable[[str, object], None]) -> None:
    serve, _, _ = scaled_out(chaos, redis_queue)
    number = chaos.planned_request()
    # A push that everyone reacts to at once: the synchronize delivery redelivered again and again, and
    # people asking for a plan.
    chaos.forge.push_files(ORG, REPO, "experiment", {"catalog/services/README.md": "Services live here.\n"},
                           by="gina")
    head = chaos.head(number)
    chaos.forge.wait_for_deliveries()
    synchronize = next(d for d in chaos.forge.deliveries("pull_request", "synchronize"))
    triggers = [threading.Thread(target=chaos.forge.redeliver, args=(synchronize.id,)) for _ in range(5)]
    triggers += [threading.Thread(target=chaos.forge.comment, args=(ORG, REPO, number, "/paved plan"),
                                  kwargs={"by": by}) for by in ("gina", "hugo") * 4]
    watch = chaos.converging("racing triggers give the head one plan")
    for trigger in triggers:
        trigger.start()
    for trigger in triggers:
        trigger.join(timeout=30)
    chaos.settle(chaos.delivery_log(serve))
    watch.stop(record_property)

    runs = chaos.check_runs(head, PLAN_CHECK)
    assert [(r.status, r.conclusion) for r in runs] == [("completed", "success")], runs
    assert len(chaos.plan_comments(number)) == 1, chaos.plan_comments(number)
    assert head in chaos.plan_comments(number)[0]

