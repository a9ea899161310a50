"""Faults on purpose: the sandbox answering as an unreliable, rate-limited GitHub does, for testing clients.

`Sandbox.faults(rate=0.2, kinds=("500", "502", "secondary", "slow"), seed=1)` (or `paved sandbox serve
--faults 0.2`) makes a fraction of the REST API's calls go wrong in one of these ways:

- `500`, `502`: GitHub's server errors, with its error body and the usual headers; nothing was done.
- `secondary`: 403 with GitHub's secondary rate limit body and `Retry-After: retry_after`; nothing was done.
- `slow`: the request is carried out, and its answer leaves `slow_seconds` later (a client whose timeout is
  shorter gives up on a request that took effect).
- `drop`: the request is carried out, then the connection closes without an answer. It is also the one
  fault of git: a push (`git-receive-pack`) is applied, then the connection drops.

The sandbox's administration API (`/_sandbox/`), the sign-in pages and git's fetches never fail, so tests
can set up and look at what happened whatever the faults. `only` (a regular expression searched in
`"METHOD /path"`, the path below `/api/v3`) narrows the calls that may fail; `limit` stops after that many
faults. Which calls fail is drawn from `random.Random(seed)`, one draw per call that may fail, in the order
they arrive: a test making its calls one after another meets the same faults on every run.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["500", "502", "secondary", "slow", "drop"]
KINDS: tuple[FaultKind, ...] = ("500", "502", "secondary", "slow", "drop")
DEFAULT_KINDS: tuple[FaultKind, ...] = ("500", "502", "secondary", "slow")
# The kinds a call may meet that GitHub never answered or never acted on; `slow` and `drop` act first.
BEFORE_ACTING: frozenset[FaultKind] = frozenset({"500", "502", "secondary"})

# GitHub's words, as its API sends them (the request id is the answer's own `X-GitHub-Request-Id`).
SECONDARY_MESSAGE = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                     "If you reach out to GitHub Support for help, please include the request ID {request_id}.")
SECONDARY_DOCS = ("https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
                  "#about-secondary-rate-limits")


@dataclass(frozen=True)
class FaultPlan:
    """What may go wrong, how often, and from which seed."""

    rate: float
    kinds: tuple[FaultKind, ...] = DEFAULT_KINDS
    seed: int = 0
    slow_seconds: float = 2.0
    retry_after: int = 1
    only: str = ""
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"a fault rate is between 0 and 1, not {self.rate}")
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds are some of {', '.join(KINDS)}; not {', '.join(unknown) or 'none'}")
        if self.slow_seconds < 0 or self.retry_after < 0:
            raise ValueError("slow_seconds and retry_after are not negative")
        re.compile(self.only)


@dataclass
class Faults:
    """A `FaultPlan` at work: draws the faults, in arrival order, and counts them by kind."""

    plan: FaultPlan
    served: dict[str, int] = field(default_factory=dict)
    _random: random.Random = field(init=False, repr=False)
    _only: re.Pattern[str] = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.plan.seed)  # test faults, not secrets
        self._only = re.compile(self.plan.only)

    def draw(self, method: str, path: str, kinds: Iterable[FaultKind] | None = None) -> FaultKind | None:
        """The fault this call meets, if any; `kinds` narrows the plan's to those the call can meet."""
        possible = [k for k in self.plan.kinds if kinds is None or k in kinds]
        if not possible or not self._only.search(f"{method} {path}"):
            return None
        with self._lock:
            if self.plan.limit is not None and sum(self.served.values()) >= self.plan.limit:
                return None
            if self._random.random() >= self.plan.rate:
                return None
            kind = possible[self._random.randrange(len(possible))]
            self.served[kind] = self.served.get(kind, 0) + 1
        return kind
