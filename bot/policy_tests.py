"""Running the guardrail policies' own test cases.

Each policy has example catalogues under `schemas/policies/tests/<policy-id>/pass/` and `.../fail/`.
A `pass` case must raise no finding of that policy; a `fail` case must raise at least one. Adding a
case is adding a file. The cases are judged exactly as a pull request would be (the same loader,
schemas and catalogue checks), with the case file as the whole catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from bot.catalogue import CatalogueIndex, judge
from bot.model import Finding, MemoryTree, Tree
from bot.rules import Rules

TESTS_DIR = "schemas/policies/tests/"

Expectation = Literal["pass", "fail"]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case file: did the policy behave as the folder it sits in says?"""

    policy: str
    expectation: Expectation
    path: str
    ok: bool
    findings: tuple[Finding, ...]
    other: tuple[Finding, ...] = ()

    @property
    def explanation(self) -> str:
        if self.ok:
            return "as expected"
        if self.expectation == "pass":
            return "expected no finding of this policy, got: " + "; ".join(
                f"{f.location} {f.message}" for f in self.findings)
        return "expected a finding of this policy, got none"


@dataclass(frozen=True, slots=True)
class PolicyTestReport:
    cases: tuple[CaseResult, ...]
    untested: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cases) and not self.untested and not self.unknown


def run_policy_tests(tree: Tree, rules: Rules, index: CatalogueIndex) -> PolicyTestReport:
    """Judge each case file as a catalogue of its own, in `index` (an in-memory one: the cases are not
    the platform's catalogue, and their states are of no use to anything else)."""
    files = tree.files(TESTS_DIR)
    ids = {p.id for p in rules.policies}
    cases: list[CaseResult] = []
    seen: set[str] = set()
    unknown: set[str] = set()
    contents = tree.read_many(sorted(p for p in files if p.endswith((".yaml", ".yml"))))
    for path in sorted(contents):
        parts = path[len(TESTS_DIR):].split("/")
        if len(parts) != 3 or parts[1] not in ("pass", "fail"):
            continue
        policy, expectation = parts[0], parts[1]
        if policy not in ids:
            unknown.add(policy)
            continue
        seen.add(policy)
        # The case file alone is the catalogue, placed under catalog/ so it is judged as a request.
        case = f"catalog/{path}"
        catalogue = judge(MemoryTree({case: contents[path]}, label=path), rules, index)
        found = [replace(f, path=path) for f in catalogue.findings()]
        mine = tuple(f for f in found if f.rule == policy)
        other = tuple(f for f in found if f.rule != policy and f.severity == "error")
        ok = bool(mine) if expectation == "fail" else not mine
        cases.append(CaseResult(policy, expectation, path, ok, mine, other))  # type: ignore[arg-type]
    return PolicyTestReport(tuple(cases), tuple(sorted(ids - seen)), tuple(sorted(unknown)))
