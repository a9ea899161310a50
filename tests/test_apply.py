"""Applying a plan: dependency order, failures contained, and the record kept in git notes."""

from __future__ import annotations

from typing import Any

from bot.apply import ApplyRecord, apply_plan, read_records
from bot.audit import as_text, trail
from bot.model import Change, MemoryTree, Plan, Resource
from bot.provider import Result, Step, Target

TARGET = Target("acme", "acme/platform", MemoryTree({}), "abc123")


def resource(kind: str, name: str) -> Resource:
    return Resource(kind, name, "payments", f"catalog/{name}.yaml", 0, 2, {"kind": kind, "metadata": {"name": name}})


class Recording:
    """A provider over a dict, failing for the names it is told to: the core's view of a provider."""

    def __init__(self, kinds: tuple[str, ...], failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.kinds = kinds
        self.failing = failing
        self.applied: list[str] = []

    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        return None

    def plan(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        return []

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None) -> Result:
        subject = desired or previous
        assert subject is not None
        self.applied.append(subject.identity)
        if subject.name in self.failing:
            return Result(subject.identity, "failed", "GitHub refused")
        return Result(subject.identity, "applied", "done")


def plan_of(*changes: Change, deletions: tuple[Change, ...] = ()) -> Plan:
    return Plan("a", "b", changes, deletions, 0, (), ())


TEAM = Change("create", "Team", "payments", "payments", "catalog/payments.yaml", 2)
SERVICE = Change("create", "Service", "checkout", "payments", "catalog/checkout.yaml", 2, depends_on=("Team/payments",))
ACCESS = Change("create", "Access", "data-reads", "payments", "catalog/a.yaml", 2,
                depends_on=("Team/payments", "Service/checkout"))
OTHER = Change("create", "Service", "ledger", "payments", "catalog/ledger.yaml", 2)
AFTER = {c.identity: resource(c.kind, c.name) for c in (TEAM, SERVICE, ACCESS, OTHER)}


def test_changes_are_applied_in_plan_order() -> None:
    provider = Recording(("Team", "Service", "Access"))
    results = apply_plan(plan_of(TEAM, SERVICE, ACCESS), {}, AFTER, [provider], TARGET)
    assert provider.applied == ["Team/payments", "Service/checkout", "Access/data-reads"]
    assert [r.status for r in results] == ["applied"] * 3


def test_a_failure_skips_its_dependents_but_not_independent_resources() -> None:
    provider = Recording(("Team", "Service", "Access"), failing={"checkout"})
    results = apply_plan(plan_of(TEAM, SERVICE, ACCESS, OTHER), {}, AFTER, [provider], TARGET)
    assert [(r.resource, r.status) for r in results] == [
        ("Team/payments", "applied"), ("Service/checkout", "failed"), ("Access/data-reads", "skipped"),
        ("Service/ledger", "applied")]
    assert results[2].message == "skipped: Service/checkout failed"


def test_a_kind_without_a_provider_is_skipped_and_says_so() -> None:
    db = Change("create", "Database", "orders", "payments", "catalog/db.yaml", 2)
    [result] = apply_plan(plan_of(db), {}, {db.identity: resource("Database", "orders")}, [], TARGET)
    assert (result.status, result.message) == ("skipped", "no provider makes Database resources here")


def test_a_renamed_resource_reaches_its_provider_with_the_request_it_had_under_its_former_name() -> None:
    handed: list[tuple[str | None, str | None]] = []

    class Renaming(Recording):
        def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None) -> Result:
            handed.append((desired.identity if desired else None, previous.identity if previous else None))
            return super().apply(desired, target, previous)

    renamed = Change("rename", "Service", "checkout-v2", "payments", "catalog/checkout.yaml", 2,
                     previous_name="checkout")
    before = {"Service/checkout": resource("Service", "checkout")}
    after = {"Service/checkout-v2": resource("Service", "checkout-v2")}

    apply_plan(plan_of(renamed), before, after, [Renaming(("Service",))], TARGET)

    assert handed == [("Service/checkout-v2", "Service/checkout")]


def test_a_record_survives_its_note_and_ignores_lines_that_are_not_paveds() -> None:
    record = ApplyRecord("abc", None, "2026-11-28T10:00:00+00:00", "d1", (Result("Team/x", "applied", "ok"),),
                         pull_request=7, requested_by="carol", merged_by="alice", approved_by=("bob",),
                         actions={"Team/x": "create"})
    note = "a human wrote this\n" + record.to_json() + "\n"
    [read] = read_records(note)
    assert (read.pull_request, read.approved_by, read.results[0].status) == (7, ("bob",), "applied")
    assert read.ok


def test_the_audit_trail_says_who_asked_who_approved_and_when() -> None:
    record = ApplyRecord("abc123", None, "2026-11-28T10:00:00+00:00", "d1",
                         (Result("Service/search", "applied", "created"), Result("Team/x", "applied")),
                         pull_request=7, requested_by="carol", merged_by="alice", approved_by=("bob",),
                         actions={"Service/search": "create"})
    entries = trail({"abc123": record.to_json()}, {"abc123": ("Carol <c@x>", "2026-11-28", "Add search")},
                    "service/search")
    assert [e.resource for e in entries] == ["Service/search"]
    text = as_text(entries)
    assert "Service/search  create: applied" in text
    assert "PR #7 by carol, approved by bob, merged by alice" in text


def test_a_record_says_what_triggered_it_and_older_records_read_as_merges() -> None:
    healed = ApplyRecord("abc", "abb", "2026-11-28T10:00:00+00:00", "", (Result("Team/x", "applied"),),
                         actions={"Team/x": "heal"}, trigger="heal")
    older = '{"paved": 1, "revision": "abc", "previous": null, "applied_at": "2026-11-27T10:00:00+00:00", ' \
            '"plan_digest": "d1", "results": [], "approved_by": [], "actions": {}, "a_later_field": 1}'
    # Oldest first, whatever the order of the lines (a note merged from two writers has them sorted as text).
    assert [r.trigger for r in read_records(healed.to_json() + "\n" + older)] == ["merge", "heal"]
