"""Plans and findings as terminal text: what `paved plan` and `paved validate` print.

Colour is plain ANSI and only added when the caller asks for it; deciding whether the output is a
terminal (and whether NO_COLOR is set) is the command line's business, not the renderer's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from bot.model import Change, Finding, Plan, RuleChange, TeamCost, worst_severity
from bot.render import wording

_SIGILS = {"create": "+", "update": "~", "rename": "→", "delete": "-"}
_STYLES = {
    "create": "32",
    "update": "33",
    "rename": "36",
    "delete": "31",
    "error": "1;31",
    "warning": "33",
    "notice": "36",
    "ok": "32",
    "heading": "1",
    "detail": "2",
}
_RESET = "\033[0m"
_INDENT = "    "
# Control characters in a name or message could move the cursor or recolour the terminal, so they
# are shown as escapes instead; line breaks are handled separately by indenting continuation lines.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

Paint = Callable[[str, str], str]


def render(plan: Plan, *, color: bool = False) -> str:
    """The whole plan for a terminal: headline, changes, team costs, rule changes and findings.

    Ends with the findings summary line and a newline.
    """
    paint = _painter(color)
    lines = [paint(_headline(plan), "heading"), ""]
    for change in plan.all_changes:
        lines.extend(_change_lines(change, paint))
    if plan.unchanged:
        lines.append(paint(f"{wording.plural(plan.unchanged, 'resource')} unchanged", "detail"))
    if plan.costs:
        lines += ["", paint("Cost by team (USD/month):", "heading"), *_cost_lines(plan.costs, paint)]
    if plan.rule_changes:
        lines += ["", paint("Platform change:", "heading"), *_rule_change_lines(plan.rule_changes),
                  *(_clean(f"  affects: {sentence}") for sentence in plan.platform_impact)]
    if plan.upgrades:
        lines += ["", paint("Golden-path upgrades (a pull request on each repository after the merge):", "heading"),
                  *(_clean(f"  {u.identity}: {wording.upgrade_words(u)}") for u in plan.upgrades)]
    lines.append("")
    lines.append(render_findings(plan.findings, color=color, files_checked=plan.files_checked or None))
    return "\n".join(lines).rstrip("\n") + "\n"


def render_findings(findings: Sequence[Finding], *, color: bool = False, files_checked: int | None = None) -> str:
    """One `path:line:col: severity[rule] message` line per finding, then a summary line.

    The line format is the one compilers use, so editors and terminals turn locations into links.
    `files_checked` (when known) lets the summary say how much was looked at: "in 2 of 14 files".
    """
    paint = _painter(color)
    ordered = sorted(findings, key=Finding.sort_key)
    lines: list[str] = []
    for finding in ordered:
        lines.extend(_finding_lines(finding, paint))
    lines.append(_findings_summary(ordered, files_checked, paint))
    return "\n".join(lines) + "\n"


def _painter(color: bool) -> Paint:
    def paint(text: str, style: str) -> str:
        code = _STYLES.get(style)
        if not color or not text or code is None:
            return text
        return f"\033[{code}m{text}{_RESET}"

    return paint


def _clean(text: str) -> str:
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _lines_of(text: str) -> list[str]:
    return [_clean(line) for line in text.splitlines()] or [""]


def _headline(plan: Plan) -> str:
    revisions = f"{wording.short_revision(plan.base)} → {wording.short_revision(plan.head)}"
    parts = [wording.change_tally(plan)]
    if plan.costs and not wording.is_zero_money(plan.cost_delta):
        parts.append(f"cost {wording.money_change(plan.cost_delta)}/month")
    return _clean(f"Plan {revisions}: {' · '.join(parts)}")


def _change_lines(change: Change, paint: Paint) -> list[str]:
    sigil = _SIGILS.get(change.action, "?")
    title = f"{sigil} {change.action} {change.identity}"
    if change.action == "rename" and change.previous_name:
        title = f"{sigil} rename {change.kind}/{change.previous_name} → {change.identity}"
    if change.destructive:
        title += " (destructive)"
    notes = [f"{change.path}:{change.line}" if change.line > 0 else change.path]
    if change.owner:
        notes.append(f"owner: {change.owner}")
    if not wording.is_zero_money(change.cost_delta):
        notes.append(f"{wording.money_change(change.cost_delta)}/month")
    lines = [f"{paint(_clean(title), change.action)}  {paint(_clean('  '.join(notes)), 'detail')}"]
    if change.previous_path and change.previous_path != change.path:
        lines.append(_clean(f"{_INDENT}file: {change.previous_path} → {change.path}"))
    for field_change in change.fields:
        words = wording.field_change_words(field_change, wording.compact_json)
        lines.append(_clean(f"{_INDENT}{wording.field_path(field_change.pointer)}: {words}"))
    return lines


def _cost_lines(costs: Sequence[TeamCost], paint: Paint) -> list[str]:
    rows = [(_clean(cost.team), wording.money(cost.before), wording.money(cost.after), cost) for cost in costs]
    team_width = max(len(row[0]) for row in rows)
    before_width = max(len(row[1]) for row in rows)
    after_width = max(len(row[2]) for row in rows)
    delta_width = max(len(wording.money_change(cost.delta)) for cost in costs)
    lines = []
    for team, before, after, cost in rows:
        line = (
            f"  {team:<{team_width}}  {before:>{before_width}} → {after:>{after_width}}"
            f"  {wording.money_change(cost.delta):>{delta_width}}"
        )
        if cost.budget is None:
            line += "  " + paint("no budget", "detail")
        else:
            line += f"  budget {wording.money(cost.budget)}"
            if cost.over_budget:
                line += "  " + paint("over budget", "error")
        lines.append(line)
    return lines


def _rule_change_lines(rule_changes: Sequence[RuleChange]) -> list[str]:
    lines = [
        "  These changes to the platform's rules are not used to judge this pull request;",
        "  they take effect after merge, once the platform owners approve.",
    ]
    lines.extend(_clean(f"  {change.status:<8} {change.path}") for change in rule_changes)
    return lines


def _finding_lines(finding: Finding, paint: Paint) -> list[str]:
    first, *rest = _lines_of(finding.message)
    label = paint(_clean(f"{finding.severity}[{finding.rule}]"), finding.severity)
    lines = [f"{_clean(wording.location(finding))}: {label} {first}".rstrip()]
    lines.extend(f"{_INDENT}{line}" for line in rest)
    if finding.hint:
        hint_first, *hint_rest = _lines_of(finding.hint)
        lines.append(f"{_INDENT}{paint('hint:', 'detail')} {hint_first}")
        lines.extend(f"{_INDENT}      {line}" for line in hint_rest)
    return lines


def _findings_summary(findings: Sequence[Finding], files_checked: int | None, paint: Paint) -> str:
    if not findings:
        if files_checked is None:
            return paint("✓ no findings", "ok")
        return paint(f"✓ {wording.plural(files_checked, 'file')}, no findings", "ok")
    files = wording.files_with_findings(findings)
    where = (
        wording.plural(files, "file")
        if files_checked is None
        else f"{files} of {wording.plural(files_checked, 'file')}"
    )
    return paint(f"{wording.finding_tally(findings)} in {where}", worst_severity(findings) or "ok")
