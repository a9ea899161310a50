"""`paved serve` killed with SIGKILL in the middle of applying a merge, then restarted.

Whatever the moment of the kill, the restarted Paved (its reconcile at start) finishes the apply, and
the merge ends applied exactly once: one `paved/apply` check run and one apply comment for its head, one
successful apply record in the head's note, the repository created once and the database made once.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.chaos.conftest import LEASE_SECONDS, PLATFORM, Chaos

# The kills wait on a slow answer, long enough that Paved is surely still waiting for it.
SLOW_SECONDS = 8
PUSH_TO_PLATFORM = r"^POST /acme/platform\.git/git-receive-pack$"
CHECK_RUNS = rf"^(POST /repos/{PLATFORM}/check-runs|PATCH /repos/{PLATFORM}/check-runs/\d+)$"
# At a rate of 0.5, faults drawn from this seed spare the first call and strike the second.
DROP_SECOND = 10


def test_paved_killed_while_github_creates_the_repository_applies_the_merge_once_when_restarted(
        chaos: Chaos, postgres_dsn: str, record_property: Callable[[str, object], None]) -> None:
    serve = chaos.serve()
    number = chaos.planned_request()
    creating = chaos.forge.faults(rate=1.0, kinds=("slow",), only=r"^POST /orgs/acme/repos$", limit=1,
                                  slow_seconds=SLOW_SECONDS)
    head = chaos.merge(number)
    # GitHub made the repository; its answer is still on its way when Paved dies.
    chaos.wait_for("GitHub to create the service's repository", lambda: (creating.served, chaos.repositories()),
                   seconds=30, until=lambda seen: bool(seen[0] and seen[1]), every=0.02)
    serve.kill()
    chaos.forge.no_faults()

    watch = chaos.converging("restarted serve applies the merge")
    chaos.restart(serve)
    chaos.wait_until_reported(number, head)
    watch.stop(record_property)
    chaos.assert_applied_once(number, head)


def test_paved_killed_after_publishing_the_apply_check_finishes_reporting_the_merge_when_restarted(
        chaos: Chaos, record_property: Callable[[str, object], None]) -> None:
    serve = chaos.serve()
    number = chaos.planned_request()
    publishing = chaos.forge.faults(rate=1.0, kinds=("slow",), limit=1, slow_seconds=SLOW_SECONDS, only=CHECK_RUNS)
    head = chaos.merge(number)
    # The check is on the forge, the applied ref has not moved and the comment is not written.
    chaos.wait_for("the paved/apply check to be published", lambda: publishing.served, seconds=30, every=0.02)
    serve.kill()
    chaos.forge.no_faults()
    assert chaos.apply_comments(number, head) == [] and chaos.applied_ref() == chaos.seed_head

    watch = chaos.converging("restarted serve finishes reporting the merge")
    chaos.restart(serve)
    chaos.wait_until_reported(number, head)
    watch.stop(record_property)
    chaos.assert_applied_once(number, head)


def test_paved_killed_while_pushing_the_apply_record_finishes_reporting_the_merge_when_restarted(
        chaos: Chaos, record_property: Callable[[str, object], None]) -> None:
    serve = chaos.serve()
    number = chaos.planned_request()
    # The first push after the merge is the note holding the apply's record: the forge takes it, and the
    # connection drops before Paved hears so.
    pushing = chaos.forge.faults(rate=1.0, kinds=("drop",), only=PUSH_TO_PLATFORM, limit=1)
    head = chaos.merge(number)
    chaos.wait_for("the push of the apply record", lambda: pushing.served, seconds=30, every=0.01)
    serve.kill()
    chaos.forge.no_faults()

    watch = chaos.converging("restarted serve finishes reporting the merge")
    chaos.restart(serve)
    chaos.wait_until_reported(number, head)
    watch.stop(record_property)
    chaos.assert_applied_once(number, head)


def test_paved_killed_while_pushing_the_applied_ref_has_its_comment_written_by_paved_reconcile(
        chaos: Chaos, record_property: Callable[[str, object], None]) -> None:
    serve = chaos.serve()
    number = chaos.planned_request()
    # The first push after the merge (the note) goes through, the second (the applied ref) is dropped:
    # the applied ref reaches the forge, Paved never hears so, and dies before it comments.
    pushing = chaos.forge.faults(rate=0.5, kinds=("drop",), only=PUSH_TO_PLATFORM, limit=1, seed=DROP_SECOND)
    head = chaos.merge(number)
    chaos.wait_for("the push of refs/paved/applied", lambda: pushing.served, seconds=30, every=0.01)
    serve.kill()
    chaos.forge.no_faults()

    # Paved's service stays down; `paved reconcile`, run as a cron job would run it, catches up once the
    # killed service's lease on the repository has expired.
    watch = chaos.converging("paved reconcile comments on the merge")
    chaos.wait_for("paved reconcile to find everything applied", lambda: chaos.reconcile().returncode,
                   seconds=LEASE_SECONDS + 30, until=lambda code: code == 0, every=1)
    chaos.wait_until_reported(number, head, seconds=5)
    watch.stop(record_property)
    chaos.assert_applied_once(number, head)
