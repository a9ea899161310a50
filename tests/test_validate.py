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


# -- what a newcomer writes wrong, in words they can act on -----------------------------------------------

def as_seen(finding: Finding) -> tuple[int, int, str, str, str, str | None]:
    return (finding.line, finding.column, finding.pointer, finding.severity, finding.message, finding.hint)


def test_an_unquoted_version_is_one_finding_that_says_to_quote_it(rules: Rules) -> None:
    [finding] = findings_of(rules, DATABASE.format(size="small").replace('version: "16"', "version: 16"))
    assert as_seen(finding) == (
        9, 12, "/spec/version", "error",
        '`spec.version` must be text, one of "14", "15", "16", "17"; got the number 16',
        'Quote it: `version: "16"`. Unquoted, YAML reads 16 as a number.')


def test_a_boolean_where_text_is_expected_is_told_to_be_quoted(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace("  description: Orders.\n", "  description: Orders.\n  labels:\n"
                                                                           "    pci: true\n")
    [finding] = findings_of(rules, text)
    assert as_seen(finding) == (8, 10, "/metadata/labels/pci", "error",
                                '`metadata.labels.pci`: true is not of type "string"',
                                'Quote it: `pci: "true"`. Unquoted, YAML reads true as a boolean.')


def test_a_spec_field_written_at_the_top_level_is_told_to_move_under_spec(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace("  deletionProtection: true", "deletionProtection: true")
    [unknown] = [f for f in findings_of(rules, text) if f.message.startswith("unknown field")]
    assert as_seen(unknown) == (15, 1, "/deletionProtection", "error", "unknown field `deletionProtection`",
                                "`deletionProtection` is a field of `spec`: indent it under `spec:` (line 7).")


def test_a_spec_field_at_the_top_level_is_not_mistaken_for_a_top_level_field_it_resembles(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace('  version: "16"\n', "") + 'version: "16"\n'
    [unknown] = [f for f in findings_of(rules, text) if f.message.startswith("unknown field")]
    assert unknown.hint == "`version` is a field of `spec`: indent it under `spec:` (line 7)."


def test_a_field_dedented_out_of_a_nested_object_is_told_which_object_it_belongs_to(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace("    retentionDays: 14", "  retentionDays: 14")
    [unknown] = [f for f in findings_of(rules, text) if f.message.startswith("unknown field")]
    assert unknown.hint == "`retentionDays` is a field of `spec.backups`: indent it under `backups:` (line 12)."


def test_a_required_field_written_outside_its_object_says_where_it_stands(rules: Rules) -> None:
    text = DATABASE.format(size="small").replace("  deletionProtection: true", "deletionProtection: true")
    [required] = [f for f in findings_of(rules, text) if f.message.endswith("is required")]
    assert as_seen(required) == (7, 1, "/spec", "error", "`spec.deletionProtection` is required",
                                 "`deletionProtection` is written on line 15, outside `spec`: indent it under `spec:`.")


def test_an_empty_value_is_one_finding_that_says_to_fill_it_in(rules: Rules) -> None:
    [finding] = findings_of(rules, DATABASE.format(size="small").replace("service: orders", "service: ''"))
    assert as_seen(finding) == (
        11, 12, "/spec/service", "error", "`spec.service` is empty: fill it in",
        "spec.service: The name of the Service that owns the database. Only that service gets credentials to "
        "connect to it.")
