"""Paved's data folder on a disk that fills up under a running job, then has room again.

The full disk is made with RLIMIT_FSIZE on the `paved serve` process (see `Chaos.fill_disk`): no root,
no special file system, and every write that would grow a file fails as on a full disk, in Paved and in
the git processes it starts. The job running then dies without recording its end, so its delivery is
stuck `processing`; once there is room again, that delivery runs again and ends `done`, and the merge it
carried is applied exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.chaos.conftest import LEASE_SECONDS, Chaos

JOB_DIED = re.compile(r"job failed|Unhandled exception in task")


def test_a_delivery_stuck_by_a_full_disk_runs_again_once_there_is_room_and_its_merge_applies_once(
        chaos: Chaos, record_property: Callable[[str, object], None]) -> None:
    serve = chaos.serve()
    number = chaos.planned_request()
    creating = chaos.forge.faults(rate=1.0, kinds=("slow",), only=r"^POST /orgs/acme/repos$", limit=1,
                                  slow_seconds=2)
    head = chaos.merge(number)
    chaos.wait_for("the apply to be creating the repository", lambda: creating.served, seconds=30, every=0.02)
    chaos.fill_disk(serve)
    chaos.wait_for("the apply job to die on the full disk", lambda: JOB_DIED.search(serve.tail(200)), seconds=30)
    merged = chaos.delivery_of_merge(head)
    log = chaos.delivery_log(serve)
    stuck = log.get(merged)
    assert stuck is not None and stuck.status == "processing", stuck
    assert chaos.readyz().status_code == 503

    watch = chaos.converging("the stuck delivery runs again once the disk has room")
    chaos.free_disk(serve)
    chaos.wait_for(f"delivery {merged} to end done", lambda: log.get(merged), seconds=LEASE_SECONDS + 30,
                   until=lambda record: record is not None and record.status == "done")
    chaos.wait_until_reported(number, head, seconds=30)
    watch.stop(record_property)
    chaos.assert_applied_once(number, head)
    assert chaos.readyz().status_code == 200
