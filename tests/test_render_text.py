"""Terminal output of `paved plan` and `paved validate`."""

from __future__ import annotations

import re

from bot.model import FieldChange, TeamCost
from bot.render import text
from tests.plans import change, empty_plan, finding, rules_change_plan, typical_plan, upgrade_plan

ESC = "\033["


def plan_lines() -> list[str]:
    return text.render(typical_plan()).splitlines()


# --- plans -------------------------------------------------------------------------------------


def test_the_headline_names_the_revisions_and_counts_the_changes() -> None:
    assert plan_lines()[0] == (
        "Plan 3f1c2a9 → 9a8b7c6: 2 to create, 1 to update, 1 to rename, 1 to delete · cost +$120.00/month"
    )


def test_a_creation_starts_with_a_plus() -> None:
    assert any(line.startswith("+ create Service/search  ") for line in plan_lines())


def test_an_update_starts_with_a_tilde_and_lists_its_fields_indented() -> None:
    lines = plan_lines()
    update = next(i for i, line in enumerate(lines) if line.startswith("~ update Database/orders-db"))

    assert lines[update + 1 : update + 3] == [
        '    spec.size: "small" → "medium"',
        "    spec.backups.retentionDays: 7 → 14",
    ]


def test_added_and_removed_fields_say_so() -> None:
    fields = (
        FieldChange("/spec/waitTimer", "add", after=10),
        FieldChange("/metadata/labels/app.kubernetes.io~1tier", "remove", before="web"),
    )
    output = text.render(empty_plan(changes=(change("update", "Environment", "prod", fields=fields),)))

    assert "    spec.waitTimer: added 10" in output
    assert '    metadata.labels["app.kubernetes.io/tier"]: removed (was "web")' in output


def test_a_deletion_starts_with_a_minus_and_is_marked_destructive() -> None:
    assert any(line.startswith("- delete Access/data-reads-orders (destructive)") for line in plan_lines())


def test_a_rename_shows_the_old_and_new_identity() -> None:
    assert any(line.startswith("→ rename Service/payments-api → Service/checkout-api") for line in plan_lines())


def test_each_change_shows_its_location_owner_and_cost() -> None:
    assert "~ update Database/orders-db  catalog/orders.yaml:1  owner: payments  +$80.00/month" in plan_lines()


def test_a_plan_without_changes_says_so_in_the_headline() -> None:
    assert text.render(empty_plan()).splitlines()[0] == "Plan 3f1c2a9 → 9a8b7c6: no changes"


def test_team_costs_are_aligned_and_flag_teams_over_budget() -> None:
    output = text.render(typical_plan())

    assert "  payments   $440.00 → $520.00  +$80.00  budget $500.00  over budget" in output
    assert "  data        $60.00 →  $60.00    $0.00  no budget" in output


def test_rule_changes_are_said_to_apply_only_after_merge() -> None:
    output = text.render(rules_change_plan())

    assert "not used to judge this pull request" in output
    assert "take effect after merge" in output
    assert "  modified schemas/policies/db-backup-retention.json" in output


def test_the_plan_ends_with_the_findings_and_their_summary() -> None:
    lines = plan_lines()

    assert lines[-1] == "2 errors, 1 warning in 2 of 14 files"
    assert "catalog/search.yaml:30:5: error[schema] `sise` is not a known key in a Database request" in lines


def test_a_plan_ends_with_a_newline() -> None:
    output = text.render(typical_plan())

    assert output.endswith("\n")
    assert not output.endswith("\n\n")


# --- findings ----------------------------------------------------------------------------------


def test_each_finding_is_one_line_in_compiler_format() -> None:
    output = text.render_findings([finding("catalog/a.yaml", 3, 7, "bad value", rule="schema")])

    assert output.splitlines()[0] == "catalog/a.yaml:3:7: error[schema] bad value"


def test_a_hint_goes_on_an_indented_line_below_its_finding() -> None:
    output = text.render_findings([finding(hint="Did you mean `size`?")])

    assert output.splitlines()[1] == "    hint: Did you mean `size`?"


def test_findings_are_sorted_by_file_and_line() -> None:
    output = text.render_findings([finding("b.yaml", 1), finding("a.yaml", 9), finding("a.yaml", 2)])

    locations = [line.split(": ")[0] for line in output.splitlines()[:3]]

    assert locations == ["a.yaml:2:5", "a.yaml:9:5", "b.yaml:1:5"]


def test_a_finding_about_the_whole_file_shows_only_the_path() -> None:
    output = text.render_findings([finding("catalog/a.yaml", 0, 0, "empty file", severity="warning", rule="yaml")])

    assert output.splitlines()[0] == "catalog/a.yaml: warning[yaml] empty file"


def test_an_unknown_column_is_left_out_of_the_location() -> None:
    assert text.render_findings([finding("a.yaml", 4, 0)]).startswith("a.yaml:4: error")


def test_continuation_lines_of_a_message_are_indented() -> None:
    output = text.render_findings([finding(message="first\nsecond")])

    assert output.splitlines()[:2] == ["catalog/orders.yaml:12:5: error[schema] first", "    second"]


def test_the_summary_counts_findings_by_severity_and_files() -> None:
    findings = [
        finding("a.yaml", severity="error"),
        finding("a.yaml", 20, severity="error"),
        finding("b.yaml", severity="error"),
        finding("b.yaml", 30, severity="warning"),
    ]

    assert text.render_findings(findings, files_checked=14).splitlines()[-1] == "3 errors, 1 warning in 2 of 14 files"


def test_the_summary_without_a_file_count_counts_files_with_findings() -> None:
    summary = text.render_findings([finding(severity="notice")]).splitlines()[-1]

    assert summary == "1 notice in 1 file"


def test_a_clean_run_says_how_many_files_were_checked() -> None:
    assert text.render_findings([], files_checked=14) == "✓ 14 files, no findings\n"


def test_a_clean_run_without_a_file_count_says_no_findings() -> None:
    assert text.render_findings([]) == "✓ no findings\n"


def test_control_characters_in_messages_are_shown_escaped() -> None:
    output = text.render_findings([finding(message="evil\x1b[2Jclear")])

    assert "\x1b" not in output
    assert "evil\\x1b[2Jclear" in output


# --- colour ------------------------------------------------------------------------------------


def test_there_is_no_colour_unless_asked_for() -> None:
    assert ESC not in text.render(typical_plan())
    assert ESC not in text.render_findings(typical_plan().findings, files_checked=14)


def test_colour_is_added_when_asked_for() -> None:
    assert f"{ESC}32m+ create Service/search{ESC}0m" in text.render(typical_plan(), color=True)


def test_findings_are_coloured_by_severity_when_asked_for() -> None:
    output = text.render_findings([finding(severity="warning", rule="w")], color=True)

    assert f"{ESC}33mwarning[w]{ESC}0m" in output


def test_colour_does_not_change_the_words() -> None:
    plain = text.render(typical_plan())
    coloured = text.render(typical_plan(), color=True)

    assert _strip_ansi(coloured) == plain


def _strip_ansi(output: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", output)


def test_a_cost_that_is_not_a_number_is_shown_as_unknown() -> None:
    plan = empty_plan(costs=(TeamCost("payments", float("nan"), 1.0),))

    assert "  payments  $? → $1.00" in text.render(plan)


def test_golden_path_upgrades_are_listed_one_service_a_line() -> None:
    lines = text.render(upgrade_plan()).splitlines()
    assert "Golden-path upgrades (a pull request on each repository after the merge):" in lines
    assert "  Service/legacy: template fastapi-service changed; no pull request: it opted out (updates: manual)" \
        in lines
