"""The request form, from a kind's JSON Schema: which field each schema makes, what the answers make of a
request, and which field each finding is shown at."""

from __future__ import annotations

import json
from typing import Any

from bot.forms import ITSELF, Form, form_for, place_findings, request_data
from bot.model import Finding
from bot.yamlio import dump_request, load
from tests.conftest import PROJECT

SCHEMA: dict[str, Any] = {
    "title": "Widget",
    "description": "A widget for tests.",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "$defs": {"label": {"type": "string", "maxLength": 63, "pattern": "^[a-z]+$"}},
    "properties": {
        "apiVersion": {"const": "paved/v1"},
        "kind": {"const": "Widget"},
        "metadata": {
            "type": "object", "required": ["name", "owner", "description"],
            "properties": {
                "name": {"$ref": "#/$defs/label", "title": "Name", "description": "Its name.",
                         "examples": ["left-gear"]},
                "owner": {"$ref": "#/$defs/label", "title": "Owner"},
                "description": {"type": "string", "maxLength": 500, "title": "Description"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object", "required": ["size", "enabled", "count"],
            "properties": {
                "size": {"type": "string", "enum": ["small", "large"], "title": "Size"},
                "mode": {"enum": ["auto", "manual"], "default": "auto"},
                "enabled": {"type": "boolean", "title": "Enabled"},
                "audited": {"type": "boolean", "default": True},
                "count": {"type": "integer", "examples": [3], "description": "How many."},
                "ratio": {"type": "number"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "extras": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                "limits": {"type": "object", "properties": {"cpu": {"type": "integer", "default": 2}}},
                "params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            },
        },
    },
}


def form(teams: tuple[str, ...] = ("data", "payments"), is_team: bool = False) -> Form:
    return form_for(SCHEMA, owner="/metadata/owner", teams=teams, is_team=is_team)


def widget(pointer: str) -> str:
    found = form().field(pointer)
    assert found is not None, pointer
    return found.widget


def finding(pointer: str, message: str = "wrong", severity: str = "error") -> Finding:
    return Finding("catalog/widgets/x.yaml", 1, 1, pointer, message, severity, "schema")  # type: ignore[arg-type]


# -- from the schema to fields ----------------------------------------------------------------------------------

def test_constant_fields_are_carried_by_every_request_and_not_asked() -> None:
    made = form()
    assert made.constants == (("apiVersion", "paved/v1"), ("kind", "Widget"))
    assert made.field("/apiVersion") is None and made.kind == "Widget"


def test_strings_are_text_boxes_and_long_strings_text_areas() -> None:
    assert widget("/metadata/name") == "text"
    assert widget("/metadata/description") == "textarea"


def test_an_enum_is_a_select_of_its_values_with_an_empty_choice_only_without_a_default() -> None:
    size = form().field("/spec/size")
    mode = form().field("/spec/mode")
    assert size is not None and mode is not None
    assert size.widget == "select" and [o.value for o in size.options] == ["", "small", "large"]
    assert [o.value for o in mode.options] == ["auto", "manual"] and mode.value == "auto"


def test_booleans_are_checkboxes_ticked_by_a_true_default() -> None:
    enabled, audited = form().field("/spec/enabled"), form().field("/spec/audited")
    assert enabled is not None and audited is not None
    assert (enabled.widget, enabled.value) == ("checkbox", "")
    assert (audited.widget, audited.value) == ("checkbox", "true")


def test_numbers_are_number_boxes() -> None:
    assert widget("/spec/count") == widget("/spec/ratio") == "number"


def test_lists_of_strings_are_lines_and_lists_of_an_enum_are_checkboxes() -> None:
    assert widget("/spec/tags") == "lines"
    extras = form().field("/spec/extras")
    assert extras is not None and extras.widget == "checkboxes" and [o.value for o in extras.options] == ["a", "b"]


def test_objects_are_fieldsets_and_maps_are_key_value_lines() -> None:
    limits = form().field("/spec/limits")
    assert limits is not None and limits.widget == "fieldset"
    assert [c.pointer for c in limits.children] == ["/spec/limits/cpu"]
    assert widget("/metadata/labels") == widget("/spec/params") == "map"


def test_required_fields_are_marked() -> None:
    marked = {f.pointer for f in form().all_fields() if f.required}
    assert {"/metadata/name", "/spec/size", "/spec/enabled", "/spec/count"} <= marked
    assert not {"/spec/mode", "/spec/tags", "/metadata/labels"} & marked


def test_titles_label_descriptions_help_examples_are_placeholders_and_defaults_start_values() -> None:
    name, count, cpu = form().field("/metadata/name"), form().field("/spec/count"), form().field("/spec/limits/cpu")
    assert name is not None and count is not None and cpu is not None
    assert (name.label, name.help, name.placeholder) == ("Name", "Its name.", "left-gear")
    assert (count.label, count.help, count.placeholder) == ("count", "How many.", "3")
    assert cpu.value == "2"


def test_the_owner_is_a_select_of_the_catalogues_teams() -> None:
    owner = form().field("/metadata/owner")
    assert owner is not None and owner.widget == "select"
    assert [o.value for o in owner.options] == ["data", "payments"]


def test_a_team_may_own_itself() -> None:
    made = form(is_team=True)
    owner = made.field("/metadata/owner")
    assert owner is not None and owner.options[0].value == ITSELF
    data = request_data(made, {"/metadata/name": ["gears"], "/metadata/owner": [ITSELF]})
    assert data["metadata"]["owner"] == "gears"


def test_every_starter_kind_gets_a_form_with_its_owner_select() -> None:
    for path in sorted((PROJECT / "schemas" / "kinds").glob("*.json")):
        schema = json.loads(path.read_text())
        made = form_for(schema, owner="/metadata/owner", teams=["data"])
        owner = made.field("/metadata/owner")
        assert owner is not None and owner.widget == "select", path.name
        assert made.field("/metadata/description") is not None, path.name


# -- from the answers to a request ------------------------------------------------------------------------------

ANSWERS = {"/metadata/name": ["gears"], "/metadata/owner": ["data"], "/metadata/description": ["Turns."],
           "/spec/size": ["small"], "/spec/mode": ["auto"], "/spec/enabled": ["true"], "/spec/audited": ["true"],
           "/spec/count": ["3"], "/spec/ratio": ["0.5"], "/spec/tags": ["one\r\n\r\ntwo\n"],
           "/spec/extras": ["b", "not-offered"], "/spec/limits/cpu": ["2"], "/spec/params": ["port=8080\nx=y"]}


def test_the_answers_make_a_request_in_the_schemas_order_with_typed_values() -> None:
    assert request_data(form(), ANSWERS) == {
        "apiVersion": "paved/v1", "kind": "Widget",
        "metadata": {"name": "gears", "owner": "data", "description": "Turns."},
        "spec": {"size": "small", "enabled": True, "count": 3, "ratio": 0.5, "tags": ["one", "two"],
                 "extras": ["b"], "params": {"port": 8080, "x": "y"}},
    }


def test_optional_fields_left_at_their_defaults_are_left_out() -> None:
    spec = request_data(form(), ANSWERS)["spec"]
    assert "mode" not in spec and "audited" not in spec and "limits" not in spec


def test_an_unticked_checkbox_is_false_when_required_or_defaulted_to_true() -> None:
    spec = request_data(form(), {**ANSWERS, "/spec/enabled": [], "/spec/audited": []})["spec"]
    assert spec["enabled"] is False and spec["audited"] is False


def test_required_fields_left_empty_stay_empty_so_validation_names_them() -> None:
    data = request_data(form(), {})
    assert data["metadata"] == {"name": "", "owner": "", "description": ""}
    assert data["spec"] == {"size": "", "enabled": False, "audited": False, "count": ""}


def test_a_number_that_does_not_read_as_one_stays_text_for_validation_to_name() -> None:
    assert request_data(form(), {**ANSWERS, "/spec/count": ["3 please"]})["spec"]["count"] == "3 please"
    assert request_data(form(), {**ANSWERS, "/spec/ratio": ["nan"]})["spec"]["ratio"] == "nan"


def test_hostile_text_stays_one_value_when_the_request_is_written() -> None:
    hostile = "line one\nkind: Team\n---\n- {{ 7 * 7 }} &anchor *alias !!python/object:os.system"
    data = request_data(form(), {**ANSWERS, "/metadata/description": [hostile], "/metadata/name": ["a: b\n#c"]})
    written = dump_request(data, schema_comment="../../schemas/kinds/widget.json")
    loaded = load("catalog/widgets/gears.yaml", written.encode())
    assert not loaded.findings and len(loaded.documents) == 1
    assert loaded.documents[0].data == data
    assert loaded.documents[0].data["metadata"]["description"] == hostile


# -- findings at their fields -----------------------------------------------------------------------------------

def test_a_finding_is_placed_at_the_field_its_pointer_names() -> None:
    placed = place_findings(form(), [finding("/spec/limits/cpu")])
    assert list(placed.by_field) == ["/spec/limits/cpu"] and not placed.general


def test_a_finding_about_a_list_item_or_a_map_key_is_placed_at_the_list_or_map() -> None:
    placed = place_findings(form(), [finding("/spec/tags/1"), finding("/metadata/labels/Bad~1Key")])
    assert set(placed.by_field) == {"/spec/tags", "/metadata/labels"}


def test_a_finding_about_an_object_is_placed_at_its_fieldset() -> None:
    assert list(place_findings(form(), [finding("/spec/limits")]).by_field) == ["/spec/limits"]


def test_findings_about_the_whole_request_or_no_field_of_the_form_are_the_forms_own() -> None:
    placed = place_findings(form(), [finding(""), finding("/status/phase")])
    assert not placed.by_field and len(placed.general) == 2


def test_only_errors_hold_the_request_back() -> None:
    assert not place_findings(form(), [finding("/spec/size", severity="warning")]).has_errors
    assert place_findings(form(), [finding("", severity="error")]).has_errors
