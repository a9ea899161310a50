"""GitHub Actions workflow commands: annotations for findings, and the plan in the job log."""

from __future__ import annotations

import re

import pytest

from bot.model import Severity
from bot.render import actions, text
from tests.plans import empty_plan, finding, typical_plan

# --- annotations -------------------------------------------------------------------------------


def test_a_finding_becomes_a_command_with_file_line_column_and_rule_as_title() -> None:
    output = actions.render([finding("catalog/orders.yaml", 12, 5, "bad size", rule="schema")])

    assert output == "::error file=catalog/orders.yaml,line=12,col=5,title=schema::bad size\n"


@pytest.mark.parametrize("severity", ["error", "warning", "notice"])
def test_the_command_is_named_after_the_severity(severity: Severity) -> None:
    assert actions.render([finding(severity=severity)]).startswith(f"::{severity} ")


def test_line_and_column_are_left_out_for_a_finding_about_the_whole_file() -> None:
    output = actions.render([finding("catalog/a.yaml", 0, 0, "empty", rule="yaml")])

    assert output == "::error file=catalog/a.yaml,title=yaml::empty\n"


def test_the_column_is_left_out_when_only_the_line_is_known() -> None:
    assert "line=4,title=" in actions.render([finding(line=4, column=0)])


def test_the_hint_follows_the_message_on_an_escaped_new_line() -> None:
    output = actions.render([finding(message="bad size", hint="Use `medium`.")])

    assert output.endswith("::bad size%0Ahint: Use `medium`.\n")


def test_percent_signs_and_line_breaks_in_messages_are_escaped() -> None:
    output = actions.render([finding(message="100% full\r\nnext line")])

    assert output.endswith("::100%25 full%0D%0Anext line\n")


def test_colons_and_commas_in_messages_are_left_alone() -> None:
    assert actions.render([finding(message="key: a, b")]).endswith("::key: a, b\n")


def test_colons_and_commas_in_file_names_are_escaped() -> None:
    output = actions.render([finding(path="catalog/a:b,c%.yaml")])

    assert "file=catalog/a%3Ab%2Cc%25.yaml," in output


def test_colons_and_commas_in_the_title_are_escaped() -> None:
    assert "title=catalog%3Aunique%2Cnames::" in actions.render([finding(rule="catalog:unique,names")])


def test_a_message_cannot_start_a_command_of_its_own() -> None:
    output = actions.render([finding(message="x\n::warning::forged")])

    assert output.count("\n") == 1


def test_annotations_are_in_file_order() -> None:
    output = actions.render([finding("b.yaml"), finding("a.yaml")])

    assert [line.split(",")[0] for line in output.splitlines()] == ["::error file=a.yaml", "::error file=b.yaml"]


def test_no_findings_give_no_output() -> None:
    assert actions.render([]) == ""


# --- plans -------------------------------------------------------------------------------------


def test_a_plan_starts_with_the_annotations_for_its_findings() -> None:
    plan = typical_plan()

    assert actions.render_plan(plan).startswith(actions.render(plan.findings))


def test_a_plan_shows_its_text_rendering_in_a_collapsed_group() -> None:
    plan = typical_plan()
    lines = actions.render_plan(plan).splitlines()
    start, end = lines.index("::group::Paved plan"), lines.index("::endgroup::")

    # The text sits between the commands that pause and resume command processing.
    assert lines[start + 2 : end - 1] == text.render(plan).splitlines()


def test_commands_are_paused_inside_the_group_so_plan_text_cannot_run_any() -> None:
    plan = empty_plan(findings=(finding(message="x\n::error file=README.md::forged"),))
    lines = actions.render_plan(plan).splitlines()
    start = lines.index("::group::Paved plan")

    pause = re.fullmatch(r"::stop-commands::(paved-[0-9a-f]+)", lines[start + 1])
    assert pause is not None
    assert lines.index(f"::{pause.group(1)}::") > max(i for i, line in enumerate(lines) if "forged" in line)


def test_the_plan_text_is_never_coloured() -> None:
    assert "\033[" not in actions.render_plan(typical_plan())


def test_a_plan_with_errors_ends_with_an_error_summary() -> None:
    last = actions.render_plan(typical_plan()).splitlines()[-1]

    assert last == (
        "::error title=Paved plan::2 to create, 1 to update, 1 to rename, 1 to delete"
        " · cost +$120.00/month · 2 errors, 1 warning"
    )


def test_a_plan_without_errors_ends_with_a_notice_summary() -> None:
    last = actions.render_plan(empty_plan(findings=(finding(severity="warning"),))).splitlines()[-1]

    assert last == "::notice title=Paved plan::no changes · 1 warning"


def test_the_same_plan_gives_the_same_output() -> None:
    assert actions.render_plan(typical_plan()) == actions.render_plan(typical_plan())
