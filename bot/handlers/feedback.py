"""Asking developers how it went, and keeping what they answer (see `bot.satisfaction`).

Three steps, each safe to repeat and to run on several replicas at once:

* `ask`: before an apply's comment goes out, whether it invites its author to rate it, and if it does, the
  `asked` record noted (and pushed) on the applied commit first; `invited` then notes which comment carries
  the invitation. A Paved killed between the two has noted an invitation the comment may lack: the next
  report of that apply shows it (`keep_only`), and a person is never asked twice in a week.
* `read_ratings`, run by reconcile: the author's reactions on the invitations of the last weeks, read through
  the forge's conditional GETs (an unchanged comment costs nothing), noted as ratings when they changed.
* `record_feedback`: `/paved feedback TEXT`, noted on the pull request's merge commit (or, while it is
  open, on the default branch's head), once per comment whatever the number of deliveries.

Feedback is never worth failing an apply or a reconcile for: the callers catch `PavedError` and go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.apply import ApplyRecord
from bot.handlers import Context
from bot.satisfaction import (
    FEEDBACK_REF,
    Asked,
    Feedback,
    FeedbackRecord,
    Invited,
    asked_for,
    feedback_records,
    feedback_text,
    invites,
    read_back,
    to_json,
    to_read,
)

log = logging.getLogger(__name__)


def _records(ctx: Context, repo: str) -> list[FeedbackRecord]:
    ctx.mirror.fetch_if_present(repo, FEEDBACK_REF)
    return feedback_records(ctx.mirror.notes(repo, FEEDBACK_REF))


def _note(ctx: Context, repo: str, commit: str, records: list[FeedbackRecord]) -> None:
    for record in records:
        ctx.mirror.append_note(repo, FEEDBACK_REF, commit, to_json(record))
    ctx.lease.check()
    ctx.mirror.push(repo, [FEEDBACK_REF])


def rated_author(record: ApplyRecord) -> str | None:
    """Whom an apply's comment may invite: the author of the pull request a successful apply merged, unless
    a bot opened it."""
    author = record.requested_by or ""
    if not record.succeeded or record.pull_request is None or not author or author.endswith("[bot]"):
        return None
    return author


def ask(ctx: Context, repo: str, record: ApplyRecord, now: datetime, *, keep_only: bool = False) -> bool:
    """Whether the comment on `record`'s apply invites its author to rate it; when it newly does, noted
    first. `keep_only`: invite only if this apply's invitation was noted already (a report made again later
    asks nobody new)."""
    author = rated_author(record)
    if author is None:
        return False
    records = _records(ctx, repo)
    if asked_for(records, author, record.revision) is not None:
        return True
    if keep_only or not invites(records, author, record.revision, now):
        return False
    _note(ctx, repo, record.revision, [Asked(author, record.pull_request or 0, record.revision,
                                             now.isoformat(timespec="seconds"))])
    return True


def invited(ctx: Context, repo: str, record: ApplyRecord, comment: int) -> None:
    """Note that comment `comment` carries the invitation for `record`'s apply (once)."""
    author = rated_author(record)
    if author is None:
        return
    records = _records(ctx, repo)
    asked = asked_for(records, author, record.revision)
    if asked is None or any(isinstance(r, Invited) and r.comment == comment for r in records):
        return
    _note(ctx, repo, record.revision, [Invited(author, asked.pull_request, record.revision, comment, asked.at)])


@dataclass(frozen=True, slots=True)
class RatingsRead:
    """What a reconcile read of the invitations: how many comments, and how many records it noted."""

    comments: int
    noted: int


def read_ratings(ctx: Context, repo: str, now: datetime) -> RatingsRead:
    """Note the ratings the authors of recent invitations gave, or withdrew, since the last read."""
    records = _records(ctx, repo)
    wanted = to_read(records, now)
    by_commit: dict[str, list[FeedbackRecord]] = {}
    for invitation in wanted:
        reactions = ctx.forge.comment_reactions(repo, invitation.comment)
        if reactions is None:
            continue  # the comment was deleted: its rating, if any, stays as it was
        new = read_back(records, invitation, reactions)
        if new:
            by_commit.setdefault(invitation.revision, []).extend(new)
    for commit, found in by_commit.items():
        for record in found:
            ctx.mirror.append_note(repo, FEEDBACK_REF, commit, to_json(record))
    if by_commit:
        ctx.lease.check()
        ctx.mirror.push(repo, [FEEDBACK_REF])
    noted = sum(len(found) for found in by_commit.values())
    if noted:
        log.info("noted %d ratings of %s", noted, repo)
    return RatingsRead(len(wanted), noted)


def record_feedback(ctx: Context, repo: str, number: int, login: str, comment: int, at: str, raw: str) -> bool:
    """Note `/paved feedback`'s words (as data, cut to a length); whether they were new (a delivery handled
    twice notes them once)."""
    records = _records(ctx, repo)
    if any(isinstance(r, Feedback) and r.comment == comment for r in records):
        return False
    pr = ctx.forge.pull_request(repo, number)
    branch = ctx.forge.default_branch(repo)
    ctx.mirror.fetch(repo, [branch])
    merged = pr.merge_commit_sha if pr.merged and pr.merge_commit_sha else None
    commit = merged if merged and ctx.mirror.resolve(repo, merged) else ctx.mirror.resolve(repo, f"refs/heads/{branch}")
    if commit is None:
        return False
    text, truncated = feedback_text(raw)
    _note(ctx, repo, commit, [Feedback(login, number, comment, at, text, truncated)])
    return True
