"""What a fork's plan job hands to the job that publishes its plan: which pull request, at which head.

A pull request from a fork runs Paved's workflow with a read-only token and no secrets, so its plan job
cannot publish the `paved/plan` check or the comment. It leaves this small record in an artifact, and a
`workflow_run` job of the base repository, which may write, publishes the plan (`paved ci` on
`workflow_run`). The record was written by a job that ran whatever the fork's workflow file says, so the
publishing job trusts nothing in it: it is read strictly (size, keys, types, one file, no links), used
only to learn which pull request to look at, and checked against GitHub's own word (the event's head
and the pull request as GitHub has it now) before anything is published. The plan itself is made again
by the publishing job from git objects, judged by the base branch's rules; none of the fork's output
is reused.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ConfigurationError

RECORD = "pull-request.json"
# The record is three fields; anything this large was not written by Paved.
MAX_BYTES = 1024
FIELDS = frozenset({"pull_request", "head_sha", "base_sha"})
SHA = re.compile(r"[0-9a-f]{40}")


class HandoffRefused(ConfigurationError):
    """Raised when a plan record cannot be read or is not one Paved writes; nothing is published."""


@dataclass(frozen=True, slots=True)
class Handoff:
    """The pull request a fork's plan job planned, and the head and base commits it saw."""

    pull_request: int
    head_sha: str
    base_sha: str

    def to_json(self) -> str:
        return json.dumps({"pull_request": self.pull_request, "head_sha": self.head_sha,
                           "base_sha": self.base_sha}, sort_keys=True) + "\n"


def write(folder: Path, handoff: Handoff) -> Path:
    """Leave `handoff` in `folder` for the artifact upload; returns the file written."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / RECORD
    target.write_text(handoff.to_json(), encoding="utf-8")
    return target


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise HandoffRefused("the plan record names a field twice")
    return dict(pairs)


def parse(raw: bytes) -> Handoff:
    """The record in `raw`, or `HandoffRefused` saying what is wrong with it."""
    if len(raw) > MAX_BYTES:
        raise HandoffRefused(f"the plan record is larger than {MAX_BYTES} bytes")
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HandoffRefused(f"the plan record is not JSON: {type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise HandoffRefused("the plan record is not a JSON object")
    if set(document) != FIELDS:
        unexpected = sorted(set(document) - FIELDS)
        missing = sorted(FIELDS - set(document))
        said = [f"unexpected {', '.join(unexpected)}" if unexpected else "",
                f"missing {', '.join(missing)}" if missing else ""]
        raise HandoffRefused(f"the plan record has other fields than Paved writes ({'; '.join(s for s in said if s)})")
    number = document["pull_request"]
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 2**31:
        raise HandoffRefused("the plan record's pull_request is not a pull request number")
    for name in ("head_sha", "base_sha"):
        if not isinstance(document[name], str) or not SHA.fullmatch(document[name]):
            raise HandoffRefused(f"the plan record's {name} is not a commit id")
    return Handoff(number, document["head_sha"], document["base_sha"])


def read(folder: Path) -> Handoff:
    """The record the artifact download left in `folder`, read strictly (see `parse`).

    Raises `HandoffRefused` when there is none, when it is a link or not a plain file (an artifact can
    hold a link to a runner's file), or when it is larger than a record can be.
    """
    path = folder / RECORD
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise HandoffRefused(f"no plan record at {path}: the pull request's plan job left none") from None
    except OSError as exc:
        reason = "it is a link" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__)
        raise HandoffRefused(f"the plan record {path} cannot be read: {reason}") from None
    with os.fdopen(fd, "rb") as record:
        if not stat.S_ISREG(os.fstat(record.fileno()).st_mode):
            raise HandoffRefused(f"the plan record {path} is not a file")
        return parse(record.read(MAX_BYTES + 1))
