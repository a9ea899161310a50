"""The audit trail: who asked for what, who approved it, when it was applied, and how it went.

Read from git alone: each apply is a record in the note on the applied commit (`refs/notes/paved`),
next to the commit's own author and date; the plan records (`refs/notes/paved-plans`, bot/stats.py)
add when each pull request was opened. Merged commits that no apply covers yet are in the trail too,
as `pending`, so it is the whole story of the branch and not only of what Paved got to. Pure: the
caller reads the notes, the commits and what the pending commits change.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime

from bot.apply import read_records
from bot.errors import UsageError
from bot.kinds import Kinds
from bot.stats import PlanRecord, parse_time

# How merges name their pull request in the commit subject: GitHub's merge commits, and its squash
# and rebase merges (`Title (#12)`).
_PR_IN_SUBJECT = re.compile(r"^Merge pull request #(\d+)\b|\(#(\d+)\)\s*$")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One apply of one commit, as it concerns one resource (or all of them); or a merged commit
    waiting for its apply (`status` pending, no `applied_at`)."""

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
    requested_at: str | None = None  # when the pull request was opened, from its first plan record
    trigger: str | None = None  # why the apply ran (merge, retry, reconcile, heal), when recorded

    @property
    def when(self) -> str:
        """The moment the entry stands for: the apply, or the commit for one still pending."""
        return self.applied_at or self.committed_at


@dataclass(frozen=True, slots=True)
class PendingCommit:
    """A commit on the branch that no apply has covered yet, and the changes it makes."""

    revision: str
    committed_by: str
    committed_at: str
    subject: str
    actions: Mapping[str, str] = field(default_factory=dict)  # identity -> create | update | rename | delete


def pull_request_of(subject: str) -> int | None:
    """The pull request a merge commit's subject names, if it names one."""
    found = _PR_IN_SUBJECT.search(subject)
    return int(found.group(1) or found.group(2)) if found else None


def parse_resource(text: str, kinds: Kinds) -> str:
    """`KIND/NAME` as typed (the kind or its plural, in any case) -> the resource's identity
    (`Service/search`), for the kinds the rules describe."""
    kind, slash, name = text.partition("/")
    if not slash or not kind or not name or "/" in name:
        raise UsageError(f"{text!r} is not a resource: write KIND/NAME",
                         hint=f"The kinds are {', '.join(kinds.names)}.")
    canonical = kinds.by_name(kind)
    if canonical is None:
        raise UsageError(f"{kind!r} is not a kind of resource", hint=f"The kinds are {', '.join(kinds.names)}.")
    return f"{canonical}/{name}"


def parse_since(text: str) -> datetime:
    """`--since` as given: an ISO date (midnight UTC) or an ISO date and time."""
    try:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    except ValueError:
        pass
    moment = parse_time(text)
    if moment is None:
        raise UsageError(f"--since {text!r} is not a date", hint="Give an ISO date, for example --since 2026-11-01.")
    return moment


def trail(notes: Mapping[str, str], commits: Mapping[str, tuple[str, str, str]],
          resource: str | None = None, *, since: datetime | None = None,
          pending: Iterable[PendingCommit] = (), plans: Iterable[PlanRecord] = ()) -> list[AuditEntry]:
    """Every recorded apply and every pending commit, oldest first, one entry per resource (only
    `resource` when given, only from `since` when given)."""
    opened: dict[int, str] = {}
    for plan in sorted(plans, key=lambda p: p.planned_at):
        opened.setdefault(plan.pull_request, plan.opened_at)
    entries: list[AuditEntry] = []
    for revision, note in notes.items():
        author, when, subject = commits.get(revision, ("", "", ""))
        for record in read_records(note):
            for result in record.results:
                entries.append(AuditEntry(
                    revision=revision, committed_by=author, committed_at=when, subject=subject,
                    applied_at=record.applied_at, resource=result.resource,
                    action=record.actions.get(result.resource, ""), status=result.status, message=result.message,
                    pull_request=record.pull_request, requested_by=record.requested_by,
                    approved_by=record.approved_by, merged_by=record.merged_by,
                    requested_at=opened.get(record.pull_request) if record.pull_request else None,
                    trigger=getattr(record, "trigger", None)))
    for commit in pending:
        number = pull_request_of(commit.subject)
        for identity, action in sorted(commit.actions.items()):
            entries.append(AuditEntry(
                revision=commit.revision, committed_by=commit.committed_by, committed_at=commit.committed_at,
                subject=commit.subject, applied_at="", resource=identity, action=action, status="pending",
                message="merged, not applied yet", pull_request=number, requested_by=None, approved_by=(),
                merged_by=None, requested_at=opened.get(number) if number else None))
    if resource is not None:
        entries = [e for e in entries if e.resource.lower() == resource.lower()]
    if since is not None:
        entries = [e for e in entries if (moment := parse_time(e.when)) is not None and moment >= since]
    entries.sort(key=lambda e: (parse_time(e.when) or datetime.min.replace(tzinfo=UTC), e.resource))
    return entries


def as_text(entries: Sequence[AuditEntry]) -> str:
    if not entries:
        return ("Nothing in the trail (applies are noted under refs/notes/paved; fetch them from the platform "
                "repo).\n")
    lines = []
    for e in entries:
        if e.pull_request:
            pr = f"PR #{e.pull_request}" + (f" by {e.requested_by}" if e.requested_by else "")
            pr += f" (opened {e.requested_at})" if e.requested_at else ""
        else:
            pr = f"commit by {e.committed_by}"
        if e.status == "pending":
            lines.append(f"{e.committed_at}  {e.resource}  {e.action or 'apply'}: pending ({e.message})")
            lines.append(f"    {e.revision[:12]} {e.subject!r}: {pr}")
            continue
        approved = f", approved by {', '.join(e.approved_by)}" if e.approved_by else ", no approving review"
        merged = f", merged by {e.merged_by}" if e.merged_by else ""
        trigger = f" [{e.trigger}]" if e.trigger and e.trigger != "merge" else ""
        lines.append(f"{e.applied_at}  {e.resource}  {e.action or 'apply'}: {e.status}{trigger}"
                     + (f" ({e.message})" if e.message else ""))
        lines.append(f"    {e.revision[:12]} {e.subject!r}: {pr}{approved}{merged}")
    return "\n".join(lines) + "\n"


def as_json(entries: Sequence[AuditEntry]) -> str:
    return json.dumps({"version": 1, "entries": [asdict(e) for e in entries]}, indent=2) + "\n"


CSV_COLUMNS = tuple(f.name for f in fields(AuditEntry))


def as_csv(entries: Sequence[AuditEntry]) -> str:
    """One row per entry under a header row; approvers are joined with `;`, absent values are empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        row = asdict(e)
        row["approved_by"] = ";".join(e.approved_by)
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return buffer.getvalue()
