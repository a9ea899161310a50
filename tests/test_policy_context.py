"""Which policies read what a request belongs to (`context`), and what follows: a request whose policies
never read it is judged with its file, once, whatever its service is or becomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import catalogue
from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import FolderTree
from bot.catalogue import ANY_CONTEXT, judge, judged_file, overlay
from bot.model import Finding
from bot.rules import Rules, load_rules, reads_context
from bot.validate import check_file, finding_from_tuple
from bot.yamlio import load
from tests.conftest import DATABASE, PROJECT, SERVICE, PlatformRepo

POLICIES = sorted((PROJECT / "schemas" / "policies").glob("*.json"))
CASES = PROJECT / "schemas" / "policies" / "tests"

# Contexts a request could be judged in, including one that would trip any policy that looked at it.
CONTEXTS: list[dict[str, Any]] = [
    {},
    {"service": {"name": "payments-api", "tier": "critical", "lifecycle": "production"}},
    {"service": {"name": "payments-api", "tier": "experimental", "lifecycle": "deprecated"}},
    {"service": {"name": "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "tier": None, "lifecycle": None}},
]

ENVIRONMENT = """
apiVersion: paved/v1
kind: Environment
metadata:
  name: {service}-production
  owner: payments
  description: Production deployments of {service}.
spec:
  service: {service}
  name: production
  deploymentBranches: [main]
"""


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(FolderTree(PROJECT))


def test_only_the_database_policies_read_what_the_request_belongs_to(rules: Rules) -> None:
    reading = {p.id for p in rules.policies if reads_context(p.rule)}
    assert reading == {"database-backups-in-production", "database-deletion-protection",
                       "large-database-needs-critical-service"}
    assert [k for k in rules.kinds if rules.reads_context(k)] == ["Database"]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_a_policy_judges_its_cases_alike_in_every_context_exactly_when_it_does_not_read_it(
        path: Path, rules: Rules) -> None:
    policy = next(p for p in rules.policies if p.id == path.stem)
    validator = rules.policy_validator(policy)
    outcomes: dict[str, set[bool]] = {}
    for case in sorted((CASES / policy.id).glob("*/*.yaml")):
        for number, document in enumerate(load(str(case), case.read_bytes()).documents):
            if document.data.get("kind") in policy.kinds:
                outcomes[f"{case.name}#{number}"] = {validator.is_valid({**document.data, "context": c})
                                                     for c in CONTEXTS}
    assert len(outcomes) >= 2  # a passing and a failing case at least
    told_apart = [case for case, seen in outcomes.items() if len(seen) > 1]
    assert bool(told_apart) == reads_context(policy.rule), told_apart


@pytest.mark.parametrize("rule", [
    {"const": {"kind": "Database"}},
    {"enum": [{}]},
    {"properties": {"context": {"required": ["service"]}}},
    {"properties": {"context": False}},
    {"additionalProperties": {"type": "string"}},
    {"properties": {"spec": True}, "additionalProperties": False},
    {"patternProperties": {"^con": {"type": "null"}}},
    {"unevaluatedProperties": False},
    {"$ref": "https://example.com/reads-context.json"},
    {"$ref": "#reads", "$defs": {"x": {"$anchor": "reads", "properties": {"context": False}}}},
    {"$ref": "#/$defs/inner", "$defs": {"inner": {"properties": {"context": {"const": {}}}}}},
    {"$ref": "#/$defs/missing"},
    # Inside a subschema with its own `$id`, `#/$defs/b` is that subschema's, which reads the context.
    {"$ref": "#/$defs/a", "$defs": {
        "a": {"$id": "urn:a", "$ref": "#/$defs/b", "$defs": {"b": {"properties": {"context": False}}}},
        "b": True}},
    {"allOf": [{"not": {"properties": {"context": {"required": ["service"]}}}}]},
    {"anyOf": [True, {"properties": {"context": {"type": "null"}}}]},
    {"if": {"properties": {"context": {"required": ["service"]}}}, "then": True},
    {"dependentSchemas": {"spec": {"properties": {"context": {"maxProperties": 0}}}}},
    {"$dynamicRef": "#meta"},
    {"format": "email"},
], ids=repr)
def test_a_rule_that_may_look_at_the_context_reads_it(rule: dict[str, Any]) -> None:
    assert reads_context(rule)


@pytest.mark.parametrize("rule", [
    True,
    {},
    {"type": "object", "required": ["spec", "context"], "minProperties": 3, "propertyNames": {"minLength": 1}},
    {"properties": {"spec": {"$ref": "#"}}},  # the whole rule, applied to `spec` alone
    {"properties": {"context": True}, "additionalProperties": {"type": "object"}},
    {"properties": {"context": {"description": "anything"}}},
    {"$ref": "#/$defs/spec", "$defs": {"spec": {"required": ["spec"]}}},
    {"$ref": "#/$defs/loop", "$defs": {"loop": {"anyOf": [{"$ref": "#/$defs/loop"}, True]}}},
    {"if": {"required": ["spec"]}, "then": {"properties": {"spec": {"const": 1}}}, "else": False},
], ids=repr)
def test_a_rule_that_only_looks_elsewhere_does_not_read_the_context(rule: Any) -> None:
    assert not reads_context(rule)


def test_a_request_whose_policies_never_read_its_service_is_judged_with_its_file(rules: Rules) -> None:
    path = "catalog/services/payments-api.yaml"
    text = ENVIRONMENT.format(service="payments-api").replace("deploymentBranches: [main]\n", "")
    judged = judged_file(check_file(path, text.lstrip().encode(), "blob", rules), rules)
    assert judged.requests == {}  # nothing waits for the catalogue
    assert sorted(finding_from_tuple(f).rule or "" for f in judged.policies[0]) == [
        "production-environment-branches", "production-environment-reviewers"]


def test_a_request_whose_policies_read_its_service_waits_for_the_catalogue(rules: Rules) -> None:
    path = "catalog/databases/orders.yaml"
    text = DATABASE.format(name="orders", owner="payments", service="checkout", size="small")
    judged = judged_file(check_file(path, text.lstrip().encode(), "blob", rules), rules)
    assert judged.policies == {} and list(judged.requests) == [0]


def rules_at(found: list[Finding], path: str) -> list[str | None]:
    return sorted(f.rule for f in found if f.path == path)


def test_findings_that_hold_in_any_context_stay_when_the_service_changes(
        platform_repo: PlatformRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    environment, loose = "catalog/services/checkout-production.yaml", "catalog/services/loose.yaml"
    platform_repo.write(environment, ENVIRONMENT.format(service="checkout"))
    platform_repo.write(loose, DATABASE.format(name="loose-db", owner="payments", service="checkout",
                                               size="small").replace("deletionProtection: true",
                                                                     "deletionProtection: false"))
    tree = FolderTree(platform_repo.root)
    index = SQLiteCatalogueIndex()
    rules = load_rules(tree)
    first = judge(tree, rules, index)
    assert rules_at(first.findings(), environment) == ["production-environment-reviewers"]
    assert rules_at(first.findings(), loose) == ["database-deletion-protection"]
    contexts = {p.entry.kind: p.context for p in index.service_policies(first.scope, ["checkout"])}
    assert contexts == {"Environment": ANY_CONTEXT, "Database": "production|production"}

    # The service becomes experimental: its databases no longer need protection. The environment's
    # finding never depended on it: it is kept, and its request is not judged again.
    platform_repo.write("catalog/services/checkout.yaml",
                        SERVICE.format(name="checkout", owner="payments", tier="experimental")
                        + "---" + DATABASE.format(name="checkout-db", owner="payments", service="checkout",
                                                  size="small"))
    judged_again: list[str] = []
    judging = catalogue.request_policies

    def counted(rules: Rules, kind: str, *rest: Any) -> list[Finding]:
        judged_again.append(kind)
        return judging(rules, kind, *rest)

    monkeypatch.setattr(catalogue, "request_policies", counted)
    seen = overlay(first, tree).findings()
    changed = judge(tree, rules, index)
    assert "Environment" not in judged_again and "Database" in judged_again
    for found in (seen, changed.findings()):
        assert rules_at(found, environment) == ["production-environment-reviewers"]
        assert rules_at(found, loose) == []
    assert sorted(map(Finding.sort_key, seen)) == sorted(map(Finding.sort_key, changed.findings()))


@pytest.mark.parametrize("first_tier", ["experimental", None])
def test_a_catalogue_judged_from_scratch_judges_its_waiting_requests_by_their_services_first_definitions(
        platform_repo: PlatformRepo, first_tier: str | None) -> None:
    # The database's file comes before its service's in path order; with `first_tier`, a second definition
    # of the service comes before the first one (catalog/services/checkout.yaml), and counts instead.
    loose = "catalog/databases/loose.yaml"
    platform_repo.write(loose, DATABASE.format(name="loose-db", owner="payments", service="checkout", size="small")
                        .replace("deletionProtection: true", "deletionProtection: false"))
    if first_tier:
        platform_repo.write("catalog/services/a-checkout.yaml",
                            SERVICE.format(name="checkout", owner="payments", tier=first_tier))
    tree = FolderTree(platform_repo.root)
    rules = load_rules(tree)
    index = SQLiteCatalogueIndex()
    assert catalogue.first_judgement(tree, rules.digest, index)
    from_scratch = judge(tree, rules, index)
    by_listing = judge(tree, rules, SQLiteCatalogueIndex(), known_key=catalogue.tree_key(tree))
    assert from_scratch.findings() == by_listing.findings()
    contexts = {p.entry.identity: p.context for p in index.service_policies(from_scratch.scope, ["checkout"])}
    assert contexts == {"Database/loose-db": f"{first_tier or 'production'}|production",
                        "Database/checkout-db": f"{first_tier or 'production'}|production"}
    assert rules_at(from_scratch.findings(), loose) == ([] if first_tier else ["database-deletion-protection"])
    # Nothing is left for the index to find stale: every waiting request was judged from what was noted.
    assert list(index.stale_policies(from_scratch.state.id, rules.described.parents())) == []
