"""The audit trail: who asked for what, who approved it, when it was applied, and how it went.

Read from git alone: each apply is a record in the note on the applied commit (`refs/notes/paved`),
next to the commit's own author and date. Pure: the caller reads the notes and commits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from bot.apply import read_records


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One apply of one commit, as it concerns one resource (or all of them)."""

    revision: str
    committed_by: str
    committed_at: str
    subject: str
    applied_at: str
    resource: str
    action: str
    status: str
    message: str
    pull_request: int | None
    requested_by: str | None
    approved_by: tuple[str, ...]
    merged_by: str | None


def trail(notes: Mapping[str, str], commits: Mapping[str, tuple[str, str, str]],
          resource: str | None = None) -> list[AuditEntry]:
    """Every recorded apply, oldest first, one entry per resource (only `resource` when given)."""
    entries: list[AuditEntry] = []
    for revision, note in notes.items():
        author, date, subject = commits.get(revision, ("", "", ""))
        for record in read_records(note):
            for result in record.results:
                if resource is not None and result.resource.lower() != resource.lower():
                    continue
                entries.append(AuditEntry(
                    revision=revision, committed_by=author, committed_at=date, subject=subject,
                    applied_at=record.applied_at, resource=result.resource,
                    action=record.actions.get(result.resource, ""), status=result.status, message=result.message,
                    pull_request=record.pull_request, requested_by=record.requested_by,
                    approved_by=record.approved_by, merged_by=record.merged_by))
    entries.sort(key=lambda e: (e.applied_at, e.resource))
    return entries


def as_text(entries: list[AuditEntry]) -> str:
    if not entries:
        return "No applies recorded (notes are under refs/notes/paved; fetch them from the platform repo).\n"
    lines = []
    for e in entries:
        pr = f"PR #{e.pull_request} by {e.requested_by}" if e.pull_request else f"commit by {e.committed_by}"
        approved = f", approved by {', '.join(e.approved_by)}" if e.approved_by else ", no approving review"
        merged = f", merged by {e.merged_by}" if e.merged_by else ""
        lines.append(f"{e.applied_at}  {e.resource}  {e.action or 'apply'}: {e.status}"
                     + (f" ({e.message})" if e.message else ""))
        lines.append(f"    {e.revision[:12]} {e.subject!r}: {pr}{approved}{merged}")
    return "\n".join(lines) + "\n"


def as_json(entries: list[AuditEntry]) -> str:
    return json.dumps({"version": 1, "entries": [asdict(e) for e in entries]}, indent=2) + "\n"
