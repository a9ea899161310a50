"""How every surface words the same facts: counts, money, revisions, field paths and values.

Keeping these in one place means a plan reads the same in the terminal, in the pull request comment
and in the Actions log, so people can match one against the other.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from bot.model import ACTIONS, SEVERITIES, FieldChange, Finding, Plan, Severity, Upgrade

# A key that reads unambiguously after a dot; anything else is shown quoted in brackets.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HEX_REVISION = re.compile(r"[0-9a-fA-F]{12,64}")


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`1 error`, `2 errors`."""
    word = noun if count == 1 else (plural_noun or f"{noun}s")
    return f"{count} {word}"


def cents(amount: float) -> float | None:
    """The amount rounded to cents, so float noise never shows; None when it is not a finite number."""
    try:
        value = float(amount)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    # Adding 0.0 turns -0.0 into 0.0 so a tiny negative rounding error never prints as "-$0.00".
    return round(value, 2) + 0.0


def money(amount: float) -> str:
    """A monthly USD amount: `$1,234.50`."""
    rounded = cents(amount)
    if rounded is None:
        return "$?"
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


def money_change(amount: float) -> str:
    """A signed difference of monthly USD amounts: `+$120.00`, `-$30.00`, `$0.00`."""
    rounded = cents(amount)
    if rounded is None:
        return "$?"
    if rounded == 0:
        return "$0.00"
    sign = "+" if rounded > 0 else "-"
    return f"{sign}${abs(rounded):,.2f}"


def is_zero_money(amount: float) -> bool:
    """True when the amount rounds to no cents at all (and is a real number)."""
    return cents(amount) == 0


def change_tally(plan: Plan) -> str:
    """`2 to create, 1 to update, 1 to delete`, or `no changes`."""
    parts = [f"{plan.count(action)} to {action}" for action in ACTIONS if plan.count(action)]
    return ", ".join(parts) if parts else "no changes"


def severity_counts(findings: Iterable[Finding]) -> dict[Severity, int]:
    """How many findings there are of each severity, every severity present as a key."""
    seen = Counter(f.severity for f in findings)
    return {level: seen[level] for level in SEVERITIES}


def finding_tally(findings: Iterable[Finding]) -> str:
    """`2 errors, 1 warning`, or `no findings`."""
    counts = severity_counts(findings)
    parts = [plural(counts[level], level) for level in SEVERITIES if counts[level]]
    return ", ".join(parts) if parts else "no findings"


def files_with_findings(findings: Iterable[Finding]) -> int:
    return len({f.path for f in findings})


def severity_rank(severity: str) -> int:
    """0 for the most severe level; anything unrecognised sorts with errors so it is not hidden."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def by_severity(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then in file order: what to keep when not everything fits."""
    return sorted(findings, key=lambda f: (severity_rank(f.severity), f.sort_key()))


def location(finding: Finding) -> str:
    """`path:line:column`, dropping the parts that are 0 (unknown) rather than printing them."""
    if finding.line <= 0:
        return finding.path
    if finding.column <= 0:
        return f"{finding.path}:{finding.line}"
    return f"{finding.path}:{finding.line}:{finding.column}"


def short_revision(revision: str) -> str:
    """A commit id shortened the way git shows it; branch names and short ids are left alone."""
    return revision[:7] if _HEX_REVISION.fullmatch(revision) else revision


def compact_json(value: Any) -> str:
    """A value as one line of JSON with sorted keys, for showing old and new values side by side."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    except (TypeError, ValueError):
        # YAML allows mixed-type mapping keys, which cannot be sorted; fall back to document order.
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        except (TypeError, ValueError):
            return repr(value)


def field_path(pointer: str) -> str:
    """A JSON pointer as people write paths: `/spec/members/0` → `spec.members[0]`.

    Keys that would be ambiguous after a dot are quoted: `metadata.labels["app.kubernetes.io/name"]`.
    A value that is not a JSON pointer is returned unchanged.
    """
    if pointer == "":
        return "(document)"
    if not pointer.startswith("/"):
        return pointer
    path = ""
    for raw in pointer[1:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if key.isdigit():
            path += f"[{key}]"
        elif _PLAIN_KEY.fullmatch(key):
            path += f".{key}" if path else key
        else:
            path += f"[{json.dumps(key, ensure_ascii=False)}]"
    return path


def field_change_words(change: FieldChange, show: Callable[[Any], str]) -> str:
    """What happened to one field, with values formatted by `show`: `"small" → "medium"`."""
    if change.op == "add":
        return f"added {show(change.after)}"
    if change.op == "remove":
        return f"removed (was {show(change.before)})"
    return f"{show(change.before)} → {show(change.after)}"


def upgrade_words(upgrade: Upgrade) -> str:
    """Why a service's golden path moves, and whether it gets its upgrade pull request."""
    why = (f"template {upgrade.template} changed" if upgrade.reason == "template"
           else f"its request changes what template {upgrade.template} is rendered with")
    held = {"manual": "; no pull request: it opted out (updates: manual)",
            "pinned": "; no pull request: it is pinned to a commit of the template"}.get(upgrade.held, "")
    return why + held
