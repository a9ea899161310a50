"""Approval rules: guarded tiers need their owning team's approving review."""

from __future__ import annotations

from bot.approvals import approvals_in_force, requirements, waiting_message
from bot.forge import Review
from bot.model import Change

SERVICE = Change("update", "Service", "checkout", "payments", "catalog/services/checkout.yaml", 3)
DATABASE = Change("create", "Database", "checkout-db", "payments", "catalog/services/checkout.yaml", 20)
SANDBOX = Change("create", "Service", "toy", "growth", "catalog/services/toy.yaml", 3)
TIERS = {"Service/checkout": "production", "Database/checkout-db": "production", "Service/toy": "experimental"}
TEAMS = {"payments": ["alice", "bob"], "growth": ["carol"]}


def test_a_production_change_needs_its_owning_team() -> None:
    [needed] = requirements([SERVICE, DATABASE, SANDBOX], TIERS, TEAMS, [], author="carol")
    assert needed.team == "payments"
    assert needed.resources == ("Service/checkout", "Database/checkout-db")
    assert needed.approvers == ("alice", "bob")
    assert not needed.satisfied


def test_an_experimental_change_needs_no_approval() -> None:
    assert requirements([SANDBOX], TIERS, TEAMS, [], author="carol") == []


def test_an_approval_from_a_team_member_satisfies_it() -> None:
    [needed] = requirements([SERVICE], TIERS, TEAMS, [Review("bob", "APPROVED")], author="carol")
    assert needed.satisfied and needed.approved_by == ("bob",)


def test_an_approval_from_outside_the_team_does_not_count() -> None:
    [needed] = requirements([SERVICE], TIERS, TEAMS, [Review("carol", "APPROVED")], author="dave")
    assert not needed.satisfied


def test_the_authors_own_approval_does_not_count() -> None:
    [needed] = requirements([SERVICE], TIERS, TEAMS, [Review("alice", "APPROVED")], author="alice")
    assert not needed.satisfied


def test_changes_requested_after_an_approval_withdraws_it() -> None:
    reviews = [Review("bob", "APPROVED"), Review("bob", "COMMENTED"), Review("bob", "CHANGES_REQUESTED")]
    assert approvals_in_force(reviews) == set()
    assert approvals_in_force([*reviews, Review("bob", "APPROVED")]) == {"bob"}


def test_the_waiting_message_names_every_team() -> None:
    a, b = requirements([SERVICE, Change("update", "Service", "ledger", "data", "x.yaml", 1)],
                        {**TIERS, "Service/ledger": "critical"}, TEAMS, [], author="zoe")
    assert waiting_message([a, b]) == "waiting for approval from team data and team payments"
