"""How satisfied developers are with the paved road, asked at the right moment and cheaply.

Paved asks the author of a merged pull request once its apply went through: the apply comment ends with
an invitation to rate it with one reaction, and to say more with `/paved feedback TEXT`. It asks a person
at most once every `ASK_EVERY` (a week), whatever the number of their pull requests, and reconcile reads
the author's reaction back as a rating (only the author's counts: anyone may react to a comment).

Everything is recorded as JSON lines in git notes under `refs/notes/paved-feedback`, like the plans and
applies, so it survives restarts, replicas merge their records (`cat_sort_uniq` keeps every distinct
line) and `paved stats` reads it from a clone. The records:

* `asked`: Paved invites `login` to rate the apply of `revision` (noted on that commit before the
  comment says so: a Paved killed in between has asked nobody twice, and the next report of that apply
  shows the invitation it recorded);
* `invited`: the comment that carries the invitation (its id, to read its reactions);
* `rating`: the author's reaction on that comment, scored 1 to 3 (`SCORES`); a line names the reaction
  GitHub made, so two replicas reading the same reaction write the same line and keep one;
* `withdrawn`: the author took that reaction away; their rating is then the newest one left, or none;
* `feedback`: what someone wrote with `/paved feedback`, as data: never evaluated, cut to
  `FEEDBACK_LIMIT` characters, shown only through `shown` (or `bot.render.markdown.echo` in Markdown).

Pure: the callers read and write the notes (bot/handlers/feedback.py); `bot.stats` reports the ratings.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.forge import Reaction

FEEDBACK_REF = "refs/notes/paved-feedback"
RECORD_VERSION = 1
# A person is invited to rate an apply at most this often.
ASK_EVERY = timedelta(days=7)
# Reconcile reads the reactions on the apply comments of invitations this recent; a reaction added later
# is not read (the moment has passed, and every comment read costs a request when it changed).
READ_BACK = timedelta(weeks=4)
# What `/paved feedback` keeps of a comment: enough for a paragraph, never a whole pasted log.
FEEDBACK_LIMIT = 2000

# GitHub's reactions, read as a rating from 1 (bad) to 3 (good). The invitation offers 👍, 😕 and 👎; the
# other warm ones (❤️, 🎉, 🚀) read as 👍. 😄 and 👀 say nothing about how it went and are no rating.
SCORES: Mapping[str, int] = {"+1": 3, "heart": 3, "hooray": 3, "rocket": 3, "confused": 2, "-1": 1}
OFFERED: tuple[tuple[str, str], ...] = (("👍", "it went well"), ("😕", "so-so"), ("👎", "it did not"))
SATISFIED = 3


@dataclass(frozen=True, slots=True)
class Asked:
    """Paved invites `login` to rate the apply of `revision`, merged by pull request `pull_request`."""

    login: str
    pull_request: int
    revision: str
    at: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class Invited:
    """The apply comment that carries an invitation: the one whose reactions count."""

    login: str
    pull_request: int
    revision: str
    comment: int
    asked_at: str


@dataclass(frozen=True, slots=True)
class Rating:
    """`login`'s reaction `reaction` (GitHub's id) on apply comment `comment`, scored."""

    login: str
    pull_request: int
    revision: str
    comment: int
    reaction: int
    content: str
    score: int
    reacted_at: str


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """`login` took reaction `reaction` off apply comment `comment`."""

    login: str
    comment: int
    reaction: int


@dataclass(frozen=True, slots=True)
class Feedback:
    """Words someone left with `/paved feedback` on pull request `pull_request` (comment `comment`)."""

    login: str
    pull_request: int
    comment: int
    at: str
    text: str
    truncated: bool = False


FeedbackRecord = Asked | Invited | Rating | Withdrawn | Feedback
_TYPES: dict[str, type[Any]] = {"asked": Asked, "invited": Invited, "rating": Rating, "withdrawn": Withdrawn,
                                "feedback": Feedback}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def to_json(record: FeedbackRecord) -> str:
    """One note line; the same record always makes the same line (so replicas' lines merge into one)."""
    return json.dumps({"paved": RECORD_VERSION, "type": _NAMES[type(record)], **asdict(record)},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def from_json(line: str) -> FeedbackRecord:
    """A record from its note line; `ValueError` when it is not one of Paved's."""
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("type") not in _TYPES:
        raise ValueError("not a feedback record")
    cls = _TYPES[data["type"]]
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            if f.name == "truncated":
                continue
            raise ValueError(f"a {data['type']} record without {f.name}")
        kind = {"int": int, "str": str, "bool": bool}[str(f.type)]
        value = data[f.name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{f.name} of a {data['type']} record is not {f.type}")
        values[f.name] = value
    return cls(**values)


def read_feedback(note: str) -> list[FeedbackRecord]:
    """Every feedback record in one commit's note; lines that are not Paved's are left aside."""
    found: list[FeedbackRecord] = []
    for line in note.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                found.append(from_json(line))
            except (ValueError, TypeError):
                continue
    return found


def feedback_records(notes: Mapping[str, str]) -> list[FeedbackRecord]:
    """The records of every note under `refs/notes/paved-feedback` (commit -> note text)."""
    return [r for note in notes.values() for r in read_feedback(note)]


def parse_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()  # GitHub logins are case-insensitive


# -- asking ----------------------------------------------------------------------------------------------


def invites(records: Iterable[FeedbackRecord], login: str, revision: str, now: datetime) -> bool:
    """Whether the apply comment of `revision` invites `login`: it did already (an `asked` record for it),
    or `login` was not asked within `ASK_EVERY` of `now`."""
    asked = [r for r in records if isinstance(r, Asked) and _same(r.login, login)]
    if any(r.revision == revision for r in asked):
        return True
    return not any((t := parse_time(r.at)) is not None and now - t < ASK_EVERY for r in asked)


def asked_for(records: Iterable[FeedbackRecord], login: str, revision: str) -> Asked | None:
    return next((r for r in records if isinstance(r, Asked) and _same(r.login, login) and r.revision == revision),
                None)


def invitation() -> str:
    """The end of an apply comment that invites its author to rate it (Markdown; it mentions nobody)."""
    offered = " · ".join(f"{emoji} {meaning}" for emoji, meaning in OFFERED)
    return ("\n---\n**How was asking Paved for this?** React to this comment: " + offered + ". "
            "Only the pull request's author's reaction counts. To say more, comment `/paved feedback` and your "
            "words. Paved asks each person at most once a week.\n")


# -- reading reactions back ------------------------------------------------------------------------------


def current_ratings(records: Iterable[FeedbackRecord]) -> dict[tuple[int, str], Rating]:
    """Each person's rating of each comment, keyed by (comment, login in lower case): their newest reaction
    not withdrawn since."""
    listed = list(records)
    gone = {(r.comment, r.login.lower(), r.reaction) for r in listed if isinstance(r, Withdrawn)}
    found: dict[tuple[int, str], Rating] = {}
    for r in listed:
        if not isinstance(r, Rating) or (r.comment, r.login.lower(), r.reaction) in gone:
            continue
        key = (r.comment, r.login.lower())
        held = found.get(key)
        if held is None or (r.reacted_at, r.reaction) > (held.reacted_at, held.reaction):
            found[key] = r
    return found


def read_back(records: Iterable[FeedbackRecord], invited: Invited,
              reactions: Sequence[Reaction]) -> list[FeedbackRecord]:
    """What to record of the reactions now on an invitation's comment: nothing when the author's rating
    is as recorded, a `rating` when they reacted anew (their newest scored reaction), a `withdrawn` when
    the reaction recorded is gone. Reactions of anyone else are no rating."""
    held = current_ratings(records).get((invited.comment, invited.login.lower()))
    theirs = [r for r in reactions if _same(r.login, invited.login) and r.content in SCORES]
    newest = max(theirs, key=lambda r: (r.created_at, r.id), default=None)
    if newest is not None:
        if held is not None and held.reaction == newest.id:
            return []
        rating = Rating(login=invited.login, pull_request=invited.pull_request, revision=invited.revision,
                        comment=invited.comment, reaction=newest.id, content=newest.content,
                        score=SCORES[newest.content], reacted_at=newest.created_at)
        return [rating]
    if held is not None:
        return [Withdrawn(login=invited.login, comment=invited.comment, reaction=held.reaction)]
    return []


def to_read(records: Iterable[FeedbackRecord], now: datetime) -> list[Invited]:
    """The invitations whose reactions reconcile reads: those asked within `READ_BACK` of `now`."""
    found: dict[int, Invited] = {}
    for r in records:
        if isinstance(r, Invited) and (t := parse_time(r.asked_at)) is not None and now - t <= READ_BACK:
            found.setdefault(r.comment, r)
    return sorted(found.values(), key=lambda r: (r.asked_at, r.comment))


# -- words ---------------------------------------------------------------------------------------------


def feedback_text(raw: str) -> tuple[str, bool]:
    """What is kept of `/paved feedback`'s words: stripped, at most `FEEDBACK_LIMIT` characters, and
    whether it was cut."""
    text = raw.strip()
    if len(text) <= FEEDBACK_LIMIT:
        return text, False
    return text[:FEEDBACK_LIMIT], True


def shown(text: str, limit: int = 200) -> str:
    """Someone's words as one inert line of plain text (a terminal, a CSV cell, an HTML page that escapes
    it): control and invisible format characters dropped, line breaks and runs of spaces made one space,
    cut to `limit` characters. Markdown uses `bot.render.markdown.echo` instead."""
    kept = "".join(" " if char.isspace() else char for char in text
                   if char.isspace() or unicodedata.category(char)[0] != "C")
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[:limit - 1] + "…"
