"""Findings and plans as GitHub Actions workflow commands, for runs inside a workflow.

Each finding becomes an `::error`/`::warning`/`::notice` command, which Actions shows as an
annotation on the file and line. Everything taken from the repository is escaped as GitHub's runner
expects, so a message can never end a command early or start a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bot.model import Finding, Plan
from bot.render import text, wording

_COMMANDS = {"error": "error", "warning": "warning", "notice": "notice"}
PLAN_TITLE = "Paved plan"


def render(findings: Sequence[Finding]) -> str:
    """One annotation command per finding, in file order; empty when there are no findings."""
    return "".join(f"{annotation(f)}\n" for f in sorted(findings, key=Finding.sort_key))


def render_plan(plan: Plan) -> str:
    """Annotations for the plan's findings, the plan as text in a collapsed group, then a summary.

    The summary is an `::error` when the plan has errors and a `::notice` otherwise, so the
    outcome shows on the run's summary page without opening the log.
    """
    plan_text = text.render(plan, color=False)
    # The text holds names and messages from the pull request, and the runner would obey any line
    # in it that looks like a command (even an indented one). Pausing command processing around it
    # prevents that; the token is derived from the text itself so output stays reproducible, and a
    # request cannot contain the token that its own content produces.
    token = "paved-" + hashlib.sha256(plan_text.encode("utf-8")).hexdigest()[:32]
    lines = [
        f"::group::{escape_data(PLAN_TITLE)}",
        f"::stop-commands::{token}",
        plan_text.rstrip("\n"),
        f"::{token}::",
        "::endgroup::",
        _summary_command(plan),
    ]
    return render(plan.findings) + "\n".join(lines) + "\n"


def annotation(finding: Finding) -> str:
    """`::error file=…,line=…,col=…,title=rule::message`, with the hint on a line of its own."""
    command = _COMMANDS.get(finding.severity, "error")
    properties = []
    if finding.path:
        properties.append(f"file={escape_property(finding.path)}")
    # 0 means "the whole file"; Actions then annotates the file without pointing at a line.
    if finding.line > 0:
        properties.append(f"line={finding.line}")
        if finding.column > 0:
            properties.append(f"col={finding.column}")
    if finding.rule:
        properties.append(f"title={escape_property(finding.rule)}")
    message = finding.message
    if finding.hint:
        message += f"\nhint: {finding.hint}"
    return _command(command, properties, message)


def escape_data(value: str) -> str:
    """Escape a command's message the way the Actions runner unescapes it."""
    # `%` goes first, or the escapes added for line breaks would be escaped again.
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a command property value; `:` and `,` would otherwise end the property list."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _command(name: str, properties: Sequence[str], message: str) -> str:
    if properties:
        return f"::{name} {','.join(properties)}::{escape_data(message)}"
    return f"::{name}::{escape_data(message)}"


def _summary_command(plan: Plan) -> str:
    parts = [wording.change_tally(plan)]
    if plan.costs and not wording.is_zero_money(plan.cost_delta):
        parts.append(f"cost {wording.money_change(plan.cost_delta)}/month")
    parts.append(wording.finding_tally(plan.findings))
    return _command(
        "notice" if plan.ok else "error",
        [f"title={escape_property(PLAN_TITLE)}"],
        " · ".join(parts),
    )
