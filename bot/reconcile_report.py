"""What `paved reconcile` prints: each repository reconciled (`bot.handlers.drift.RepoReconciled`), as
text for a person and as JSON for a script. The demo shows the same text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.handlers.drift import RepoReconciled


def as_text(done: Sequence[RepoReconciled]) -> str:
    """Each repository reconciled, as `paved reconcile` prints it."""
    lines: list[str] = []
    elsewhere: list[str] = []  # an App installed on a whole organization sees every repository
    for r in done:
        drift, applied = r.drift, r.applied
        if drift is not None and drift.skipped and (applied is None or applied.status == "refused") and not r.errors:
            if "not a platform repo" in drift.skipped:
                elsewhere.append(r.repo)
            else:
                lines.append(f"{r.repo}: skipped ({drift.skipped})")
            continue
        revision = (drift.revision if drift else "") or (applied.revision if applied else "")
        lines.append(f"{r.repo}" + (f" at {revision[:12]}" if revision else ""))
        if applied is not None and applied.status != "up to date":
            lines.append(f"  apply: {applied.status}" + (f" ({applied.reason})" if applied.reason else ""))
            failed = [x for x in (applied.record.results if applied.record else ()) if x.status == "failed"]
            lines += [f"    {x.resource}: {x.message}" for x in failed]
        if drift is not None and drift.skipped:
            lines.append(f"  skipped: {drift.skipped}")
        elif drift is not None:
            for result in drift.healed:
                lines.append(f"  healed: {result.resource}: " + "; ".join(s.description for s in result.steps))
            for d in drift.drifts:
                issue = f" (issue #{drift.issues[d.identity]})" if d.identity in drift.issues else ""
                lines.append(f"  drifted: {d.identity}, owned by {d.owner}{issue}")
                lines += [f"    {s.verb}: {s.description}" for s in d.steps]
                lines += [f"    {what}: {text}" for what, text in (("error", d.error), ("cannot read", d.unobserved))
                          if text]
            if drift.pending:
                lines.append(f"  pending: {', '.join(drift.pending)}")
            if drift.left:
                lines.append(f"  left for the next reconcile, to keep GitHub requests for plans and applies: "
                             f"{len(drift.left)} resources")
            elif not drift.drifts:
                lines.append(f"  matches the catalogue ({drift.checked} resources checked)")
            if drift.standards is not None:
                scored, failing = drift.standards
                lines.append(f"  standards: {scored - failing} of {scored} resources meet every standard"
                             + (" (`paved standards --failing` says which fail and how to fix them)" if failing
                                else ""))
        lines += [f"  error: {e}" for e in r.errors]
    if elsewhere:
        lines.append(f"not platform repos (no schemas/kinds/), skipped: {', '.join(elsewhere)}")
    return "\n".join(lines) + "\n"


def as_json(done: Sequence[RepoReconciled]) -> str:
    """Each repository reconciled, as `paved reconcile --format json` prints it."""

    def steps(found: Any) -> list[dict[str, Any]]:
        return [{"verb": s.verb, "description": s.description, "destructive": s.destructive} for s in found]

    repos = []
    for r in done:
        drift, applied = r.drift, r.applied
        repos.append({
            "repository": r.repo, "clean": r.clean, "errors": list(r.errors),
            "revision": (drift.revision if drift else "") or (applied.revision if applied else ""),
            "apply": None if applied is None else {
                "status": applied.status, "reason": applied.reason, "attempts": applied.attempts,
                "failed": [{"resource": x.resource, "message": x.message}
                           for x in (applied.record.results if applied.record else ()) if x.status == "failed"]},
            "checked": drift.checked if drift else 0, "skipped": drift.skipped if drift else "",
            "healed": [{"resource": x.resource, "steps": steps(x.steps)} for x in (drift.healed if drift else ())],
            "drifted": [{"resource": d.identity, "kind": d.kind, "owner": d.owner, "mode": d.mode,
                         "steps": steps(d.steps), "error": d.error, "unobserved": d.unobserved,
                         "issue": drift.issues.get(d.identity) if drift else None}
                        for d in (drift.drifts if drift else ())],
            "pending": list(drift.pending if drift else ()),
            "left": list(drift.left if drift else ()),
            "standards": None if drift is None or drift.standards is None else {
                "scored": drift.standards[0], "failing": drift.standards[1]},
        })
    return json.dumps({"version": 1, "clean": all(r.clean for r in done), "repositories": repos}, indent=2) + "\n"
