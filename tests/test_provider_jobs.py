"""A job's providers: one that observes together is asked once for every resource of the job, and let go
of when the job ends, however it ends; one that does not is observed resource by resource as before.

The providers here are the core's view of a provider (a dict of what exists); the database provider's
tests hold the same promises against a real PostgreSQL and the sandbox forge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from bot.apply import apply_plan, provider_job
from bot.errors import PavedError
from bot.model import Change, Plan, Resource
from bot.provider import Result, Step, Target
from tests.test_apply import TARGET, Recording, resource


class Together:
    """A provider over a dict that reads all of a job's resources at once, and says what it was asked."""

    kinds = ("Database",)

    def __init__(self, existing: Mapping[str, str], unreadable: str = "") -> None:
        self.existing = existing
        self.unreadable = unreadable
        self.read_together: list[list[str]] = []
        self.read_alone: list[str] = []
        self.applied_from: list[tuple[str, str | None]] = []
        self.closed = 0

    def observe(self, resource: Resource, target: Target) -> str | None:
        self.read_alone.append(resource.identity)
        return self.existing.get(resource.identity)

    def observe_all(self, resources: Sequence[Resource], target: Target) -> dict[str, str | None]:
        self.read_together.append([r.identity for r in resources])
        if self.unreadable:
            raise PavedError(self.unreadable)
        return {r.identity: self.existing.get(r.identity) for r in resources}

    def plan(self, desired: Resource | None, actual: str | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        return []

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None,
              observed: Mapping[str, str | None] | None = None) -> Result:
        subject = desired or previous
        assert subject is not None and observed is not None
        self.applied_from.append((subject.identity, observed.get(subject.identity)))
        return Result(subject.identity, "unchanged")

    def close(self) -> None:
        self.closed += 1


ORDERS = Change("update", "Database", "orders", "payments", "catalog/orders.yaml", 2)
LEDGER = Change("create", "Database", "ledger", "payments", "catalog/ledger.yaml", 2)
EVENTS = Change("create", "Queue", "events", "payments", "catalog/events.yaml", 2, depends_on=("Database/ledger",))
GONE = Change("delete", "Database", "archive", "payments", "catalog/archive.yaml", 2)
AFTER = {c.identity: resource(c.kind, c.name) for c in (ORDERS, LEDGER, EVENTS)}
BEFORE = {c.identity: resource(c.kind, c.name) for c in (ORDERS, GONE)}
PLAN = Plan("a", "b", (ORDERS, LEDGER, EVENTS), (GONE,), 0, (), ())


def test_an_apply_reads_all_of_a_provider_s_resources_at_once_and_applies_each_from_what_it_read() -> None:
    provider = Together({"Database/orders": "live orders", "Database/archive": "live archive"})
    results = apply_plan(PLAN, BEFORE, AFTER, [provider, Recording(("Queue",))], TARGET)
    assert provider.read_together == [["Database/orders", "Database/ledger", "Database/archive"]]
    assert provider.read_alone == []
    assert provider.applied_from == [("Database/orders", "live orders"), ("Database/ledger", None),
                                     ("Database/archive", "live archive")]
    assert [(r.resource, r.status) for r in results] == [
        ("Database/orders", "unchanged"), ("Database/ledger", "unchanged"), ("Queue/events", "applied"),
        ("Database/archive", "unchanged")]


def test_a_provider_without_observe_all_is_applied_resource_by_resource() -> None:
    alone = Recording(("Queue",))  # its `apply` takes no `observed`, as the port has always had it
    apply_plan(PLAN, BEFORE, AFTER, [Together({}), alone], TARGET)
    assert alone.applied == ["Queue/events"]


def test_an_apply_lets_go_of_each_provider_that_observes_together_when_it_ends() -> None:
    provider = Together({})
    apply_plan(PLAN, BEFORE, AFTER, [provider], TARGET)
    assert provider.closed == 1


def test_a_job_that_fails_still_lets_go_of_its_providers() -> None:
    provider = Together({})
    with pytest.raises(RuntimeError, match="the push failed"), \
            provider_job([provider], [AFTER["Database/orders"]], TARGET):
        raise RuntimeError("the push failed")
    assert provider.closed == 1


def test_resources_a_provider_cannot_read_fail_with_its_message_and_their_dependents_are_skipped() -> None:
    provider = Together({}, unreadable="PostgreSQL could not be reached: timeout expired")
    results = apply_plan(PLAN, BEFORE, AFTER, [provider, Recording(("Queue",))], TARGET)
    assert [(r.resource, r.status, r.message) for r in results] == [
        ("Database/orders", "failed", "PostgreSQL could not be reached: timeout expired"),
        ("Database/ledger", "failed", "PostgreSQL could not be reached: timeout expired"),
        ("Queue/events", "skipped", "skipped: Database/ledger failed"),
        ("Database/archive", "failed", "PostgreSQL could not be reached: timeout expired")]
    assert provider.applied_from == [] and provider.closed == 1


def test_what_a_job_did_not_read_together_is_observed_alone() -> None:
    provider = Together({"Database/orders": "live orders"})
    with provider_job([provider], [], TARGET) as job:
        assert job.observe(provider, AFTER["Database/orders"]) == "live orders"
    assert provider.read_together == [] and provider.read_alone == ["Database/orders"]
