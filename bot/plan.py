"""From two revisions of the platform repo to a `Plan`; and validation of one revision.

The rules come from the base revision. Work is proportional to what changed: files whose blob is the
same at both revisions are judged once (and usually come from the cache), and only resources in
changed files are compared.
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from bot.catalog import Catalogue, check_catalogue, team_budget, team_costs
from bot.model import (
    Change,
    FieldChange,
    Finding,
    Plan,
    Resource,
    RuleChange,
    TeamCost,
    Tree,
    resource_kind_order,
)
from bot.rules import Rules, load_rules, rule_files
from bot.validate import CATALOG_DIR, FileResult, check_files, is_request_file

Cache = MutableMapping[str, Any]


@dataclass(slots=True)
class Validation:
    """All findings about one revision, and what was read to find them."""

    findings: list[Finding]
    files: list[FileResult]
    catalogue: Catalogue
    rules: Rules

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def _judge(tree: Tree, files: list[FileResult], rules: Rules, cache: Cache | None) -> tuple[Catalogue, list[Finding]]:
    catalogue = Catalogue.of(files)
    findings = [f for result in files for f in result.findings]
    findings += check_catalogue(catalogue, rules, tree.read_many, cache)
    findings.sort(key=Finding.sort_key)
    return catalogue, findings


def validate_tree(tree: Tree, *, rules: Rules | None = None, cache: Cache | None = None) -> Validation:
    """Judge every request file at one revision, by that revision's rules unless others are given."""
    rules = rules or load_rules(tree)
    files = check_files(tree, tree.files(CATALOG_DIR), rules, cache)
    catalogue, findings = _judge(tree, files, rules, cache)
    return Validation(findings, files, catalogue, rules)


def diff_fields(before: Any, after: Any, pointer: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON values; lists are compared as a whole, as people read them."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for key in list(before) + [k for k in after if k not in before]:
            child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in after:
                if isinstance(before[key], dict) and before[key]:
                    changes += diff_fields(before[key], {}, child)
                else:
                    changes.append(FieldChange(child, "remove", before=before[key]))
            elif key not in before:
                if isinstance(after[key], dict) and after[key]:
                    changes += diff_fields({}, after[key], child)
                else:
                    changes.append(FieldChange(child, "add", after=after[key]))
            else:
                changes += diff_fields(before[key], after[key], child)
        return changes
    if before == after and type(before) is type(after):
        return []
    return [FieldChange(pointer, "replace", before=before, after=after)]


def _order(changes: list[Change], catalogue: Catalogue) -> list[Change]:
    """Dependencies first (by `Catalogue.dependencies`), ties by kind then identity."""
    by_id = {c.identity: c for c in changes}
    needs = {c.identity: [d for d in c.depends_on if d in by_id and d != c.identity] for c in changes}
    waiting = {i: len(set(n)) for i, n in needs.items()}
    users: dict[str, list[str]] = {i: [] for i in by_id}
    for identity, deps in needs.items():
        for dep in set(deps):
            users[dep].append(identity)

    def rank(identity: str) -> tuple[int, str]:
        return (resource_kind_order(by_id[identity].kind), identity)

    ready = [rank(i) for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    ordered: list[Change] = []
    while ready:
        _, identity = heapq.heappop(ready)
        ordered.append(by_id[identity])
        for user in users[identity]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, rank(user))
    placed = {c.identity for c in ordered}
    # A cycle (already a finding) leaves some unplaced: keep them, in a stable order, after the rest.
    ordered += sorted((c for c in changes if c.identity not in placed), key=lambda c: rank(c.identity))
    return ordered


# Shown by the identity already, so a create does not list them again.
_IDENTITY_FIELDS = frozenset({"/apiVersion", "/kind", "/metadata/name"})


def _fields(action: str, before: Resource | None, after: Resource) -> tuple[FieldChange, ...]:
    if action == "delete":
        return ()
    if action == "create":
        return tuple(f for f in diff_fields({}, after.data) if f.pointer not in _IDENTITY_FIELDS)
    return tuple(diff_fields(before.data if before else {}, after.data))


def _change(action: Any, resource: Resource, rules: Rules, catalogue: Catalogue, *,
            before: Resource | None = None) -> Change:
    return Change(
        action=action, kind=resource.kind, name=resource.name, owner=resource.owner, path=resource.path,
        line=resource.line,
        fields=_fields(action, before, resource),
        previous_name=before.name if before is not None and before.name != resource.name else None,
        previous_path=before.path if before is not None and before.path != resource.path else None,
        monthly_cost_before=rules.monthly_cost(before.kind, before.data) if before else 0.0,
        monthly_cost_after=rules.monthly_cost(resource.kind, resource.data) if action != "delete" else 0.0,
        depends_on=tuple(catalogue.dependencies(resource)),
    )


def _without_name(data: dict[str, Any]) -> dict[str, Any]:
    """A request's content apart from its name (and its owner, when it owns itself, as a Team does)."""
    metadata = dict(data.get("metadata") or {})
    name = metadata.pop("name", None)
    if metadata.get("owner") == name:
        metadata["owner"] = None
    return {**data, "metadata": metadata}


def make_plan(base: Tree, head: Tree, *, cache: Cache | None = None) -> Plan:
    """What merging `head` into `base` would do, judged by `base`'s rules."""
    rules = load_rules(base)
    base_listing = {p: b for p, b in base.files(CATALOG_DIR).items() if is_request_file(p)}
    head_listing = {p: b for p, b in head.files(CATALOG_DIR).items() if is_request_file(p)}
    head_files = check_files(head, head_listing, rules, cache)
    same = {p for p, b in base_listing.items() if head_listing.get(p) == b}
    base_only = {p: b for p, b in base_listing.items() if p not in same}
    base_files = [f for f in head_files if f.path in same] + check_files(base, base_only, rules, cache)
    head_catalogue, findings = _judge(head, head_files, rules, cache)
    base_catalogue = Catalogue.of(base_files)

    changed = (set(base_listing) | set(head_listing)) - same
    broken = {f.path for f in head_files if f.broken}
    candidates: dict[str, None] = {}
    for result in base_files + head_files:
        if result.path in changed:
            for resource in result.resources:
                candidates[resource.identity] = None

    creates: list[Resource] = []
    deletes: list[Resource] = []
    changes: list[Change] = []
    for identity in candidates:
        before = base_catalogue.resources.get(identity)
        after = head_catalogue.resources.get(identity)
        if before is not None and after is not None:
            if before.data != after.data:
                changes.append(_change("update", after, rules, head_catalogue, before=before))
        elif after is not None:
            creates.append(after)
        elif before is not None and before.path not in broken:
            # A file that no longer parses is a finding, not a reason to delete what it held.
            deletes.append(before)

    # A delete and a create of the same kind with the same content but the name is a rename.
    for removed in list(deletes):
        twin = next((c for c in creates if c.kind == removed.kind
                     and _without_name(c.data) == _without_name(removed.data)), None)
        if twin is not None:
            creates.remove(twin)
            deletes.remove(removed)
            changes.append(_change("rename", twin, rules, head_catalogue, before=removed))
    changes += [_change("create", r, rules, head_catalogue) for r in creates]
    deletions = [_change("delete", r, rules, base_catalogue, before=r) for r in deletes]
    ordered = _order(changes, head_catalogue)
    ordered_deletions = list(reversed(_order(deletions, base_catalogue)))

    unchanged = len(head_catalogue.resources) - len(changes)
    before_costs = team_costs(base_catalogue, rules)
    after_costs = team_costs(head_catalogue, rules)
    teams = head_catalogue.named("Team")
    costs = []
    for team in sorted(set(before_costs) | set(after_costs)):
        spent_before, spent_after = before_costs.get(team, 0.0), after_costs.get(team, 0.0)
        budget = team_budget(teams[team]) if team in teams else None
        if spent_before != spent_after or (budget is not None and spent_after > budget):
            costs.append(TeamCost(team, spent_before, spent_after, budget))

    base_rules, head_rules = rule_files(base), rule_files(head)
    rule_changes = [RuleChange(p, "added" if p not in base_rules else "deleted" if p not in head_rules
                               else "modified")
                    for p in sorted(set(base_rules) | set(head_rules)) if base_rules.get(p) != head_rules.get(p)]
    return Plan(
        base=base.label, head=head.label, changes=tuple(ordered), deletions=tuple(ordered_deletions),
        unchanged=unchanged, costs=tuple(costs), findings=tuple(findings), rule_changes=tuple(rule_changes),
        files_checked=len(head_files),
    )
