"""Approval rules: the base branch names who approves; the pull request only proposes."""

from __future__ import annotations

from typing import Any

from bot.adapters.repo import FolderTree
from bot.approvals import PLATFORM_OWNERS, Authority, approvals_in_force, requirements, waiting_message
from bot.forge import Review
from bot.model import Change, Resource, RuleChange
from bot.rules import load_rules
from tests.conftest import PROJECT

HEAD = "a" * 40


def resource(kind: str, name: str, owner: str, **spec: Any) -> Resource:
    return Resource(kind, name, owner, f"catalog/{name}.yaml", 0, 1,
                    {"kind": kind, "metadata": {"name": name, "owner": owner}, "spec": spec})


CHECKOUT = resource("Service", "checkout", "payments", tier="production")
TOY = resource("Service", "toy", "growth", tier="experimental")
PAYMENTS = resource("Team", "payments", "payments", members=["alice", "bob"])
GROWTH = resource("Team", "growth", "growth", members=["gina", "hugo"])
# Which kind is a team, and what each kind belongs to, as Paved's bundled kind schemas describe them.
KINDS = load_rules(FolderTree(PROJECT)).described
BASE = Authority(
    resources={r.identity: r for r in (CHECKOUT, TOY, PAYMENTS, GROWTH)},
    tiers={"Service/checkout": "production", "Service/toy": "experimental"},
    people={"payments": ("alice", "bob"), "growth": ("gina", "hugo"), "platform": ("maya", "oskar")},
    platform_owners={"team platform": ("maya", "oskar")}, kinds=KINDS)


def change(action: str, r: Resource, tier: str | None = None) -> Change:
    return Change(action, r.kind, r.name, r.owner, r.path, 1, tier=tier)  # type: ignore[arg-type]


def approved(*logins: str, on: str = HEAD) -> list[Review]:
    return [Review(login, "APPROVED", on) for login in logins]


def needs(changes: list[Change], head: list[Resource], reviews: list[Review] = (), author: str = "mallory",  # type: ignore[assignment]
          rule_changes: tuple[RuleChange, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Each required team, with who approved it (empty: still waiting)."""
    found = requirements(changes, {r.identity: r for r in head}, BASE, reviews, author, HEAD,
                         rule_changes=rule_changes)
    return {r.team: r.approved_by for r in found}


def test_a_production_change_needs_its_owning_team() -> None:
    edited = resource("Service", "checkout", "payments", tier="production", lifecycle="production")
    assert needs([change("update", edited, "production")], [edited]) == {"payments": ()}


def test_an_experimental_change_needs_no_approval() -> None:
    assert needs([change("update", TOY, "experimental")], [TOY]) == {}


def test_lowering_a_tier_does_not_lower_the_bar() -> None:
    lowered = resource("Service", "checkout", "payments", tier="experimental")
    assert needs([change("update", lowered, "experimental")], [lowered]) == {"payments": ()}


def test_a_grant_on_another_teams_service_needs_that_team_and_the_requesters() -> None:
    grant = resource("Access", "growth-maintains-checkout", "growth", service="checkout", team="growth",
                     permission="maintain")
    assert needs([change("create", grant, "production")], [grant], approved("hugo")) == {
        "growth": ("hugo",), "payments": ()}


def test_a_request_cannot_name_its_own_approvers_by_changing_the_owner() -> None:
    taken = resource("Service", "checkout", "growth", tier="production")
    assert needs([change("update", taken, "production")], [taken], approved("gina")) == {
        "growth": ("gina",), "payments": ()}


def test_people_come_from_the_base_branch_not_from_the_pull_request() -> None:
    joined = resource("Team", "payments", "payments", members=["alice", "bob", "mallory"])
    # mallory adds herself to payments in the pull request; only payments as main has it may approve
    assert needs([change("update", joined)], [joined], approved("mallory"), author="mallory") == {"payments": ()}
    assert needs([change("update", joined)], [joined], approved("bob"), author="mallory") == {"payments": ("bob",)}


def test_every_team_change_needs_approval_whatever_the_tiers() -> None:
    renamed = resource("Team", "growth", "growth", members=["gina", "hugo"], displayName="Growth!")
    assert needs([change("update", renamed)], [renamed]) == {"growth": ()}


def test_a_new_team_is_approved_by_the_platform_owners_not_by_its_own_people() -> None:
    new = resource("Team", "shadow", "shadow", members=["mallory", "eve"], maintainers=["mallory", "eve"])
    assert needs([change("create", new)], [new], approved("eve")) == {PLATFORM_OWNERS: ()}
    assert needs([change("create", new)], [new], approved("maya")) == {PLATFORM_OWNERS: ("maya",)}


def test_a_rule_change_is_a_platform_change() -> None:
    rules = (RuleChange("templates/fastapi-service/hooks/pre_gen_project.py", "modified"),)
    assert needs([], [], rule_changes=rules) == {PLATFORM_OWNERS: ()}
    assert needs([], [], approved("oskar"), rule_changes=rules) == {PLATFORM_OWNERS: ("oskar",)}


def test_without_platform_owners_nobody_can_approve_a_platform_change() -> None:
    rules = (RuleChange("paved.yaml", "modified"),)
    [needed] = requirements([], {}, Authority(), approved("alice"), "mallory", HEAD, rule_changes=rules)
    assert needed.approvers == () and not needed.satisfied


def test_an_approval_counts_only_for_the_head_it_was_given_on() -> None:
    edited = resource("Service", "checkout", "payments", tier="critical")
    assert needs([change("update", edited, "critical")], [edited], approved("bob", on="b" * 40)) == {"payments": ()}


def test_the_authors_own_approval_does_not_count() -> None:
    edited = resource("Service", "checkout", "payments", tier="critical")
    assert needs([change("update", edited, "critical")], [edited], approved("alice"), author="alice") == {
        "payments": ()}


def test_changes_requested_after_an_approval_withdraws_it() -> None:
    reviews = [Review("bob", "APPROVED", HEAD), Review("bob", "COMMENTED", HEAD),
               Review("bob", "CHANGES_REQUESTED", HEAD)]
    assert approvals_in_force(reviews, HEAD) == set()
    assert approvals_in_force([*reviews, Review("bob", "APPROVED", HEAD)], HEAD) == {"bob"}


def test_the_waiting_message_names_every_team_and_the_platform_owners() -> None:
    edited = resource("Service", "checkout", "payments", tier="critical")
    pending = requirements([change("update", edited, "critical")], {edited.identity: edited}, BASE, [], "zoe", HEAD,
                           rule_changes=(RuleChange("paved.yaml", "modified"),))
    assert waiting_message(pending) == "waiting for approval from team payments and platform owners"
