"""Drift and retries, as data: what differs between a request and what exists, and when to apply again.

A resource has drifted when what exists is no longer what its request asks (someone changed it by
hand), when Paved could not read what exists, or when applying it failed. Each drift becomes one
issue on the platform repo, found again by a hidden marker and edited in place; `spec.drift: heal`
asks Paved to put the request's state back instead of only reporting it.

A failed apply of the default branch's head is retried with backoff, counted from the apply records
in that commit's note: after the first failed attempt Paved waits 1 minute, then 5, 30 and 120, and
after the fifth failed attempt it stops and says so (`/paved retry` still applies at any time).
Everything here is pure; time is always passed in as `now`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.apply import OBSERVATIONS, ApplyRecord
from bot.model import Resource
from bot.provider import Step

DriftMode = Literal["warn", "heal"]
LABEL = "paved:drift"
LABEL_COLOR = "d93f0b"
LABEL_DESCRIPTION = "Paved found something that is not as the catalogue asks"
_MARKER = re.compile(r"^<!-- paved:drift (\S+) -->")

# The waits after the 1st, 2nd, 3rd and 4th failed attempt; the 5th failure is the last.
BACKOFF: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                                  timedelta(minutes=120))
MAX_ATTEMPTS = len(BACKOFF) + 1


def mode_of(resource: Resource) -> DriftMode:
    """What the request asks Paved to do about drift: `warn` (the default) or `heal`."""
    return "heal" if resource.spec.get("drift") == "heal" else "warn"


@dataclass(frozen=True, slots=True)
class Drift:
    """One resource that is not as its request asks.

    `steps` are what would put it back (the provider's plan from what exists to the request);
    `unobserved` says why what exists could not be read; `error` is the last failed apply's (or
    heal's) message for it, with the merged `pull_request` it came from and how many `attempts` failed
    (`gave_up` once Paved stopped retrying on its own).
    """

    identity: str
    kind: str
    owner: str
    mode: DriftMode
    steps: tuple[Step, ...] = ()
    unobserved: str = ""
    error: str = ""
    path: str = ""
    pull_request: int | None = None
    attempts: int = 0
    gave_up: bool = False

    @property
    def name(self) -> str:
        return self.identity.split("/", 1)[1] if "/" in self.identity else self.identity


def marker(identity: str) -> str:
    """The hidden first line of a resource's drift issue, by which Paved finds it again."""
    return f"<!-- paved:drift {identity} -->"


def marked(body: str) -> str | None:
    """The identity a drift issue's body is about, or None when Paved did not write it."""
    found = _MARKER.match(body or "")
    return found.group(1) if found else None


def title(drift: Drift) -> str:
    if drift.error:
        return f"Paved could not apply {drift.identity}"
    if drift.unobserved:
        return f"Paved cannot see {drift.identity}"
    return f"{drift.identity} has drifted from the catalogue"


# -- retrying a failed apply ------------------------------------------------------------------------------

RetryStatus = Literal["due", "waiting", "exhausted"]


@dataclass(frozen=True, slots=True)
class RetryState:
    """Whether to apply a commit that is not applied yet: `attempts` failed so far, `next_at` when the
    next one is due (None when due now or never again)."""

    status: RetryStatus
    attempts: int
    next_at: datetime | None = None


def attempts(records: Sequence[ApplyRecord]) -> list[ApplyRecord]:
    """The attempts to apply a commit, among the records in its note (a heal or a drift check is none).

    Each of them failed. A successful apply moves `refs/paved/applied` and is never retried; until it
    moved it (a Paved killed in between), its record is the one to finish, not a failed attempt.
    """
    return [r for r in records if r.trigger not in OBSERVATIONS and not r.succeeded]


def retry_state(records: Sequence[ApplyRecord], now: datetime) -> RetryState:
    """When a commit that is not applied yet should be applied (again), from the records in its note."""
    tried = attempts(records)
    if not tried:
        return RetryState("due", 0)
    if len(tried) >= MAX_ATTEMPTS:
        return RetryState("exhausted", len(tried))
    try:
        last = datetime.fromisoformat(tried[-1].applied_at)
    except ValueError:
        return RetryState("due", len(tried))  # an unreadable time must not stop retries for good
    if last.tzinfo is None and now.tzinfo is not None:
        last = last.replace(tzinfo=now.tzinfo)
    next_at = last + BACKOFF[len(tried) - 1]
    return RetryState("due" if now >= next_at else "waiting", len(tried), None if now >= next_at else next_at)


def failures(record: ApplyRecord) -> dict[str, str]:
    """identity -> message, for each resource whose apply failed in `record`."""
    return {r.resource: r.message or "failed" for r in record.results if r.status == "failed"}
