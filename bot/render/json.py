"""Plans and findings as stable JSON for scripts and other tools.

The shapes are documented by `schemas/plan.schema.json` and `schemas/findings.schema.json`; bump
`FORMAT_VERSION` whenever a change to them could break a consumer. Output is deterministic: keys
come in a fixed order, findings are sorted and keys inside request values are sorted, so two runs
over the same revisions give byte-identical files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from bot.model import ACTIONS, Change, FieldChange, Finding, Plan, RuleChange, TeamCost
from bot.render import wording

FORMAT_VERSION = 1


def render(plan: Plan) -> str:
    """The plan as indented JSON, ending with a newline."""
    return _dump(plan_to_dict(plan))


def render_findings(findings: Sequence[Finding], *, files_checked: int | None) -> str:
    """The findings of `paved validate` as indented JSON, ending with a newline."""
    return _dump(findings_to_dict(findings, files_checked=files_checked))


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    counts = wording.severity_counts(plan.findings)
    summary: dict[str, Any] = {action: plan.count(action) for action in ACTIONS}
    summary.update(
        unchanged=plan.unchanged,
        errors=counts["error"],
        warnings=counts["warning"],
        notices=counts["notice"],
        files_checked=plan.files_checked,
        cost_delta=_amount(plan.cost_delta),
    )
    return {
        "version": FORMAT_VERSION,
        "base": plan.base,
        "head": plan.head,
        "ok": plan.ok,
        "summary": summary,
        "changes": [change_to_dict(change) for change in plan.changes],
        "deletions": [change_to_dict(change) for change in plan.deletions],
        "costs": [team_cost_to_dict(cost) for cost in plan.costs],
        "findings": [finding_to_dict(f) for f in sorted(plan.findings, key=Finding.sort_key)],
        "rule_changes": [rule_change_to_dict(change) for change in plan.rule_changes],
        "platform_impact": list(plan.platform_impact),
        "upgrades": [{"identity": u.identity, "template": u.template, "reason": u.reason, "held": u.held}
                     for u in plan.upgrades],
    }


def findings_to_dict(findings: Sequence[Finding], *, files_checked: int | None) -> dict[str, Any]:
    counts = wording.severity_counts(findings)
    return {
        "version": FORMAT_VERSION,
        "ok": counts["error"] == 0,
        "summary": {
            "errors": counts["error"],
            "warnings": counts["warning"],
            "notices": counts["notice"],
            "files_with_findings": wording.files_with_findings(findings),
            "files_checked": files_checked,
        },
        "findings": [finding_to_dict(f) for f in sorted(findings, key=Finding.sort_key)],
    }


def finding_to_dict(f: Finding) -> dict[str, Any]:
    return {
        "path": f.path,
        "line": f.line,
        "column": f.column,
        "document": f.document,
        "pointer": f.pointer,
        "severity": f.severity,
        "rule": f.rule,
        "message": f.message,
        "hint": f.hint,
    }


def change_to_dict(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "kind": change.kind,
        "name": change.name,
        "identity": change.identity,
        "owner": change.owner,
        "path": change.path,
        "line": change.line,
        "previous_name": change.previous_name,
        "previous_path": change.previous_path,
        "destructive": change.destructive,
        "monthly_cost_before": _amount(change.monthly_cost_before),
        "monthly_cost_after": _amount(change.monthly_cost_after),
        "cost_delta": _amount(change.cost_delta),
        "depends_on": list(change.depends_on),
        "fields": [field_change_to_dict(field_change) for field_change in change.fields],
    }


def field_change_to_dict(field_change: FieldChange) -> dict[str, Any]:
    # Both sides are always present (null when absent) so every entry has the same shape; `op`
    # says which side is meaningful.
    return {
        "pointer": field_change.pointer,
        "op": field_change.op,
        "before": _json_value(field_change.before),
        "after": _json_value(field_change.after),
    }


def team_cost_to_dict(cost: TeamCost) -> dict[str, Any]:
    return {
        "team": cost.team,
        "before": _amount(cost.before),
        "after": _amount(cost.after),
        "delta": _amount(cost.delta),
        "budget": None if cost.budget is None else _amount(cost.budget),
        "over_budget": cost.over_budget,
    }


def rule_change_to_dict(change: RuleChange) -> dict[str, Any]:
    return {"path": change.path, "status": change.status}


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _amount(value: float) -> float | None:
    # Cents, so float noise (0.30000000000000004) never reaches consumers; None (null) stands for a
    # cost that is not a finite number, which JSON cannot represent.
    return wording.cents(value)


def _json_value(value: Any) -> Any:
    """A request value made representable as strict JSON with a deterministic key order.

    YAML can produce what JSON cannot: `.nan`/`.inf`, dates, non-string keys. Those are shown as
    strings rather than failing the whole output.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        items = {str(key): _json_value(item) for key, item in value.items()}
        return {key: items[key] for key in sorted(items)}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return str(value)
