"""The catalogue as a whole: what no single file can tell.

Identities are unique, owners are Teams, references resolve, `dependsOn` has no cycles, templates
exist and their parameters fit, and every team stays within its monthly budget. Guardrail policies run
here too, because a policy may look at the request's owning service (`context.service`).

Findings raised here may start without a line: `locate` fills positions in afterwards, parsing again
only the few files that have such findings when their parse was not kept.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.model import Finding, Resource, Severity
from bot.rules import Policy, Rules
from bot.validate import FileResult, field_name, suggest
from bot.yamlio import Document, join, load, resolve_pointer

Reader = Callable[[list[str]], dict[str, bytes]]

# Fields that name another resource, by the kind they refer to.
SERVICE_REFERENCE_KINDS = ("Database", "Environment", "Access")


@dataclass(slots=True)
class Catalogue:
    """Every resource of one revision by identity (the first definition wins when one is duplicated)."""

    resources: dict[str, Resource]
    files: list[FileResult]

    @classmethod
    def of(cls, files: list[FileResult]) -> Catalogue:
        resources: dict[str, Resource] = {}
        for result in files:
            for resource in result.resources:
                resources.setdefault(resource.identity, resource)
        return cls(resources, files)

    def named(self, kind: str) -> dict[str, Resource]:
        return {r.name: r for r in self.resources.values() if r.kind == kind}

    def dependencies(self, resource: Resource) -> list[str]:
        """Identities `resource` needs to exist first (its owner, service, team and `dependsOn`)."""
        spec = resource.spec
        needs: list[str] = []
        if resource.owner and not (resource.kind == "Team" and resource.owner == resource.name):
            needs.append(f"Team/{resource.owner}")
        if resource.kind in SERVICE_REFERENCE_KINDS and isinstance(spec.get("service"), str):
            needs.append(f"Service/{spec['service']}")
        if resource.kind == "Access" and isinstance(spec.get("team"), str):
            needs.append(f"Team/{spec['team']}")
        if resource.kind == "Environment":
            needs += [f"Team/{t}" for t in spec.get("requiredReviewers") or [] if isinstance(t, str)]
        needs += [d for d in spec.get("dependsOn") or [] if isinstance(d, str)]
        return needs

    def context(self, resource: Resource) -> dict[str, Any]:
        """What a policy may see besides the request itself."""
        service_name = resource.spec.get("service") if resource.kind in SERVICE_REFERENCE_KINDS else None
        if not isinstance(service_name, str):
            return {}
        service = self.resources.get(f"Service/{service_name}")
        if service is None:
            return {}
        return {"service": {"name": service.name, "tier": service.spec.get("tier"),
                            "lifecycle": service.spec.get("lifecycle")}}


def _at(resource: Resource, pointer: str, message: str, rule: str, hint: str | None = None,
        severity: Severity = "error") -> Finding:
    """A finding about `resource` whose position `locate` fills in."""
    return Finding(path=resource.path, line=0, column=0, pointer=pointer, message=message,
                   severity=severity, rule=rule, hint=hint, document=resource.document)


def _unique(files: Sequence[FileResult]) -> list[Finding]:
    first: dict[str, Resource] = {}
    found: list[Finding] = []
    for result in files:
        for resource in result.resources:
            earlier = first.setdefault(resource.identity, resource)
            if earlier is not resource:
                found.append(_at(resource, "/metadata/name",
                                 f"{resource.identity} is already defined in {earlier.path}"
                                 + (f" (line {earlier.line})" if earlier.line else ""),
                                 "catalog.unique-identity", "Each Kind/name may be requested once; rename one."))
    return found


def _references(catalogue: Catalogue) -> list[Finding]:
    teams = catalogue.named("Team")
    services = catalogue.named("Service")
    found: list[Finding] = []

    def expect(resource: Resource, pointer: str, value: Any, kind: str, names: dict[str, Resource]) -> None:
        if isinstance(value, str) and value not in names:
            found.append(_at(resource, pointer, f"`{field_name(pointer)}` names {kind} {value!r}, which does "
                             f"not exist", "catalog.reference",
                             suggest(value, names) or f"Request the {kind} first, or name an existing one."))

    for resource in catalogue.resources.values():
        spec = resource.spec
        owns_itself = resource.kind == "Team" and resource.owner == resource.name
        if resource.owner and not owns_itself and resource.owner not in teams:
            found.append(_at(resource, "/metadata/owner", f"the owner {resource.owner!r} is not a Team",
                             "catalog.owner", suggest(resource.owner, teams) or
                             "Every resource is owned by a Team of the catalogue."))
        if resource.kind in SERVICE_REFERENCE_KINDS:
            expect(resource, "/spec/service", spec.get("service"), "Service", services)
        if resource.kind == "Access":
            expect(resource, "/spec/team", spec.get("team"), "Team", teams)
        if resource.kind == "Environment":
            for i, team in enumerate(spec.get("requiredReviewers") or []):
                expect(resource, f"/spec/requiredReviewers/{i}", team, "Team", teams)
        for i, ref in enumerate(spec.get("dependsOn") or []):
            if isinstance(ref, str) and ref not in catalogue.resources:
                found.append(_at(resource, f"/spec/dependsOn/{i}", f"`dependsOn` names {ref}, which does not "
                                 f"exist", "catalog.reference",
                                 suggest(ref, catalogue.resources) or "Name an existing Kind/name."))
            elif ref == resource.identity:
                found.append(_at(resource, f"/spec/dependsOn/{i}", f"{ref} depends on itself",
                                 "catalog.cycle", "Remove the entry."))
    return found


def _cycles(catalogue: Catalogue) -> list[Finding]:
    """One finding per dependency cycle, at the edge that closes it."""
    graph = {identity: [d for d in r.spec.get("dependsOn") or []
                        if isinstance(d, str) and d in catalogue.resources and d != identity]
             for identity, r in catalogue.resources.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[Finding] = []
    for start in sorted(graph):
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                path.append(node)
            if i < len(graph[node]):
                stack.append((node, i + 1))
                nxt = graph[node][i]
                if state.get(nxt) == 1:
                    loop = [*path[path.index(nxt):], nxt]
                    resource = catalogue.resources[node]
                    index = (resource.spec.get("dependsOn") or []).index(nxt)
                    found.append(_at(resource, f"/spec/dependsOn/{index}",
                                     "dependency cycle: " + " → ".join(loop), "catalog.cycle",
                                     "Break the cycle: a resource cannot need itself, even indirectly."))
                elif not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return found


def _templates(catalogue: Catalogue, rules: Rules) -> list[Finding]:
    found: list[Finding] = []
    for resource in catalogue.resources.values():
        if resource.kind != "Service":
            continue
        template = resource.spec.get("template")
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            continue
        chosen = rules.templates.get(template["name"])
        if chosen is None:
            found.append(_at(resource, "/spec/template/name", f"there is no golden-path template "
                             f"{template['name']!r} in templates/", "catalog.template",
                             suggest(template["name"], rules.templates)
                             or f"Available: {', '.join(sorted(rules.templates)) or 'none'}."))
            continue
        parameters = template.get("parameters") or {}
        if not isinstance(parameters, dict):
            continue
        for key, value in parameters.items():
            pointer = join("/spec/template/parameters", key)
            parameter = chosen.parameters.get(key)
            if parameter is None:
                found.append(_at(resource, pointer, f"template {chosen.name} has no parameter `{key}`",
                                 "catalog.template-parameter",
                                 suggest(key, chosen.parameters)
                                 or f"Parameters: {', '.join(chosen.parameters) or 'none'}."))
                continue
            ok = {"string": isinstance(value, str),
                  "boolean": isinstance(value, bool),
                  "number": isinstance(value, int | float) and not isinstance(value, bool)}[parameter.type]
            if not ok:
                found.append(_at(resource, pointer, f"parameter `{key}` of template {chosen.name} must be a "
                                 f"{parameter.type}; got {value!r}", "catalog.template-parameter",
                                 f"{key}: {parameter.description}" if parameter.description else None))
            elif parameter.choices is not None and value not in parameter.choices:
                found.append(_at(resource, pointer, f"parameter `{key}` of template {chosen.name} must be one "
                                 f"of {', '.join(map(str, parameter.choices))}; got {value!r}",
                                 "catalog.template-parameter", suggest(str(value), map(str, parameter.choices))))
    return found


def team_costs(catalogue: Catalogue, rules: Rules) -> dict[str, float]:
    """Each owning team's monthly total at this revision."""
    totals: dict[str, float] = defaultdict(float)
    for resource in catalogue.resources.values():
        cost = rules.monthly_cost(resource.kind, resource.data)
        if cost:
            totals[resource.owner] += cost
    return dict(totals)


def team_budget(team: Resource) -> float | None:
    budget = resolve_pointer(team.data, "/spec/budget/monthly")
    return float(budget) if isinstance(budget, int | float) and not isinstance(budget, bool) else None


def _budgets(catalogue: Catalogue, rules: Rules) -> list[Finding]:
    found: list[Finding] = []
    costs = team_costs(catalogue, rules)
    for name, team in sorted(catalogue.named("Team").items()):
        budget = team_budget(team)
        spent = costs.get(name, 0.0)
        if budget is not None and spent > budget:
            biggest = sorted(((rules.monthly_cost(r.kind, r.data), r.identity)
                              for r in catalogue.resources.values() if r.owner == name), reverse=True)[:3]
            found.append(_at(team, "/spec/budget/monthly",
                             f"team {name} would spend {rules.currency} {spent:,.2f}/month, over its budget of "
                             f"{rules.currency} {budget:,.2f}", "catalog.budget",
                             "Largest items: " + ", ".join(f"{i} ({c:,.0f})" for c, i in biggest)
                             + ". Raise the budget or choose smaller sizes."))
    return found


def _policy_pointer(policy: Policy, errors: list[Any]) -> str:
    if policy.pointer:
        return policy.pointer
    deepest = max(errors, key=lambda e: len(e.instance_path))
    return "".join(join("", t) for t in deepest.instance_path)


def _policies(catalogue: Catalogue, rules: Rules, cache: MutableMapping[str, Any] | None,
              read: Reader) -> list[Finding]:
    found: list[Finding] = []
    for result in catalogue.files:
        for resource in result.resources:
            policies = rules.policies_for(resource.kind)
            if not policies:
                continue
            context = catalogue.context(resource)
            key = None
            if cache is not None:
                digest = hashlib.sha1(json.dumps(context, sort_keys=True).encode(), usedforsecurity=False)
                key = f"p:{rules.digest}:{result.blob}:{resource.path}:{resource.document}:{digest.hexdigest()}"
                cached = cache.get(key)
                if cached is not None:
                    found += [Finding(*t) for t in cached]
                    continue
            instance = {**resource.data, "context": context}
            produced: list[Finding] = []
            for policy in policies:
                validator = rules.policy_validator(policy)
                if validator.is_valid(instance):
                    continue
                errors = list(validator.iter_errors(instance))
                if errors:
                    produced.append(_at(resource, _policy_pointer(policy, errors), policy.message, policy.id,
                                        policy.hint, policy.severity))
            produced = locate(produced, [result], read)
            found += produced
            if key is not None and cache is not None:
                cache[key] = [(f.path, f.line, f.column, f.pointer, f.message, f.severity, f.rule, f.hint,
                               f.document) for f in produced]
    return found


def check_catalogue(catalogue: Catalogue, rules: Rules, read: Reader,
                    cache: MutableMapping[str, Any] | None = None) -> list[Finding]:
    """Every cross-file finding and every policy finding of the catalogue, positioned.

    `read` returns the bytes of the named files; it is called only for files whose findings need a
    position and whose parse was not kept.
    """
    found = (_unique(catalogue.files) + _references(catalogue) + _cycles(catalogue)
             + _templates(catalogue, rules) + _budgets(catalogue, rules))
    return locate(found, catalogue.files, read) + _policies(catalogue, rules, cache, read)


def locate(findings: Iterable[Finding], files: Sequence[FileResult], read: Reader) -> list[Finding]:
    """Fill in line and column for findings that have only a pointer, parsing a file again if needed."""
    findings = list(findings)
    unplaced = {f.path for f in findings if f.line == 0 and f.pointer}
    if not unplaced:
        return findings
    parsed: dict[str, list[Document]] = {}
    for result in files:
        if result.path in unplaced and result.documents is not None:
            parsed[result.path] = result.documents
    missing = sorted(unplaced - parsed.keys())
    for path, raw in read(missing).items():
        parsed[path] = load(path, raw).documents
    placed: list[Finding] = []
    for f in findings:
        docs = parsed.get(f.path)
        if f.line == 0 and f.pointer and docs is not None and f.document < len(docs):
            line, column = docs[f.document].position(f.pointer)
            f = replace(f, line=line, column=column)
        placed.append(f)
    return placed
