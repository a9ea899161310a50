"""JSON output for scripts, and the schemas that document it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bot.model import FieldChange, Plan, TeamCost
from bot.render import json as render_json
from tests.plans import change, empty_plan, finding, huge_plan, rules_change_plan, typical_plan, upgrade_plan

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
SAMPLE_PLANS = [
    pytest.param(empty_plan(), id="empty"),
    pytest.param(typical_plan(), id="typical"),
    pytest.param(rules_change_plan(), id="rules-change"),
    pytest.param(upgrade_plan(), id="upgrades"),
    pytest.param(huge_plan(changes=20, findings=60), id="bulk"),
]


def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


def strict_loads(document: str) -> Any:
    """Parse JSON, refusing the NaN/Infinity extensions Python would otherwise accept."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(document, parse_constant=refuse)


def schema_nodes(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every subschema that describes a property, an array's items or a definition."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(node, dict):
        return found
    for name, sub in node.get("properties", {}).items():
        found.append((f"{where}/properties/{name}", sub))
        found += schema_nodes(sub, f"{where}/properties/{name}")
    for name, sub in node.get("$defs", {}).items():
        found.append((f"{where}/$defs/{name}", sub))
        found += schema_nodes(sub, f"{where}/$defs/{name}")
    if isinstance(node.get("items"), dict):
        found += schema_nodes(node["items"], f"{where}/items")
    return found


# --- the schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plan.schema.json", "findings.schema.json"])
def test_the_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = load_schema(name)

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", ["plan.schema.json", "findings.schema.json"])
def test_every_field_in_the_schema_has_a_title_and_a_description(name: str) -> None:
    undocumented = [
        where
        for where, node in schema_nodes(load_schema(name))
        if "$ref" not in node and not (node.get("title") and node.get("description"))
    ]

    assert undocumented == []


@pytest.mark.parametrize("name", ["plan.schema.json", "findings.schema.json"])
def test_every_object_in_the_schema_forbids_unknown_properties(name: str) -> None:
    schema = load_schema(name)
    objects = [("#", schema)] + [(where, node) for where, node in schema_nodes(schema) if "properties" in node]

    assert [where for where, node in objects if node.get("additionalProperties") is not False] == []


def test_both_schemas_describe_a_finding_the_same_way() -> None:
    plan_finding = load_schema("plan.schema.json")["$defs"]["finding"]

    assert load_schema("findings.schema.json")["$defs"]["finding"] == plan_finding


# --- plans -------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", SAMPLE_PLANS)
def test_plan_output_validates_against_the_plan_schema(plan: Plan) -> None:
    Draft202012Validator(load_schema("plan.schema.json")).validate(strict_loads(render_json.render(plan)))


def test_plan_output_carries_format_version_1() -> None:
    assert strict_loads(render_json.render(typical_plan()))["version"] == 1


def test_plan_output_is_indented_and_ends_with_a_newline() -> None:
    output = render_json.render(empty_plan())

    assert output.startswith('{\n  "version": 1,\n')
    assert output.endswith("}\n")


def test_plan_output_is_the_rendered_form_of_plan_to_dict() -> None:
    plan = typical_plan()

    assert strict_loads(render_json.render(plan)) == render_json.plan_to_dict(plan)


def test_plan_output_does_not_depend_on_the_order_findings_arrive_in() -> None:
    plan = typical_plan()
    shuffled = Plan(**{**plan_fields(plan), "findings": tuple(reversed(plan.findings))})

    assert render_json.render(shuffled) == render_json.render(plan)


def plan_fields(plan: Plan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in Plan.__dataclass_fields__}


def test_the_summary_counts_actions_findings_and_cost() -> None:
    summary = render_json.plan_to_dict(typical_plan())["summary"]

    assert summary == {
        "create": 2,
        "update": 1,
        "rename": 1,
        "delete": 1,
        "unchanged": 37,
        "errors": 2,
        "warnings": 1,
        "notices": 0,
        "files_checked": 14,
        "cost_delta": 120.0,
    }


def test_a_change_lists_its_field_changes_with_both_sides() -> None:
    added = FieldChange("/spec/waitTimer", "add", after=10)
    document = render_json.plan_to_dict(empty_plan(changes=(change("update", fields=(added,)),)))

    assert document["changes"][0]["fields"] == [
        {"pointer": "/spec/waitTimer", "op": "add", "before": None, "after": 10}
    ]


def test_deletions_are_kept_apart_and_marked_destructive() -> None:
    document = render_json.plan_to_dict(typical_plan())

    assert [(d["identity"], d["destructive"]) for d in document["deletions"]] == [("Access/data-reads-orders", True)]
    assert not any(c["destructive"] for c in document["changes"])


def test_costs_are_rounded_to_cents() -> None:
    plan = empty_plan(costs=(TeamCost("payments", 0.1, 0.1 + 0.2, budget=0.25),))

    assert render_json.plan_to_dict(plan)["costs"] == [
        {"team": "payments", "before": 0.1, "after": 0.3, "delta": 0.2, "budget": 0.25, "over_budget": True}
    ]


def test_values_json_cannot_hold_are_written_as_strings() -> None:
    odd = FieldChange("/spec/size", "replace", float("nan"), {2: float("inf")})
    output = render_json.render(empty_plan(changes=(change("update", fields=(odd,)),)))

    assert strict_loads(output)["changes"][0]["fields"][0] == {
        "pointer": "/spec/size",
        "op": "replace",
        "before": "NaN",
        "after": {"2": "Infinity"},
    }


def test_a_cost_that_is_not_a_number_becomes_null_and_still_validates() -> None:
    plan = empty_plan(costs=(TeamCost("payments", float("nan"), 1.0),))
    output = render_json.render(plan)

    assert strict_loads(output)["costs"][0]["before"] is None
    Draft202012Validator(load_schema("plan.schema.json")).validate(strict_loads(output))


# --- findings ----------------------------------------------------------------------------------


def test_finding_to_dict_keeps_every_field_of_the_finding() -> None:
    assert render_json.finding_to_dict(finding(hint="Did you mean `size`?")) == {
        "path": "catalog/orders.yaml",
        "line": 12,
        "column": 5,
        "document": 0,
        "pointer": "/spec/sise",
        "severity": "error",
        "rule": "schema",
        "message": "`sise` is not a known key",
        "hint": "Did you mean `size`?",
    }


@pytest.mark.parametrize("files_checked", [14, None])
def test_findings_output_validates_against_the_findings_schema(files_checked: int | None) -> None:
    output = render_json.render_findings(typical_plan().findings, files_checked=files_checked)

    Draft202012Validator(load_schema("findings.schema.json")).validate(strict_loads(output))


def test_findings_output_summarises_counts_and_files() -> None:
    document = strict_loads(render_json.render_findings(typical_plan().findings, files_checked=14))

    assert document["version"] == 1
    assert document["ok"] is False
    assert document["summary"] == {
        "errors": 2,
        "warnings": 1,
        "notices": 0,
        "files_with_findings": 2,
        "files_checked": 14,
    }


def test_findings_output_is_sorted_by_location() -> None:
    findings = [finding("b.yaml", 1), finding("a.yaml", 9), finding("a.yaml", 2)]
    document = strict_loads(render_json.render_findings(findings, files_checked=None))

    assert [(f["path"], f["line"]) for f in document["findings"]] == [("a.yaml", 2), ("a.yaml", 9), ("b.yaml", 1)]


def test_no_findings_is_ok() -> None:
    document = strict_loads(render_json.render_findings([], files_checked=3))

    assert document["ok"] is True
    assert document["findings"] == []


def test_each_golden_path_upgrade_is_listed_with_why_and_whether_it_is_held_back() -> None:
    upgrades = render_json.plan_to_dict(upgrade_plan())["upgrades"]
    assert upgrades[0] == {"identity": "Service/billing", "template": "fastapi-service", "reason": "answers",
                           "held": ""}
    assert [u["held"] for u in upgrades] == ["", "", "manual", ""]
