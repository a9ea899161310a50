"""From two revisions of the platform repo to a `Plan`; and validation of one revision.

The rules come from the base revision. Work follows what changed: the head's catalogue state is
derived from the base's (see `catalogue.py`), and only resources in changed files are compared.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.catalogue import (
    Catalogue,
    CatalogueIndex,
    Judging,
    Scope,
    file_result,
    first_judgement,
    judge,
    overlay,
    stored_findings,
    tree_key,
)
from bot.errors import ConfigurationError
from bot.golden_paths import answers_changed, following
from bot.kinds import value_at
from bot.model import (
    Change,
    FieldChange,
    Finding,
    Keeping,
    Plan,
    Resource,
    RuleChange,
    TeamCost,
    Tree,
    Upgrade,
    UpgradeHeld,
    shown_path,
)
from bot.rules import (
    KINDS_DIR,
    POLICIES_DIR,
    PRICES,
    STANDARDS_DIR,
    TEMPLATES_DIR,
    Rules,
    load_rules,
    platform_files,
    rules_digest,
)
from bot.yamlio import load


@dataclass(slots=True)
class Validation:
    """All findings about one revision, and how much was judged to find them."""

    findings: list[Finding]
    files_checked: int
    resources: int
    rules: Rules | None  # None when the judgement was found stored, and the rules were not read

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def validate_tree(tree: Tree, *, store: CatalogueIndex, rules: Rules | None = None,
                  judging: Judging | None = None) -> Validation:
    """Judge every request file at one revision, by that revision's rules unless others are given, each
    file through `judging` (in this process by default).

    A revision the index holds, judged by its own rule files as they are, is answered from there without
    reading those rules: they were read and checked when it was judged (the digest names their bytes)."""
    key = None
    if rules is None:
        digest = rules_digest(tree)
        if not first_judgement(tree, digest, store):
            key = tree_key(tree, judging)
            known = store.find_state(digest, key[0])
            if known is not None:
                findings = sorted(stored_findings(store, Scope(known.id)), key=Finding.sort_key)
                return Validation(findings, known.files, known.resources, None)
    rules = rules or load_rules(tree)
    catalogue = judge(tree, rules, store, judging, key)
    return Validation(catalogue.findings(), catalogue.file_count, catalogue.state.resources, rules)


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


def _order(changes: list[Change], rules: Rules) -> list[Change]:
    """Dependencies first (`Change.depends_on`), ties by kind (as the rules order kinds) then identity."""
    by_id = {c.identity: c for c in changes}
    needs = {c.identity: {d for d in c.depends_on if d in by_id and d != c.identity} for c in changes}
    waiting = {i: len(n) for i, n in needs.items()}
    users: dict[str, list[str]] = {i: [] for i in by_id}
    for identity, deps in needs.items():
        for dep in deps:
            users[dep].append(identity)

    def rank(identity: str) -> tuple[int, str]:
        return (rules.described.order(by_id[identity].kind), identity)

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


def _change(action: Any, resource: Resource, rules: Rules, depends_on: list[str], *,
            before: Resource | None = None) -> Change:
    return Change(
        action=action, kind=resource.kind, name=resource.name, owner=resource.owner, path=resource.path,
        line=resource.line,
        fields=_fields(action, before, resource),
        previous_name=before.name if before is not None and before.name != resource.name else None,
        previous_path=before.path if before is not None and before.path != resource.path else None,
        monthly_cost_before=rules.monthly_cost(before.kind, before.data) if before else 0.0,
        monthly_cost_after=rules.monthly_cost(resource.kind, resource.data) if action != "delete" else 0.0,
        depends_on=tuple(dict.fromkeys(depends_on)),
    )


def _without_name(data: dict[str, Any]) -> dict[str, Any]:
    """A request's content apart from its name (and its owner, when it owns itself, as a Team does)."""
    metadata = dict(data.get("metadata") or {})
    name = metadata.pop("name", None)
    if metadata.get("owner") == name:
        metadata["owner"] = None
    return {**data, "metadata": metadata}


@dataclass(frozen=True, slots=True)
class PlannedRequests:
    """A plan with the full requests it is about: `before` at the base, `after` at the head, by identity."""

    plan: Plan
    before: dict[str, Resource]
    after: dict[str, Resource]
    rules: Rules | None = None


def make_plan(base: Tree, head: Tree, *, store: CatalogueIndex, rules: Rules | None = None,
              judging: Judging | None = None) -> Plan:
    """What merging `head` into `base` would do, judged by `base`'s rules (or by `rules`, when the
    caller compares from a merge base but judges by the target branch as it is now); the base, when it
    is not stored yet, is judged through `judging` (in this process by default)."""
    return plan_requests(base, head, store=store, rules=rules, judging=judging).plan


def plan_requests(base: Tree, head: Tree, *, store: CatalogueIndex, rules: Rules | None = None,
                  judging: Judging | None = None) -> PlannedRequests:
    """`make_plan`, keeping the requests each change is about (applying needs them)."""
    rules = rules or load_rules(base)
    before = judge(base, rules, store, judging)
    after = overlay(before, head)
    try:
        return _plan(before, after)
    finally:
        after.close()


def _plan(before: Catalogue, after: Catalogue) -> PlannedRequests:
    rules = before.rules
    head_findings = after.findings()
    touched: set[str] = set()
    for path, (old_blob, _) in after.changed.items():
        if old_blob is not None:
            touched.update(r.identity for r in file_result(before.index, before.tree, rules, path, old_blob).resources)
    for result in after.added.values():
        touched.update(r.identity for r in result.resources)
    before_all = before.resources(touched)
    after_all = after.resources(touched)
    broken = after.broken_paths()

    creates: list[Resource] = []
    deletes: list[Resource] = []
    updates: list[tuple[Resource, Resource]] = []
    for identity in sorted(touched):
        old, new = before_all.get(identity), after_all.get(identity)
        if old is not None and new is not None:
            if old.data != new.data:
                updates.append((old, new))
        elif new is not None:
            creates.append(new)
        elif old is not None and old.path not in broken:
            # A file that no longer parses is a finding, not a reason to delete what it held.
            deletes.append(old)

    # A delete and a create of the same kind with the same content but the name is a rename.
    renames: list[tuple[Resource, Resource]] = []
    for removed in list(deletes):
        twin = next((c for c in creates if c.kind == removed.kind
                     and _without_name(c.data) == _without_name(removed.data)), None)
        if twin is not None:
            creates.remove(twin)
            deletes.remove(removed)
            renames.append((removed, twin))

    head_needs = after.references_from([n.identity for _, n in updates + renames] + [c.identity for c in creates])
    # What follows the resources of its parent (a database's credentials go to its service's
    # environments) applies after them, so they must exist first.
    kinds = rules.described
    followers: dict[str, list[tuple[Resource, str]]] = {}
    for resource in creates + [n for _, n in updates + renames]:
        described = kinds[resource.kind]
        if described.follows is not None and described.parent is not None:
            service = str(value_at(resource.data, described.parent.pointer))
            followers.setdefault(described.follows.kind, []).append((resource, service))
    for followed, waiting in followers.items():
        serving = after.serving({service for _, service in waiting}, followed)
        for resource, service in waiting:
            head_needs[resource.identity] += [e.identity for e in serving.get(service, [])]
    base_needs = before.references_from([d.identity for d in deletes])
    changes = [_change("update", n, rules, head_needs[n.identity], before=o) for o, n in updates]
    changes += [_change("rename", n, rules, head_needs[n.identity], before=o) for o, n in renames]
    changes += [_change("create", c, rules, head_needs[c.identity]) for c in creates]
    deletions = [_change("delete", d, rules, base_needs[d.identity], before=d) for d in deletes]
    tiers = {**before.tiers(d.identity for d in deletions), **after.tiers(c.identity for c in changes)}
    changes = [replace(c, tier=tiers.get(c.identity)) for c in changes]
    deletions = [replace(d, tier=tiers.get(d.identity)) for d in deletions]

    # Teams whose spending the change moves (a team over budget regardless of the change is a finding).
    teams = {r.owner for r in list(before_all.values()) + list(after_all.values())}
    spent_before, spent_after = before.team_costs(teams), after.team_costs(teams)
    budgets = {identity.split("/", 1)[1]: entries[0].budget
               for identity, entries in after.definitions(f"{kinds.team}/{t}" for t in teams).items()}
    costs = []
    for team in sorted(set(spent_before) | set(spent_after)):
        old_total, new_total = spent_before.get(team, 0.0), spent_after.get(team, 0.0)
        budget = budgets.get(team)
        if old_total != new_total or (budget is not None and new_total > budget):
            costs.append(TeamCost(team, old_total, new_total, budget))

    base_rules, head_rules = platform_files(before.tree), platform_files(after.tree)
    # A name with control characters is shown escaped: the raw name never reaches a comment or terminal.
    rule_changes = [RuleChange(shown_path(p), "added" if p not in base_rules else "deleted" if p not in head_rules
                               else "modified")
                    for p in sorted(set(base_rules) | set(head_rules)) if base_rules.get(p) != head_rules.get(p)]
    # A service that gains or loses an environment must have its databases' credentials follow: what
    # follows a kind applies again when a resource of that kind belonging to the same parent moves.
    refresh_set: set[str] = set()
    moved = [*creates, *deletes, *(n for _, n in updates + renames), *(o for o, _ in updates + renames)]
    for kind in {r.kind for r in moved}:
        belongs = kinds[kind].parent
        if belongs is None:
            continue
        parents = {value_at(r.data, belongs.pointer) for r in moved if r.kind == kind}
        for follower in kinds.followers_of(kind):
            serving = after.serving({str(p) for p in parents if p}, follower)
            refresh_set |= {e.identity for entries in serving.values() for e in entries}
    refresh = sorted(refresh_set - touched)
    refreshed = after.resources(refresh)
    after_all.update(refreshed)
    services = kinds.parents_of_followers((r.kind, r.data) for r in [*after_all.values(), *before_all.values()])
    handed = {**before.followed(services), **after.followed(services)}
    head_findings += _protected_deletions(deletes, before.tree, rules)
    upgrades = _upgrades(after, rule_changes, updates + renames, {c.identity for c in creates})
    # Applying offers each of them its upgrade, from its request as merged.
    after_all.update(after.resources(u.identity for u in upgrades if u.identity not in after_all))

    plan = Plan(
        base=before.tree.label, head=after.tree.label, changes=tuple(_order(changes, rules)),
        deletions=tuple(reversed(_order(deletions, rules))),
        unchanged=before.state.resources - len(updates) - len(renames) - len(deletes), costs=tuple(costs),
        findings=tuple(sorted(head_findings, key=Finding.sort_key)), rule_changes=tuple(rule_changes),
        files_checked=after.file_count,
        followed=tuple(sorted(handed.items())), refresh=tuple(refresh),
        platform_impact=platform_impact(rule_changes, before, upgrades), upgrades=upgrades,
    )
    return PlannedRequests(plan, before_all, after_all, rules)


def _upgrades(after: Catalogue, rule_changes: list[RuleChange], changed: list[tuple[Resource, Resource]],
              created: set[str]) -> tuple[Upgrade, ...]:
    """The scaffolded projects whose golden path moves: every follower of a template the change touches
    (read at the head, only when a template changes), and every request whose change alters its
    template's answers. A project created by this change is rendered from the head already."""
    kinds = after.rules.described
    kind = kinds.with_template()
    if kind is None:
        return ()
    described = kinds[kind]
    found: dict[str, Upgrade] = {}
    for old, new in changed:
        follows = following(new, described) if new.kind == kind else None
        if follows is not None and answers_changed(old, new, described):
            found[new.identity] = Upgrade(new.identity, follows.template, "answers",
                                          "" if follows.takes_upgrades else "manual")
    templates = {c.path[len(TEMPLATES_DIR):].split("/", 1)[0] for c in rule_changes
                 if c.path.startswith(TEMPLATES_DIR)}
    if templates:
        everyone = after.resources(f"{kind}/{n}" for n in after.names_of(kind))
        for identity, resource in sorted(everyone.items()):
            follows = following(resource, described)
            if follows is None or follows.template not in templates or identity in created or identity in found:
                continue
            held: UpgradeHeld = "manual" if not follows.takes_upgrades else "pinned" if follows.pin else ""
            found[identity] = Upgrade(identity, follows.template, "template", held)
    return tuple(found[i] for i in sorted(found))


def proposed_rules(plan: Plan, target: Tree, head: Tree, rules: Rules, store: CatalogueIndex) -> Plan:
    """`plan`, with what the rules a pull request proposes would do to the catalogue of `target` (the base
    branch as it is now): broken rules are an error (every plan after the merge would fail), and requests
    that pass today but would fail under them are counted in the platform change's impact."""
    if not any(c.path.startswith(("schemas/", TEMPLATES_DIR)) for c in plan.rule_changes):
        return plan
    try:
        proposed = load_rules(head)
    except ConfigurationError as exc:
        broken = Finding(path=exc.path or "schemas/", line=exc.line, column=0, pointer="", severity="error",
                         rule="rules.broken", message=f"the rules this pull request proposes cannot be used: "
                                                      f"{exc.message}",
                         hint="After the merge every plan would fail; fix the rule file in this pull request.")
        return replace(plan, findings=tuple(sorted((*plan.findings, broken), key=Finding.sort_key)))
    if proposed.digest == rules.digest:
        return plan
    today = {(f.path, f.rule, f.message) for f in judge(target, rules, store).findings() if f.severity == "error"}
    failing = [f for f in judge(target, proposed, store).findings()
               if f.severity == "error" and (f.path, f.rule, f.message) not in today]
    if not failing:
        sentence = f"every request on {target.label} still passes under the proposed rules"
    else:
        first = failing[0]
        files = len({f.path for f in failing})
        sentence = (f"under the proposed rules, {len(failing)} error{'s' if len(failing) != 1 else ''} in {files} "
                    f"request file{'s that pass' if files != 1 else ' that passes'} today (first: {first.location} "
                    f"{first.message}): they must be fixed before their next change")
    return replace(plan, platform_impact=(*plan.platform_impact, sentence))


def platform_impact(rule_changes: list[RuleChange], before: Catalogue,
                    upgrades: tuple[Upgrade, ...] = ()) -> tuple[str, ...]:
    """What a platform change affects, in one sentence per area, counted in the catalogue it applies to."""
    if not rule_changes:
        return ()
    paths = [c.path for c in rule_changes]
    found: list[str] = []
    templates = sorted({p[len(TEMPLATES_DIR):].split("/", 1)[0] for p in paths if p.startswith(TEMPLATES_DIR)})
    for name in templates:
        moved = [u for u in upgrades if u.template == name and u.reason == "template"]
        found.append(template_impact(name, moved))
    kinds = {v: k for k, v in before.rules.kind_paths.items()}
    for path in paths:
        if path.startswith(KINDS_DIR):
            kind = kinds.get(path)
            count = len(before.names_of(kind)) if kind else 0
            found.append(f"schema {path} changed: it judges {f'the {count} {kind} requests' if kind else 'requests'}"
                         " from now on")
        elif path.startswith(POLICIES_DIR) and path.endswith(".json") and path.count("/") == 2:
            found.append(f"guardrail {path} changed: it judges every request it applies to from now on")
        elif path.startswith(STANDARDS_DIR) and path.endswith(".json") and path.count("/") == 2:
            found.append(f"standard {path} changed: it scores every resource it applies to, as it exists, from the "
                         "next reconcile on")
        elif path == PRICES:
            found.append("prices changed: every plan's costs and every team's budget are counted with them")
        elif path == "paved.yaml":
            found.append("paved.yaml changed: Paved's settings for this platform repo (approvals, commands, "
                         "providers)")
        elif path.startswith(".github/") or path.endswith("CODEOWNERS"):
            found.append(f"{path} changed: how this repository's workflows run or who reviews")
    return tuple(dict.fromkeys(found))


def template_impact(name: str, moved: list[Upgrade]) -> str:
    """"template NAME changed: N services will get an upgrade pull request", with those held back."""
    taking = sum(1 for u in moved if not u.held)
    held = [f"{count} {why}" for why, count in (("opted out", sum(1 for u in moved if u.held == "manual")),
                                                 ("pinned", sum(1 for u in moved if u.held == "pinned"))) if count]
    sentence = (f"template {name} changed: {taking} service{'s' if taking != 1 else ''} will get an upgrade pull "
                "request")
    return sentence + (f" ({', '.join(held)})" if held else "")


def _protected_deletions(deletes: list[Resource], base: Tree, rules: Rules) -> list[Finding]:
    """Removing a request whose resource is still protected (a database's `deletionProtection`) is refused,
    so no data goes by accident."""
    found = []
    for d in deletes:
        pointer = rules.describe(d.kind).deletion_protection
        if pointer is None or value_at(d.data, pointer) is False:
            continue
        line, column = d.line, 1
        documents = load(d.path, base.read(d.path)).documents
        if d.document < len(documents):  # point at the flag itself, as it stands at the base
            line, column = documents[d.document].position(pointer)
        field = pointer.rsplit("/", 1)[-1]
        found.append(Finding(
            path=d.path, line=line, column=column, pointer=pointer, document=d.document,
            severity="error", rule="catalog.deletion-protection",
            message=f"{d.identity} still has {field}: true, so its request cannot be removed",
            hint=f"Set `{pointer[1:].replace('/', '.')}: false` in a separate pull request first, merge it, then "
                 f"remove the file; the {d.kind.lower()} is dumped to the backups before it is dropped."))
    return found


LOST_DATA_RULE = "paved.lasting-data"


def refuse_lost_data(planned: PlannedRequests, head: Tree, losing: Mapping[str, Keeping]) -> PlannedRequests:
    """`planned` with an error on every request it creates or changes whose kind keeps data (`keepsData`)
    and whose provider's settings name no lasting home for it (`losing`, by kind).

    Where Paved runs in a job whose machine is thrown away afterwards (GitHub Actions), such a resource
    (a database as a SQLite file in the data folder) would be made, recorded as applied and lost with
    the runner, so its request is refused before merge instead. Which kinds would lose their data is
    the caller's to say (from `paved.yaml` and the providers; callers that keep their data folder never
    call this). The finding points at the `Keeping.pointer` of the request at the head.
    """
    keeping = {d.kind for d in planned.rules.described if d.keeps_data} if planned.rules is not None else set()
    wanted = [c for c in planned.plan.changes if c.kind in keeping & set(losing) and c.action != "delete"]
    if not wanted:
        return planned
    findings = []
    for change in wanted:
        resource = planned.after.get(change.identity)
        home = losing[change.kind]
        line, column = (change.line, 0)
        if resource is not None:
            try:
                documents = load(resource.path, head.read(resource.path)).documents
            except KeyError:
                documents = []
            document = next((d for d in documents if d.index == resource.document), None)
            if document is not None:
                line, column = document.position(home.pointer)
        findings.append(Finding(
            change.path, line, column, home.pointer,
            f"{change.kind} {change.name} needs {home.needs}: paved.yaml names none, and here its data would be "
            f"kept on a machine that is thrown away when the job ends",
            "error", LOST_DATA_RULE, hint=home.hint, document=resource.document if resource is not None else 0))
    merged = tuple(sorted((*planned.plan.findings, *findings), key=Finding.sort_key))
    return replace(planned, plan=replace(planned.plan, findings=merged))
