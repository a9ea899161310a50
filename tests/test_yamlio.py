"""Reading request files: YAML 1.2 semantics, exact positions, and every problem as a finding."""

from __future__ import annotations

import math
import time

from bot.yamlio import MAX_NODES, load


def only_document(text: str) -> object:
    loaded = load("catalog/x.yaml", text.encode())
    assert loaded.findings == [], loaded.findings
    assert len(loaded.documents) == 1
    return loaded.documents[0].data


def test_yes_no_on_off_stay_strings_as_in_yaml_1_2() -> None:
    data = only_document("a: no\nb: off\nc: y\nd: yes\ne: On\n")
    assert data == {"a": "no", "b": "off", "c": "y", "d": "yes", "e": "On"}


def test_true_false_and_null_are_the_core_schema_ones() -> None:
    data = only_document("a: true\nb: False\nc: ~\nd: null\ne:\n")
    assert data == {"a": True, "b": False, "c": None, "d": None, "e": None}


def test_a_leading_zero_does_not_make_an_octal_number() -> None:
    assert only_document("a: 010\nb: 0o10\nc: 0x1f\n") == {"a": 10, "b": 8, "c": 31}


def test_floats_and_infinity_follow_yaml_1_2() -> None:
    data = only_document("a: 1.5\nb: -.inf\nc: 1e3\n")
    assert isinstance(data, dict)
    assert data["a"] == 1.5 and data["b"] == -math.inf and data["c"] == 1000.0


def test_timestamps_stay_strings_so_json_schema_formats_apply() -> None:
    assert only_document("rotate: 2026-11-28\nat: 2026-11-28T10:00:00Z\n") == {
        "rotate": "2026-11-28", "at": "2026-11-28T10:00:00Z"}


def test_quoted_and_str_tagged_scalars_stay_strings() -> None:
    assert only_document("a: '16'\nb: !!str 010\nc: \"true\"\n") == {"a": "16", "b": "010", "c": "true"}


def test_a_byte_order_mark_is_ignored() -> None:
    assert only_document("\ufeffa: 1\n") == {"a": 1}


def test_every_key_and_value_has_its_line_and_column() -> None:
    loaded = load("f.yaml", b"metadata:\n  name: api\nspec:\n  dependsOn:\n    - Service/db\n")
    doc = loaded.documents[0]
    assert doc.keys["/metadata/name"] == (2, 3)
    assert doc.values["/metadata/name"] == (2, 9)
    assert doc.values["/spec/dependsOn/0"] == (5, 7)


def test_a_collection_is_located_at_its_key_not_its_first_child() -> None:
    doc = load("f.yaml", b"kind: Team\nspec:\n  members: [a]\n").documents[0]
    assert doc.position("/spec") == (2, 1)


def test_a_missing_node_is_located_at_its_nearest_ancestor() -> None:
    doc = load("f.yaml", b"kind: Team\nspec:\n  members: [a]\n").documents[0]
    assert doc.position("/spec/budget/monthly") == (2, 1)


def test_several_documents_in_one_file_are_numbered_with_their_start_lines() -> None:
    loaded = load("f.yaml", b"a: 1\n---\nb: 2\n---\nc: 3\n")
    assert [(d.index, d.line, d.data) for d in loaded.documents] == [
        (0, 1, {"a": 1}), (1, 3, {"b": 2}), (2, 5, {"c": 3})]


def test_a_duplicate_key_is_a_finding_at_the_second_key() -> None:
    loaded = load("f.yaml", b"name: a\nsize: small\nname: b\n")
    [finding] = loaded.findings
    assert (finding.line, finding.column, finding.pointer) == (3, 1, "/name")
    assert finding.rule == "yaml.duplicate-key"
    assert "first defined on line 1" in finding.message


def test_a_tab_used_for_indentation_is_a_finding_at_the_tab() -> None:
    loaded = load("f.yaml", b"spec:\n\tsize: small\n")
    [finding] = loaded.findings
    assert finding.rule == "yaml.tab"
    assert (finding.line, finding.column) == (2, 1)
    assert finding.hint and "spaces" in finding.hint


def test_a_syntax_error_is_a_finding_with_its_position() -> None:
    loaded = load("f.yaml", b"a: 1\nb: [1, 2\nc: 3\n")
    [finding] = loaded.findings
    assert finding.rule == "yaml.syntax"
    assert finding.line >= 2
    assert loaded.broken


def test_documents_before_a_syntax_error_are_kept() -> None:
    loaded = load("f.yaml", b"a: 1\n---\nb: [\n")
    assert [d.data for d in loaded.documents] == [{"a": 1}]
    assert loaded.broken


def test_a_file_that_is_not_utf8_is_a_finding_naming_the_line_and_column() -> None:
    loaded = load("f.yaml", b"a: 1\nb: caf\xe9\n")
    [finding] = loaded.findings
    assert finding.rule == "yaml.encoding"
    assert (finding.line, finding.column) == (2, 7)
    assert "0xe9" in finding.message


def test_a_file_over_the_size_limit_is_refused_without_parsing() -> None:
    loaded = load("f.yaml", b"a: " + b"x" * 200 + b"\n", max_bytes=100)
    [finding] = loaded.findings
    assert finding.rule == "yaml.size"
    assert loaded.documents == []


def test_an_alias_bomb_is_refused() -> None:
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefg"):
        prev = "abcdefg"[i]
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    loaded = load("bomb.yaml", "\n".join(levels).encode())
    assert [f.rule for f in loaded.findings] == ["yaml.alias-bomb"]
    assert str(f"{MAX_NODES:,}") in loaded.findings[0].message


def test_small_anchors_and_aliases_still_work() -> None:
    assert only_document("a: &x {size: small}\nb: *x\n") == {"a": {"size": "small"}, "b": {"size": "small"}}


def test_an_alias_inside_its_own_anchor_is_a_finding() -> None:
    loaded = load("f.yaml", b"a: &a [1, *a]\n")
    assert [f.rule for f in loaded.findings] == ["yaml.alias"]


def test_an_unknown_tag_is_a_finding() -> None:
    loaded = load("f.yaml", b"a: !!python/object:os.system x\n")
    assert [f.rule for f in loaded.findings] == ["yaml.tag"]


def test_a_tag_that_does_not_fit_its_value_is_a_finding() -> None:
    loaded = load("f.yaml", b"a: !!int twelve\n")
    assert [f.rule for f in loaded.findings] == ["yaml.tag"]


def test_a_collection_as_a_mapping_key_is_a_finding() -> None:
    loaded = load("f.yaml", b"? [a, b]\n: 1\n")
    assert [f.rule for f in loaded.findings] == ["yaml.key"]


def test_numeric_keys_are_read_as_their_text() -> None:
    assert only_document("labels:\n  2024: yes\n") == {"labels": {"2024": "yes"}}


# -- syntax errors in a person's words ---------------------------------------------------------------------

def only_finding(text: str) -> tuple[int, int, str, str, str, str | None]:
    loaded = load("f.yaml", text.encode())
    [finding] = loaded.findings
    assert loaded.broken
    return (finding.line, finding.column, finding.pointer, finding.severity, finding.message, finding.hint)


REQUEST = "apiVersion: paved/v1\nkind: Team\nmetadata:\n  name: search\n  owner: search\nspec:\n  members: [a]\n"


def test_two_requests_without_a_separator_are_one_finding_where_the_second_starts() -> None:
    loaded = load("f.yaml", (REQUEST + REQUEST.replace("search", "growth")).encode())
    [finding] = loaded.findings
    assert (finding.line, finding.column, finding.pointer, finding.severity, finding.rule) == (
        8, 1, "/apiVersion", "error", "yaml.missing-separator")
    assert finding.message == ("a second request seems to start on line 8, in the same YAML document as the first: "
                               "the `---` that separates them is probably missing")
    assert finding.hint == ("Put a line holding only `---` just above line 8, so that YAML reads two requests "
                            "instead of one whose fields are given twice.")
    assert loaded.broken and loaded.documents == []


def test_a_request_after_a_separator_keeps_the_ones_before_it_when_the_next_separator_is_missing() -> None:
    loaded = load("f.yaml", (REQUEST + "---\n" + REQUEST + REQUEST).encode())
    assert [d.data["metadata"]["name"] for d in loaded.documents] == ["search"]
    assert [(f.line, f.rule) for f in loaded.findings] == [(16, "yaml.missing-separator")]


def test_a_line_indented_more_than_the_field_above_it_is_explained() -> None:
    assert only_finding("metadata:\n  name: x\n  owner: y\n   description: z\n") == (
        4, 4, "", "error",
        "line 4 is indented more than line 3 above it (3 spaces against 2), so YAML reads it as more of line 3's value",
        "Indent `description:` by 2 spaces, like `owner:` above it, if it is a field beside it.")


def test_a_line_indented_to_no_level_above_it_is_told_which_levels_it_could_take() -> None:
    assert only_finding("metadata:\n  name: x\n  owner: y\n description: z\nspec: {}\n") == (
        4, 2, "", "error", "line 4 is indented by 1 space, which lines up with nothing above it",
        "Indent `description:` like the line it belongs with: by 2 spaces like `owner:`, or not at all like "
        "`metadata:`.")


def test_a_list_item_indented_to_no_level_names_the_item_above_it() -> None:
    assert only_finding("spec:\n  members:\n    - a\n   - b\n") == (
        4, 4, "", "error", "line 4 is indented by 3 spaces, which lines up with nothing above it",
        "Indent the item `- b` like the line it belongs with: by 4 spaces like the item `- a`, or by 2 spaces like "
        "`members:`.")


def test_a_value_holding_a_colon_and_a_space_is_told_to_be_quoted() -> None:
    assert only_finding("metadata:\n  description: Reads: payments\n") == (
        2, 3, "", "error", "the value of `description` on line 2 holds `: `, which YAML reads as the start of another "
        "field", 'Quote the value: `description: "Reads: payments"`.')


def test_a_field_without_a_colon_is_shown_written_with_one() -> None:
    assert only_finding("spec:\n  engine: postgres\n  deletionProtection true\n  size: small\n") == (
        3, 3, "", "error", "line 3 has no `:` after `deletionProtection true`: a field is written `key: value`",
        "Write `deletionProtection: true`.")


def test_an_unclosed_quote_names_the_line_it_opens_on() -> None:
    assert only_finding('a: "abc\nb: 1\n') == (
        1, 1, "", "error", "the quoted value that starts on line 1 is never closed",
        "Add the closing quote at the end of the value.")


def test_a_very_long_misindented_line_is_explained_at_once() -> None:
    started = time.perf_counter()
    line, *_ = only_finding("metadata:\n  name: x\n   a" + " " * 200_000 + "b: c\n")
    assert line == 3 and time.perf_counter() - started < 1
