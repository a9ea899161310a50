"""Standards' scorecards as terminal text and as JSON: what `paved standards` prints.

A failing standard always says what is wrong, how to fix it and, when there is one, where (its link).
The web catalogue shows the same scorecards through its own templates, from the same summaries
(`bot.standards`).
"""

from __future__ import annotations

import json
from typing import Any

from bot.render.wording import plural
from bot.standards import STANDARDS_REF, ResourceScore, Scorecard, failing_most, on_latest, tally

NOTHING_YET = (f"No standards scorecard recorded yet: every reconcile records one under {STANDARDS_REF} (fetch it "
               "from the platform repo, or run without --offline).")


def share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part / whole:.0%})" if whole else "none yet"


def _where(score: ResourceScore) -> str:
    return ", ".join(x for x in (score.owner, score.tier) if x)


def as_text(card: Scorecard | None, *, title: str = "Standards") -> str:
    """The scorecard: a summary, each resource with what it fails and how to fix it, and what fails most."""
    if card is None:
        return NOTHING_YET + "\n"
    counted = tally(card.resources)
    lines = [f"{title} scored at {card.revision[:12]} on {card.scored_at}: "
             f"{plural(counted.resources, 'resource')} scored, {share(counted.passed, counted.checked)} checks pass, "
             f"{plural(counted.clean, 'resource')} meeting every standard"
             + (f" ({counted.unscored} not scored this time)" if counted.unscored else "")]
    latest, following = on_latest(card)
    if following:
        lines.append(f"On the latest golden path: {share(latest, following)}")
    lines.append("")
    if not card.resources:
        lines.append("  nothing to score here")
    for score in card.resources:
        where = f" ({_where(score)})" if _where(score) else ""
        if score.unscored:
            lines.append(f"{score.identity}{where}: not scored: {score.unscored}")
            continue
        if not score.failed:
            lines.append(f"{score.identity}{where}: meets all {len(score.outcomes)} standards")
            continue
        lines.append(f"{score.identity}{where}: {len(score.passed)} of {len(score.outcomes)} standards met")
        for verdict in score.failed:
            info = card.standard(verdict.standard)
            severity = info.severity if info else "error"
            lines.append(f"  FAIL {severity:<7} {verdict.standard}: {verdict.message}")
            hint = info.hint if info else ""
            link = verdict.link or (info.link if info else None)
            if hint or link:
                lines.append(f"       fix: {hint}" + (f" {link}" if link else ""))
    most = [f for f in failing_most(card) if f.failing]
    if most:
        lines += ["", "Failing most"]
        width = max(len(f.standard.id) for f in most)
        for f in most:
            lines.append(f"  {f.standard.id:<{width}}  {share(len(f.failing), f.scored)} ({f.standard.severity})")
    return "\n".join(lines) + "\n"


def to_dict(card: Scorecard | None) -> dict[str, Any]:
    """The scorecard as plain data, with its summary and what fails most."""
    if card is None:
        return {"version": 1, "scorecard": None}
    counted = tally(card.resources)
    latest, following = on_latest(card)
    info = {s.id: s for s in card.standards}
    resources = []
    for score in card.resources:
        entry: dict[str, Any] = {"identity": score.identity, "kind": score.kind, "name": score.name,
                                 "owner": score.owner, "tier": score.tier, "latest": score.latest,
                                 "passed": [v.standard for v in score.passed], "failed": []}
        if score.unscored:
            entry["unscored"] = score.unscored
        for verdict in score.failed:
            standard = info.get(verdict.standard)
            entry["failed"].append({
                "standard": verdict.standard, "title": standard.title if standard else verdict.standard,
                "severity": standard.severity if standard else "error", "message": verdict.message,
                "fix": standard.hint if standard else "",
                "link": verdict.link or (standard.link if standard else None)})
        resources.append(entry)
    return {
        "version": 1,
        "scorecard": {
            "revision": card.revision, "scored_at": card.scored_at,
            "summary": {"resources": counted.resources, "checks": counted.checked, "passed": counted.passed,
                        "meeting_every_standard": counted.clean, "unscored": counted.unscored,
                        "on_latest_golden_path": latest, "following_a_golden_path": following},
            "standards": [{"id": s.id, "title": s.title, "severity": s.severity, "fix": s.hint, "link": s.link,
                           "description": s.description} for s in card.standards],
            "resources": resources,
            "failing_most": [{"standard": f.standard.id, "failing": [r.identity for r in f.failing],
                              "scored": f.scored} for f in failing_most(card)],
        },
    }


def as_json(card: Scorecard | None) -> str:
    return json.dumps(to_dict(card), indent=2, ensure_ascii=False) + "\n"
