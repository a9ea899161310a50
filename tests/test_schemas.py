"""The data Paved runs on: kind schemas, guardrail policies and their cases, prices, the catalogue.

These tests check the files themselves, without Paved's core: that every schema is a valid
JSON Schema (draft 2020-12) that both validators compile, that schemas document every field for the
docs and editor hints, that policies follow the policy format and have test cases, that catalogue
files point editors at their schema, and that every size and tier has a price.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
KINDS_DIR = SCHEMAS / "kinds"
POLICIES_DIR = SCHEMAS / "policies"
POLICY_TESTS_DIR = POLICIES_DIR / "tests"
CATALOG = ROOT / "catalog"
EXAMPLES = ROOT / "examples"

KINDS = ("Team", "Service", "Database", "Environment", "Access")
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_LINE = "# yaml-language-server: $schema="

# Maps whose keys the request author chooses. They are documented as free-form and constrain their
# values (and, for labels, their keys) instead of forbidding unknown properties.
FREE_FORM_MAPS = {
    "#/$defs/labels",
    "#/properties/spec/properties/template/properties/parameters",
}

KIND_SCHEMA_FILES = sorted(KINDS_DIR.glob("*.json"))
POLICY_FILES = sorted(POLICIES_DIR.glob("*.json"))
CATALOG_FILES = sorted(CATALOG.rglob("*.yaml"))
# An example change is a folder of requests to copy over the catalogue (it holds `catalog/`); a provider
# package such as examples/queue is an example of another kind, with tests of its own.
EXAMPLE_CHANGES = sorted(p for p in EXAMPLES.iterdir() if (p / "catalog").is_dir()) if EXAMPLES.is_dir() else []


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def ids(paths: list[Path]) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in paths]


def subschemas(schema: Any, pointer: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside `schema`, with its JSON pointer, not descending into examples."""
    if not isinstance(schema, dict):
        return
    yield pointer, schema
    for keyword in ("properties", "patternProperties", "$defs"):
        for name, child in schema.get(keyword, {}).items():
            yield from subschemas(child, f"{pointer}/{keyword}/{name}")
    for keyword in (
        "items",
        "additionalProperties",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "contains",
    ):
        if keyword in schema:
            yield from subschemas(schema[keyword], f"{pointer}/{keyword}")
    for keyword in ("allOf", "anyOf", "oneOf", "prefixItems"):
        for index, child in enumerate(schema.get(keyword, [])):
            yield from subschemas(child, f"{pointer}/{keyword}/{index}")


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (`#/$defs/...`) to the schema it names."""
    while "$ref" in node:
        target: Any = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_at_field(schema: dict[str, Any], field: str) -> dict[str, Any]:
    """The subschema of a kind schema that describes the request field at JSON pointer `field`."""
    node = schema
    for part in field.strip("/").split("/"):
        node = resolve(schema, resolve(schema, node)["properties"][part])
    return node


def referenced_schema(path: Path, relative_to: Path) -> Path | None:
    """The schema a YAML file's leading `yaml-language-server` line names, resolved from `relative_to`."""
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    if not first_line.startswith(SCHEMA_LINE):
        return None
    return (relative_to / first_line.removeprefix(SCHEMA_LINE).strip()).resolve()


def first_kind(path: Path) -> str:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    return str(documents[0]["kind"])


def kind_validators() -> dict[str, jsonschema.Draft202012Validator]:
    return {
        kind: jsonschema.Draft202012Validator(load_json(KINDS_DIR / f"{kind.lower()}.json")) for kind in KINDS
    }


# ---------------------------------------------------------------------------------------- kinds


def test_there_is_one_kind_schema_per_kind() -> None:
    assert sorted(p.stem for p in KIND_SCHEMA_FILES) == sorted(k.lower() for k in KINDS)


@pytest.mark.parametrize("path", KIND_SCHEMA_FILES, ids=ids(KIND_SCHEMA_FILES))
def test_kind_schema_is_a_valid_draft_2020_12_schema(path: Path) -> None:
    schema = load_json(path)
    assert schema["$schema"] == DRAFT_2020_12
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", KIND_SCHEMA_FILES, ids=ids(KIND_SCHEMA_FILES))
def test_kind_schema_compiles_with_jsonschema_rs(path: Path) -> None:
    jsonschema_rs.validator_for(load_json(path))


@pytest.mark.parametrize("path", KIND_SCHEMA_FILES, ids=ids(KIND_SCHEMA_FILES))
def test_kind_schema_names_its_kind_and_api_version(path: Path) -> None:
    schema = load_json(path)
    kind = next(k for k in KINDS if k.lower() == path.stem)
    assert schema["$id"] == f"https://paved.dev/schemas/kinds/{path.stem}.json"
    assert schema["properties"]["apiVersion"]["const"] == "paved/v1"
    assert schema["properties"]["kind"]["const"] == kind
    assert set(schema["required"]) >= {"apiVersion", "kind", "metadata", "spec"}


@pytest.mark.parametrize("path", KIND_SCHEMA_FILES, ids=ids(KIND_SCHEMA_FILES))
def test_kind_schema_is_self_contained(path: Path) -> None:
    refs = [node["$ref"] for _, node in subschemas(load_json(path)) if "$ref" in node]
    assert all(ref.startswith("#/") for ref in refs), refs


@pytest.mark.parametrize("path", KIND_SCHEMA_FILES, ids=ids(KIND_SCHEMA_FILES))
def test_every_field_of_a_kind_schema_has_a_title_and_a_description(path: Path) -> None:
    undocumented = [
        pointer
        for pointer, node in subschemas(load_json(path))
        if not (node.get("title") and node.get("description"))
    ]
    assert undocumented == []


@pytest.mark.parametrize("path", KIND_SCHEMA_FILES, ids=ids(KIND_SCHEMA_FILES))
def test_every_object_in_a_kind_schema_forbids_unknown_properties(path: Path) -> None:
    open_objects = []
    for pointer, node in subschemas(load_json(path)):
        if node.get("type") != "object" and "properties" not in node:
            continue
        if pointer in FREE_FORM_MAPS:
            if not isinstance(node.get("additionalProperties"), dict):
                open_objects.append(f"{pointer} (a free-form map must give a schema for its values)")
        elif node.get("additionalProperties") is not False:
            open_objects.append(pointer)
    assert open_objects == []


@pytest.mark.parametrize("path", KIND_SCHEMA_FILES, ids=ids(KIND_SCHEMA_FILES))
def test_kind_schema_examples_are_valid_requests(path: Path) -> None:
    schema = load_json(path)
    assert schema.get("examples"), "the root should show at least one complete request"
    validator = jsonschema.Draft202012Validator(schema)
    for example in schema["examples"]:
        validator.validate(example)


# ------------------------------------------------------------------------------------- policies


def test_policy_meta_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_json(SCHEMAS / "policy.schema.json"))
    jsonschema_rs.validator_for(load_json(SCHEMAS / "policy.schema.json"))


def test_there_are_guardrail_policies() -> None:
    assert len(POLICY_FILES) >= 7


@pytest.mark.parametrize("path", POLICY_FILES, ids=ids(POLICY_FILES))
def test_policy_follows_the_policy_format(path: Path) -> None:
    meta = load_json(SCHEMAS / "policy.schema.json")
    jsonschema.Draft202012Validator(meta).validate(load_json(path))


@pytest.mark.parametrize("path", POLICY_FILES, ids=ids(POLICY_FILES))
def test_policy_id_is_its_file_name(path: Path) -> None:
    policy = load_json(path)
    assert policy["id"] == path.stem
    assert policy["$id"] == f"https://paved.dev/schemas/policies/{path.stem}.json"


@pytest.mark.parametrize("path", POLICY_FILES, ids=ids(POLICY_FILES))
def test_policy_rule_is_a_valid_draft_2020_12_schema(path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(load_json(path)["rule"])


@pytest.mark.parametrize("path", POLICY_FILES, ids=ids(POLICY_FILES))
def test_policy_rule_compiles_with_jsonschema_rs(path: Path) -> None:
    jsonschema_rs.validator_for(load_json(path)["rule"])


@pytest.mark.parametrize("path", POLICY_FILES, ids=ids(POLICY_FILES))
@pytest.mark.parametrize("outcome", ["pass", "fail"])
def test_policy_has_test_cases_for_both_outcomes(path: Path, outcome: str) -> None:
    cases = sorted((POLICY_TESTS_DIR / path.stem / outcome).glob("*.yaml"))
    assert cases, f"add at least one case under {(POLICY_TESTS_DIR / path.stem / outcome).relative_to(ROOT)}"


def test_every_policy_case_folder_belongs_to_a_policy() -> None:
    policies = {p.stem for p in POLICY_FILES}
    orphans = [d.name for d in POLICY_TESTS_DIR.iterdir() if d.is_dir() and d.name not in policies]
    assert orphans == []


POLICY_CASES = sorted(POLICY_TESTS_DIR.glob("*/*/*.yaml"))


@pytest.mark.parametrize("path", POLICY_CASES, ids=ids(POLICY_CASES))
def test_policy_case_says_what_it_shows(path: Path) -> None:
    assert path.parent.name in ("pass", "fail")
    assert path.read_text(encoding="utf-8").startswith("# ")


@pytest.mark.parametrize("path", POLICY_CASES, ids=ids(POLICY_CASES))
def test_policy_case_documents_are_valid_requests(path: Path) -> None:
    validators = kind_validators()
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if document is not None:
            validators[document["kind"]].validate(document)


# ------------------------------------------------------------------------------------ catalogue


def test_the_catalogue_is_not_empty() -> None:
    assert CATALOG_FILES


@pytest.mark.parametrize("path", CATALOG_FILES, ids=ids(CATALOG_FILES))
def test_catalogue_file_points_editors_at_its_kind_schema(path: Path) -> None:
    schema = referenced_schema(path, path.parent)
    assert schema is not None, f"start the file with `{SCHEMA_LINE}<relative path to the kind schema>`"
    assert schema.is_file(), f"{schema} does not exist"
    assert schema == (KINDS_DIR / f"{first_kind(path).lower()}.json").resolve()


@pytest.mark.parametrize("path", CATALOG_FILES, ids=ids(CATALOG_FILES))
def test_catalogue_documents_are_valid_requests(path: Path) -> None:
    validators = kind_validators()
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if document is not None:
            validators[document["kind"]].validate(document)


# ------------------------------------------------------------------------------------- examples


@pytest.mark.parametrize("change", EXAMPLE_CHANGES, ids=[c.name for c in EXAMPLE_CHANGES])
def test_example_change_files_point_at_their_schema_once_copied(change: Path) -> None:
    for path in sorted(change.rglob("*.yaml")):
        destination = ROOT / path.relative_to(change)
        schema = referenced_schema(path, destination.parent)
        assert schema is not None, path
        assert schema == (KINDS_DIR / f"{first_kind(path).lower()}.json").resolve(), path


@pytest.mark.parametrize("change", EXAMPLE_CHANGES, ids=[c.name for c in EXAMPLE_CHANGES])
def test_example_change_deletes_only_existing_catalogue_files(change: Path) -> None:
    delete = change / "DELETE"
    paths = delete.read_text(encoding="utf-8").split() if delete.exists() else []
    for relative in paths:
        assert relative.startswith("catalog/"), relative
        assert (ROOT / relative).is_file(), f"{relative} is not in the catalogue"


# --------------------------------------------------------------------------------------- prices


def test_prices_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_json(SCHEMAS / "prices.schema.json"))
    jsonschema_rs.validator_for(load_json(SCHEMAS / "prices.schema.json"))


def test_prices_follow_their_schema() -> None:
    prices = yaml.safe_load((SCHEMAS / "prices.yaml").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(load_json(SCHEMAS / "prices.schema.json")).validate(prices)


@pytest.mark.parametrize("kind", ["Service", "Database"])
def test_every_value_of_a_priced_field_has_a_price(kind: str) -> None:
    price = yaml.safe_load((SCHEMAS / "prices.yaml").read_text(encoding="utf-8"))["prices"][kind]
    field = schema_at_field(load_json(KINDS_DIR / f"{kind.lower()}.json"), price["field"])
    assert sorted(price["monthly"]) == sorted(field["enum"])


def test_every_priced_field_exists_in_its_kind_schema() -> None:
    prices = yaml.safe_load((SCHEMAS / "prices.yaml").read_text(encoding="utf-8"))["prices"]
    for kind, price in prices.items():
        if "field" in price:
            assert "enum" in schema_at_field(load_json(KINDS_DIR / f"{kind.lower()}.json"), price["field"])
