# Golden files: tests/golden/*.md hold the exact comments expected for the sample plans. After an
# intended change to the output, rewrite them and review their diff like any other change:
#
#     PAVED_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render_markdown.py
"""The sticky pull request comment: what reviewers see, and how it shrinks to fit GitHub's limit."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from bot.model import Change, FieldChange, Plan, RuleChange, TeamCost
from bot.render import markdown
from bot.render.markdown import MARKER
from tests.plans import (
    BASE,
    HEAD,
    REPO_URL,
    change,
    empty_plan,
    finding,
    huge_plan,
    rules_change_plan,
    typical_plan,
    upgrade_plan,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("PAVED_UPDATE_GOLDEN") == "1"
FULL_LIST = "run `paved plan` locally for the full list"


def assert_matches_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(actual.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing; create it with PAVED_UPDATE_GOLDEN=1"
    assert actual == path.read_bytes().decode("utf-8")


def section(comment: str, heading: str) -> str:
    """The text of one `### heading` section of the comment."""
    start = comment.index(f"### {heading}")
    end = comment.find("\n### ", start + 1)
    return comment[start : end if end != -1 else len(comment)]


@pytest.fixture(scope="module")
def huge_comment() -> str:
    """The comment for 5,000 changes and 20,000 findings, rendered once: it takes a moment."""
    return markdown.render(huge_plan(changes=5000, findings=20000), repo_url=REPO_URL)


def unescaped_pipes(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row))


# --- the whole comment -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("golden", "plan", "repo_url", "limit"),
    [
        pytest.param("typical_with_links.md", typical_plan(), REPO_URL, 65536, id="typical-with-links"),
        pytest.param("typical_without_links.md", typical_plan(), None, 65536, id="typical-without-links"),
        pytest.param("no_changes.md", empty_plan(), REPO_URL, 65536, id="no-changes"),
        pytest.param("rules_change.md", rules_change_plan(), REPO_URL, 65536, id="rules-change"),
        pytest.param("shortened.md", huge_plan(changes=40, findings=120), None, 4000, id="shortened"),
    ],
)
def test_comment_matches_its_golden_file(golden: str, plan: Plan, repo_url: str | None, limit: int) -> None:
    assert_matches_golden(golden, markdown.render(plan, repo_url=repo_url, limit=limit))


@pytest.mark.parametrize("plan", [empty_plan(), typical_plan(), rules_change_plan()])
def test_the_marker_is_the_first_line(plan: Plan) -> None:
    assert markdown.render(plan).splitlines()[0] == MARKER


def test_the_marker_is_the_first_line_of_a_shortened_comment_too(huge_comment: str) -> None:
    assert huge_comment.splitlines()[0] == MARKER


def test_the_summary_follows_the_marker_with_changes_cost_and_findings() -> None:
    summary = markdown.render(typical_plan()).splitlines()[1]

    assert summary == (
        "**Plan:** 2 to create, 1 to update, 1 to rename, 1 to delete · cost +$120.00/month · ❌ 2 errors, 1 warning"
    )


def test_a_plan_without_changes_or_findings_says_so() -> None:
    assert markdown.render(empty_plan()).splitlines()[1] == "**Plan:** ✅ no changes"


def test_a_clean_plan_with_changes_says_no_problems_were_found() -> None:
    plan = empty_plan(changes=(change("create", "Service", "search"),))

    assert markdown.render(plan).splitlines()[1] == "**Plan:** 1 to create · ✅ no problems found"


def test_the_comment_ends_with_a_single_newline() -> None:
    comment = markdown.render(typical_plan())

    assert comment.endswith("\n")
    assert not comment.endswith("\n\n")


# --- changes -----------------------------------------------------------------------------------


def test_each_change_is_a_row_with_action_resource_owner_file_and_cost() -> None:
    comment = markdown.render(typical_plan())

    assert "| ✏️ update | `Database/orders-db` | payments | `catalog/orders.yaml:1` | +$80.00 |" in comment


def test_a_rename_shows_the_old_identity() -> None:
    comment = markdown.render(typical_plan())

    assert "`Service/checkout-api` (was `Service/payments-api`)" in comment


def test_deletions_have_their_own_section_marked_destructive() -> None:
    deletions = section(markdown.render(typical_plan()), "⚠️ Deletions (destructive)")

    assert "| ⚠️ delete | `Access/data-reads-orders` |" in deletions
    assert "Access/data-reads-orders" not in section(markdown.render(typical_plan()), "Changes")


def test_field_changes_show_pointer_old_and_new_values_as_compact_json() -> None:
    details = section(markdown.render(typical_plan()), "Details")

    assert "<details><summary><code>Database/orders-db</code> · update · 2 fields changed</summary>" in details
    assert '- `spec.size`: `"small"` → `"medium"`' in details


def test_mapping_values_are_shown_on_one_line_with_sorted_keys() -> None:
    added = FieldChange("/spec/backups", "add", after={"retentionDays": 14, "enabled": True})
    plan = empty_plan(changes=(change("update", "Database", "orders-db", fields=(added,)),))

    assert '- `spec.backups`: added `{"enabled":true,"retentionDays":14}`' in markdown.render(plan)


def test_very_long_values_are_shortened_in_the_details() -> None:
    long_value = "x" * 1000
    plan = empty_plan(
        changes=(change("update", fields=(FieldChange("/metadata/description", "replace", "a", long_value),)),)
    )

    details = section(markdown.render(plan), "Details")

    assert long_value not in details
    assert "…`" in details


# --- escaping ----------------------------------------------------------------------------------


def test_a_pipe_in_a_table_cell_is_escaped() -> None:
    plan = empty_plan(changes=(change("create", "Service", "a|b", owner="team|x"),))

    row = next(line for line in markdown.render(plan).splitlines() if "create" in line and "|" in line)

    assert "`Service/a\\|b`" in row
    assert "team\\|x" in row


def test_table_rows_keep_their_columns_whatever_the_names_contain() -> None:
    plan = empty_plan(
        changes=(change("create", "Service", "x|`|y", owner="o|`w|", path="catalog/p|q`.yaml"),),
        costs=(TeamCost("t|e`am", 0.0, 10.0, budget=5.0),),
    )
    comment = markdown.render(plan)

    rows = [line for line in comment.splitlines() if line.startswith("| ") and "---" not in line]

    assert rows
    assert {unescaped_pipes(row) for row in rows} == {6, 7}  # 5-column and 6-column tables


def test_a_backtick_in_a_code_span_gets_a_longer_fence() -> None:
    plan = empty_plan(changes=(change("create", "Service", "we`ird"),))

    assert "``Service/we`ird``" in markdown.render(plan)


def test_a_code_span_starting_with_a_backtick_is_padded_so_it_survives() -> None:
    comment = markdown.render(empty_plan(findings=(finding(rule="`odd`"),)))

    assert "`` `odd` ``" in comment


def test_markdown_in_owner_names_is_shown_literally() -> None:
    plan = empty_plan(changes=(change("create", owner="*bold*_[x](y)"),))

    assert "\\*bold\\*\\_\\[x\\](y)" in markdown.render(plan)


def test_messages_cannot_close_html_blocks_or_forge_the_marker() -> None:
    sneaky = finding(message=f"oops </details> {MARKER} <img src=x>")
    comment = markdown.render(empty_plan(findings=(sneaky,)))

    assert comment.count(MARKER) == 1
    assert "</details>" not in comment
    assert "&lt;/details&gt;" in comment


def test_code_spans_in_messages_are_kept() -> None:
    comment = markdown.render(empty_plan(findings=(finding(message="`size` must be one of `small`, `<none>`"),)))

    assert "`size` must be one of `small`, `<none>`" in comment


def test_mentions_in_messages_do_not_notify_anyone() -> None:
    comment = markdown.render(empty_plan(findings=(finding(message="ask @platform-team", hint="or @alice"),)))

    assert "@platform-team" not in comment
    assert "@alice" not in comment
    assert "@&#8203;platform-team" in comment


def test_line_breaks_in_messages_stay_inside_their_list_item() -> None:
    comment = markdown.render(empty_plan(findings=(finding(message="first\n\n### not a heading"),)))

    assert "\n### not a heading" not in comment


# --- links -------------------------------------------------------------------------------------


def test_with_a_repo_url_locations_link_to_the_line_at_the_head_revision() -> None:
    comment = markdown.render(typical_plan(), repo_url=REPO_URL)

    assert f"[catalog/search.yaml:30]({REPO_URL}/blob/{HEAD}/catalog/search.yaml#L30)" in comment


def test_deleted_resources_link_to_the_base_revision_where_their_file_still_exists() -> None:
    deletions = section(markdown.render(typical_plan(), repo_url=REPO_URL), "⚠️ Deletions (destructive)")

    assert f"[catalog/access.yaml:8]({REPO_URL}/blob/{BASE}/catalog/access.yaml#L8)" in deletions


def test_a_finding_about_a_whole_file_links_to_the_file_without_a_line() -> None:
    comment = markdown.render(typical_plan(), repo_url=REPO_URL)

    assert f"[catalog/search.yaml]({REPO_URL}/blob/{HEAD}/catalog/search.yaml)" in comment


def test_a_trailing_slash_on_the_repo_url_is_ignored() -> None:
    comment = markdown.render(typical_plan(), repo_url=REPO_URL + "/")

    assert f"{REPO_URL}/blob/" in comment
    assert f"{REPO_URL}//blob/" not in comment


def test_paths_are_percent_encoded_in_links() -> None:
    plan = empty_plan(findings=(finding(path="catalog/my team#1.yaml", line=3),))

    assert f"({REPO_URL}/blob/{HEAD}/catalog/my%20team%231.yaml#L3)" in markdown.render(plan, repo_url=REPO_URL)


def test_without_a_repo_url_locations_are_plain_path_and_line() -> None:
    comment = markdown.render(typical_plan())

    assert "`catalog/search.yaml:30`" in comment
    assert "](" not in comment


# --- findings, costs and rules -----------------------------------------------------------------


def test_findings_are_grouped_by_file_with_rule_message_and_hint() -> None:
    findings = section(markdown.render(typical_plan()), "Findings")

    assert findings.index("**`catalog/orders.yaml`**") < findings.index("**`catalog/search.yaml`**")
    assert (
        "- ❌ **error** `catalog/search.yaml:30` `schema`: `sise` is not a known key in a Database request\n"
        "  - 💡 Did you mean `size`?"
    ) in findings


def test_each_team_cost_shows_before_after_delta_budget_and_whether_it_is_over() -> None:
    costs = section(markdown.render(typical_plan()), "Cost by team")

    assert "| payments | $440.00 | $520.00 | +$80.00 | $500.00 | ⚠️ **over budget** |" in costs
    assert "| discovery | $0.00 | $40.00 | +$40.00 | $300.00 | within budget |" in costs
    assert "| data | $60.00 | $60.00 | $0.00 | — | no budget |" in costs


def test_rule_changes_are_said_to_apply_only_after_merge() -> None:
    rules = section(markdown.render(rules_change_plan()), "📜 Platform change")

    assert "**not** used to judge this pull request" in rules
    assert "take effect after merge" in rules
    assert "the platform owners approve" in rules
    assert "- `schemas/policies/db-backup-retention.json` (modified)" in rules


def test_a_platform_change_says_what_it_affects() -> None:
    plan = dataclasses.replace(rules_change_plan(), platform_impact=(
        "template fastapi-service changed: 7 services will get an upgrade pull request",))
    rules = section(markdown.render(plan), "📜 Platform change")
    assert "- template fastapi-service changed: 7 services will get an upgrade pull request" in rules


def test_there_is_no_rules_change_section_when_no_rules_change() -> None:
    assert "Platform change" not in markdown.render(typical_plan())


# --- fitting the limit -------------------------------------------------------------------------


def test_a_plan_with_5000_changes_and_20000_findings_stays_under_the_limit(huge_comment: str) -> None:
    assert len(huge_comment) <= 65536


def test_the_cut_says_exactly_how_many_findings_are_not_shown(huge_comment: str) -> None:
    shown = len(re.findall(r"^- (?:❌|⚠️) ", huge_comment, flags=re.MULTILINE))

    assert 0 < shown < 20000
    assert f"… {20000 - shown} more findings not shown; {FULL_LIST}" in huge_comment


def test_the_cut_says_exactly_how_many_changes_are_not_shown(huge_comment: str) -> None:
    shown = section(huge_comment, "Changes").count("| ✏️ update |")

    assert 0 < shown < 5000
    assert f"… {5000 - shown} more changes not shown; {FULL_LIST}" in huge_comment


def test_the_cut_is_announced_right_below_the_summary(huge_comment: str) -> None:
    lines = huge_comment.splitlines()

    assert lines[1].startswith("**Plan:** 5000 to update")
    assert lines[3].startswith("> ✂️ Shortened to fit GitHub's comment size limit: per-resource details omitted;")


def test_per_resource_details_are_dropped_before_anything_else() -> None:
    plan = typical_plan()
    full = markdown.render(plan)

    shortened = markdown.render(plan, limit=len(full) - 1)

    assert "<details>" not in shortened
    assert "per-resource details omitted" in shortened
    assert "not shown" not in shortened
    assert section(shortened, "Findings") == section(full, "Findings")


def test_errors_are_kept_before_warnings_when_findings_are_cut() -> None:
    warnings = tuple(finding(f"catalog/a{i:03d}.yaml", severity="warning", rule="w") for i in range(300))
    errors = tuple(finding(f"catalog/z{i:03d}.yaml", severity="error", rule="e") for i in range(5))
    comment = markdown.render(empty_plan(findings=warnings + errors), limit=3000)

    assert comment.count("**error**") == 5
    assert "more findings not shown" in comment


def test_the_summary_survives_a_very_small_limit() -> None:
    comment = markdown.render(huge_plan(changes=50, findings=50), limit=600)

    assert len(comment) <= 600
    assert comment.splitlines()[:2] == [
        MARKER,
        "**Plan:** 50 to update · cost +$12,500.00/month · ❌ 17 errors, 33 warnings",
    ]


@pytest.mark.parametrize("limit", [0, 1, 25, 120, 500])
def test_the_limit_holds_even_when_it_is_absurdly_small(limit: int) -> None:
    assert len(markdown.render(typical_plan(), limit=limit)) <= limit


# --- robustness --------------------------------------------------------------------------------


def test_odd_but_well_typed_values_render_without_raising() -> None:
    odd = Change(
        action="update",
        kind="",
        name="",
        owner="",
        path="",
        line=-3,
        fields=(FieldChange("", "replace", float("nan"), {1: "mixed", "keys": None}),),
        monthly_cost_before=float("inf"),
    )
    plan = Plan(
        base="",
        head="",
        changes=(odd,),
        deletions=(odd,),
        unchanged=0,
        costs=(TeamCost("", float("nan"), -0.001, budget=-1.0),),
        findings=(finding(path="", line=0, column=0, message="", rule="", hint=""),),
        rule_changes=(RuleChange("", "deleted"),),
    )

    assert markdown.render(plan, repo_url=REPO_URL).startswith(MARKER + "\n")


def test_a_plan_that_cannot_be_rendered_still_yields_a_marked_comment() -> None:
    broken = change(line="twelve")  # type: ignore[arg-type]

    comment = markdown.render(empty_plan(changes=(broken,)))

    assert comment.startswith(MARKER + "\n")
    assert "could not be rendered" in comment


def test_a_plan_lists_the_services_that_will_get_an_upgrade_pull_request() -> None:
    upgrades = section(markdown.render(upgrade_plan()), "🔁 Golden-path upgrades")
    assert "on the repository of each of 3 services below" in upgrades
    assert "- `Service/checkout`: template fastapi-service changed" in upgrades
    assert "- `Service/billing`: its request changes what template fastapi-service is rendered with" in upgrades
    assert "- `Service/legacy`: template fastapi-service changed; no pull request: it opted out" in upgrades


def test_a_plan_whose_upgrades_are_all_held_back_says_none_will_be_opened() -> None:
    held = dataclasses.replace(upgrade_plan(), upgrades=upgrade_plan().upgrades[2:3])
    assert "Paved opens no upgrade pull request" in section(markdown.render(held), "🔁 Golden-path upgrades")


def test_there_is_no_upgrades_section_when_no_golden_path_moves() -> None:
    assert "Golden-path upgrades" not in markdown.render(typical_plan())
