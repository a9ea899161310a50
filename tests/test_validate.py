"""Judging one request file on its own: envelope, kind schema, and findings a person can act on."""

from __future__ import annotations

import textwrap

import pytest

from bot.adapters.repo import FolderTree
from bot.model import Finding
from bot.rules import Rules, load_rules
from bot.validate import check_file, field_name
from tests.conftest import PROJECT


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(FolderTree(PROJECT))


def findings_of(rules: Rules, text: str) -> list[Finding]:
    return check_file("catalog/x.yaml", textwrap.dedent(text).lstrip().encode(), "blob", rules).findings


DATABASE = textwrap.dedent("""
    apiVersion: paved/v1
    kind: Database
    metadata:
      name: orders-db
      owner: payments
      description: Orders.
    spec:
      engine: postgres
      version: "16"
      size: {size}
      service: orders
      backups:
        enabled: true
        retentionDays: 14
      deletionProtection: true
""").lstrip()


def test_a_valid_request_has_no_findings_and_an_identity(rules: Rules) -> None:
    result = check_file("catalog/x.yaml", textwrap.dedent(DATABASE.format(size="small")).encode(), "b", rules)
    assert result.findings == []
    [resource] = result.resources
    assert (resource.identity, resource.owner, resource.line) == ("Database/orders-db", "payments", 2)


def test_an_enum_typo_points_at_the_value_and_suggests_the_nearest_choice(rules: Rules) -> None:
    [finding] = findings_of(rules, DATABASE.format(size="medum"))
    assert (finding.line, finding.column, finding.pointer) == (10, 9, "/spec/size")
    assert "`spec.size` must be one of small, medium, large" in finding.message
    assert finding.hint == "did you mean `medium`?"


def test_a_misspelled_field_points_at_the_key_and_suggests_the_field(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace("deletionProtection", "deletionProtecton")
    found = findings_of(rules, text)
    unknown = [f for f in found if f.message.startswith("unknown field")]
    assert len(unknown) == 1
    assert (unknown[0].line, unknown[0].column) == (15, 3)
    assert unknown[0].hint == "did you mean `deletionProtection`?"


def test_a_missing_required_field_points_at_its_parent_key_and_explains_the_field(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace("  service: orders\n", "")
    [finding] = findings_of(rules, text)
    assert finding.message == "`spec.service` is required"
    assert (finding.line, finding.column) == (7, 1)
    assert finding.hint and finding.hint.startswith("service: ")


def test_all_problems_of_a_file_are_reported_in_one_pass(rules: Rules) -> None:
    text = DATABASE.format(size="huge").replace("engine: postgres", "engine: mysql") + "---\nkind: Nope\n"
    found = findings_of(rules, text)
    assert sorted((f.document, f.pointer) for f in found) == [
        (0, "/spec/engine"), (0, "/spec/size"), (1, ""), (1, "/kind")]


def test_a_wrong_api_version_is_named(rules: Rules) -> None:
    [finding] = findings_of(rules, DATABASE.format(size="small").replace("paved/v1", "paved/v2"))
    assert finding.message == "`apiVersion` must be `paved/v1`; got 'paved/v2'"
    assert finding.line == 1


def test_an_unknown_kind_suggests_the_nearest_kind(rules: Rules) -> None:
    [finding] = findings_of(rules, "apiVersion: paved/v1\nkind: Databse\nmetadata: {name: x}\n")
    assert finding.message == "unknown kind 'Databse'"
    assert finding.hint == "did you mean `Database`?"


def test_a_document_that_is_not_a_mapping_is_an_error(rules: Rules) -> None:
    [finding] = findings_of(rules, "- just\n- a list\n")
    assert finding.severity == "error" and "must be a mapping" in finding.message


def test_an_empty_document_is_a_warning_at_its_position(rules: Rules) -> None:
    text = DATABASE.format(size="small") + "---\n"
    [finding] = findings_of(rules, text)
    assert (finding.severity, finding.rule, finding.document) == ("warning", "yaml.empty", 1)


def test_a_file_with_only_comments_is_a_warning(rules: Rules) -> None:
    [finding] = findings_of(rules, "# nothing yet\n")
    assert (finding.severity, finding.rule) == ("warning", "yaml.empty")


def test_a_name_that_is_not_a_dns_label_is_an_error_on_the_name(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace("name: orders-db", "name: Orders_DB")
    [finding] = [f for f in findings_of(rules, text) if f.pointer == "/metadata/name"]
    assert (finding.line, finding.column) == (4, 9)


def test_yaml_1_1_booleans_are_strings_so_the_schema_catches_them(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace("deletionProtection: true", "deletionProtection: yes")
    [finding] = findings_of(rules, text)
    assert finding.pointer == "/spec/deletionProtection"


def test_field_names_read_as_people_write_them() -> None:
    assert field_name("/spec/dependsOn/0") == "spec.dependsOn[0]"
    assert field_name("") == "(document)"
