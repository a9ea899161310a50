"""GitHub's primary rate limit, as the sandbox keeps it: an hourly budget of REST requests per caller.

As on GitHub, each caller has a budget for the `core` resource: a user (every token of theirs, user access
tokens of apps acting for them included), an installation, an app signing in with its JWT, and anonymous
callers by address. The budget is 5,000 requests an hour for every authenticated caller (GitHub's for a
user and for an installation outside Enterprise Cloud; set another with `set_limit`), 60 for anonymous
ones. The hour starts with a caller's first request and `X-RateLimit-Reset` says when it ends (epoch
seconds); the next request after that starts a new one.

Every REST request counts, refusals included, except two that GitHub lets through for free: an
authenticated conditional request answered `304 Not Modified` (the server gives its request back, see
`give_back`) and `GET /rate_limit`. Once the budget is spent, requests are refused with 403, GitHub's
"API rate limit exceeded" message and `X-RateLimit-Remaining: 0` until the hour ends; `usage()` tells
how many each caller spent and how many were refused, for tests that count a client's requests.

The clock is injected (`clock`, epoch seconds), so a test lets the hour pass without waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .auth import Principal
from .errors import ApiError

DEFAULT_LIMIT = 5000
ANONYMOUS_LIMIT = 60
WINDOW_SECONDS = 3600
DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


@dataclass(frozen=True)
class RateLimitUsage:
    """One caller's budget in its current hour."""

    caller: str  # `user:LOGIN`, `installation:ID`, `app:ID` or `anonymous:ADDRESS`
    limit: int
    used: int  # requests counted against the budget
    remaining: int
    reset: int  # epoch seconds when the hour ends
    refused: int  # requests answered 403 because the budget was spent


@dataclass
class _Window:
    reset: float
    used: int = 0
    refused: int = 0


@dataclass(frozen=True)
class _Caller:
    key: str  # as `RateLimitUsage.caller` names it
    anonymous: bool
    exceeded_for: str  # how GitHub's message names the caller


def _caller(principal: Principal, remote: str) -> _Caller:
    if principal.kind == "installation" and principal.installation is not None:
        installation = principal.installation.id
        return _Caller(f"installation:{installation}", False, f"installation ID {installation}")
    if principal.kind == "app" and principal.app is not None:
        return _Caller(f"app:{principal.app.id}", False, f"app ID {principal.app.id}")
    if principal.kind == "user" and principal.account is not None:
        return _Caller(f"user:{principal.account.login}", False, f"user ID {principal.account.id}")
    return _Caller(f"anonymous:{remote}", True, remote)


class RateLimits:
    """Every caller's hourly budget; safe to use from the server's threads at once."""

    def __init__(self, limit: int = DEFAULT_LIMIT, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._limit = limit
        self.clock = clock

    def set_limit(self, limit: int) -> None:
        """From now on, every authenticated caller's budget is `limit` requests an hour (what each has used
        in its current hour still counts)."""
        if limit < 0:
            raise ValueError(f"a rate limit is not negative, not {limit}")
        with self._lock:
            self._limit = limit

    def reset(self) -> None:
        """Every caller starts a new hour with its whole budget."""
        with self._lock:
            self._windows.clear()

    def take(self, principal: Principal, remote: str) -> dict[str, str]:
        """Count one request of the caller; GitHub's rate limit headers for its answer.

        Raises `ApiError` 403, carrying the headers, when the caller's budget is spent.
        """
        caller = _caller(principal, remote)
        with self._lock:
            window = self._window(caller.key)
            limit = self._limit_of(caller)
            if window.used >= limit:
                window.refused += 1
                headers = self._headers(window, limit)
                raise ApiError(403, _exceeded_message(caller), documentation_url=DOCS, headers=headers)
            window.used += 1
            return self._headers(window, limit)

    def give_back(self, principal: Principal, remote: str) -> dict[str, str]:
        """Return a request `take` counted that GitHub does not charge for (an authenticated conditional
        request answered 304); the headers for its answer."""
        caller = _caller(principal, remote)
        with self._lock:
            window = self._window(caller.key)
            if not caller.anonymous and window.used > 0:
                window.used -= 1
            return self._headers(window, self._limit_of(caller))

    def peek(self, principal: Principal, remote: str) -> dict[str, str]:
        """The caller's rate limit headers, counting nothing (`GET /rate_limit` is free on GitHub)."""
        caller = _caller(principal, remote)
        with self._lock:
            return self._headers(self._window(caller.key), self._limit_of(caller))

    def usage(self) -> list[RateLimitUsage]:
        """Each caller that made a request in its current hour, by name."""
        now = self.clock()
        with self._lock:
            found = []
            for key, window in sorted(self._windows.items()):
                if window.reset <= now:
                    continue
                limit = ANONYMOUS_LIMIT if key.startswith("anonymous:") else self._limit
                found.append(RateLimitUsage(key, limit, window.used, max(limit - window.used, 0), int(window.reset),
                                            window.refused))
            return found

    def _limit_of(self, caller: _Caller) -> int:
        return ANONYMOUS_LIMIT if caller.anonymous else self._limit

    def _window(self, key: str) -> _Window:
        """The caller's current hour, a new one if the last has ended (under the lock)."""
        now = self.clock()
        window = self._windows.get(key)
        if window is None or window.reset <= now:
            window = self._windows[key] = _Window(reset=now + WINDOW_SECONDS)
        return window

    @staticmethod
    def _headers(window: _Window, limit: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(limit - window.used, 0)),
            "X-RateLimit-Reset": str(int(window.reset)),
            "X-RateLimit-Used": str(min(window.used, limit)),
            "X-RateLimit-Resource": "core",
        }


def _exceeded_message(caller: _Caller) -> str:
    """GitHub's words for a spent primary rate limit."""
    if caller.anonymous:
        return (f"API rate limit exceeded for {caller.exceeded_for}. (But here's the good news: Authenticated "
                "requests get a higher rate limit. Check out the documentation for more details.)")
    return f"API rate limit exceeded for {caller.exceeded_for}."
