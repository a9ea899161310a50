"""The one place that talks to GitHub: the `Forge` port implemented with PyGithub.

Works against github.com, GitHub Enterprise and the local sandbox forge alike; only the API base URL
differs. Every client is built by `_github` (or, for the App itself, `_integration`) with the same
transport: a timeout on every answer, `_Retry`, PyGithub's `GithubRetry` tuned for Paved (see
`RetryPolicy`), and conditional reads that GitHub answers for free when nothing changed (see `ETagCache`).
`rate_limit_of` says what is left of a client's hourly budget of requests, which reconcile paces itself by.
Every failure, GitHub's refusals and the transport's errors alike, is wrapped in `ForgeError` carrying a
one-line message and GitHub's status (0 when GitHub never answered).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

from cachecontrol import CacheControlAdapter
from cachecontrol.cache import BaseCache
from cachecontrol.controller import CacheController
from cachecontrol.heuristics import BaseHeuristic
from github import Auth, Github, GithubException, GithubIntegration, GithubRetry
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass, Requester
from requests import PreparedRequest, RequestException
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import HTTPError, InvalidHeader, MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from bot.deployments import Deployment, EnvironmentStatus, LatestRun, ServiceStatus
from bot.errors import PavedError
from bot.forge import (
    ANNOTATIONS_PER_REQUEST,
    Annotation,
    CheckRun,
    ForgeRepository,
    Issue,
    Permission,
    PullRequest,
    Reaction,
    Review,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a request to GitHub fails with when no answer comes back: requests' errors (refused, dropped and
# timed-out connections), urllib3's (`MaxRetryError` and the like, should one get past requests) and the
# sockets' own (`OSError`, of which `TimeoutError` and requests' errors are kinds too).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (RequestException, HTTPError, OSError)


class ForgeError(PavedError):
    """Raised when GitHub refuses or fails a request; `status` is the HTTP status (0 when none)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def _one_line(text: str) -> str:
    return " ".join(text.split())


def refusal(exc: GithubException) -> str:
    """GitHub's own words for a refusal, on one line: its message (or the start of a proxy's page) and the status."""
    data = exc.data if isinstance(exc.data, dict) else {}
    raw = exc.data if isinstance(exc.data, str) else ""  # a proxy's or load balancer's page, not GitHub's JSON
    return _one_line(f"{data.get('message') or raw[:200] or 'no message'} ({exc.status})")


# GitHub refuses a comment or an issue body longer than this, counted as JavaScript counts a string's length.
BODY_LIMIT = 65536
_CUT = "\n\n> ✂️ Cut here to fit GitHub's size limit for a comment (65,536 characters)."


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit_body(body: str) -> str:
    """`body` as GitHub takes it: whole when it fits, else cut after its last line that fits, saying so.

    Most callers fit their text themselves (a plan comment drops detail first); this keeps one whose text
    grows with the catalogue, such as the table of a first apply, from being refused outright.
    """
    if _length(body) <= BODY_LIMIT:
        return body
    kept = body.encode("utf-16-le")[:2 * (BODY_LIMIT - _length(_CUT))].decode("utf-16-le", "ignore")
    return kept[:kept.rfind("\n")] + _CUT if "\n" in kept else kept + _CUT


def transport_failure(exc: BaseException) -> str:
    """How a request got no answer, on one line: the innermost error (requests wraps urllib3's, which wraps the
    socket's) by kind and words, e.g. `ReadTimeoutError: ... Read timed out. (read timeout=15)`."""
    root = exc
    for _ in range(5):
        inner = getattr(root, "reason", None)  # urllib3's MaxRetryError
        if not isinstance(inner, BaseException) and root.args and isinstance(root.args[0], BaseException):
            inner = root.args[0]  # requests' errors hold urllib3's as their first argument
        if not isinstance(inner, BaseException):
            break
        root = inner
    return _one_line(f"{type(root).__name__}: {root}")[:300]


@contextmanager
def _wrapped(what: str) -> Iterator[None]:
    try:
        yield
    except GithubException as exc:
        verb = "failed" if exc.status >= 500 else "refused"
        raise ForgeError(f"GitHub {verb} to {what}: {refusal(exc)}", status=exc.status) from exc
    except TRANSPORT_ERRORS as exc:
        raise ForgeError(f"GitHub did not answer when Paved tried to {what}: {transport_failure(exc)}") from exc


# -- the transport: timeouts and retries ---------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """How hard Paved tries one request to GitHub before giving up with a `ForgeError`.

    `attempts` in all, the first included. Between them Paved waits what GitHub asks (`Retry-After`, or
    until `X-RateLimit-Reset` when a rate limit is spent), else `backoff` seconds, doubling after each
    failure, with jitter. The waits of one request never add up to more than `max_wait`: a rate limit that
    asks for longer fails at once, so a job never sits for an hour on a spent limit. `timeout` bounds the
    wait for the connection and for each read of the answer.
    """

    attempts: int = 5
    backoff: float = 1.0
    max_wait: float = 60.0
    timeout: int = 15  # whole seconds: PyGithub takes no fractions


RETRIES = RetryPolicy()
# What GitHub answers when it did not do the request and asks to be asked again: its servers' failures and
# its rate limits (403 and 429; `GithubRetry` adds 403 and tells a rate limit from a refusal by its body).
_RETRIED_STATUSES = [429, 500, 502, 503, 504]


class _Retry(GithubRetry):
    """PyGithub's `GithubRetry` (a urllib3 `Retry` that knows GitHub's rate-limit answers), with a budget.

    - **Which requests go again.** An answer of 500, 502, 503, 504 or a rate limit (403/429 with
      `Retry-After`, or a body saying so) is GitHub saying it did not do the request, so any method may be
      sent again (a gateway's 502/504 could hide a write done behind it; it is taken at its word too). A
      request that got no answer is another matter. When the connection could not be made, GitHub never
      saw it: any method goes again. When it was sent and no answer came (a read timeout, a dropped
      connection), GitHub may have acted on it: only idempotent methods (urllib3's default
      `allowed_methods`: GET, HEAD, PUT, DELETE, OPTIONS, TRACE) go again. So a POST that creates a
      comment, a check run or a repository is never repeated blindly: it fails with a `ForgeError`, and
      the sticky comment and check runs are looked up before they are created, so the next run edits
      what the lost answer made.
    - **How long it waits.** What GitHub asks, else `get_backoff_time`; the wait is decided and counted
      when the retry is granted, and a wait that would take the request's waits past `max_wait` ends the
      retries: the last answer stands (PyGithub raises it with its status) or the last error is raised.
    """

    def __init__(self, *, max_wait: float = RETRIES.max_wait, slept: float = 0.0, wait: float = 0.0,
                 counted: Callable[[int, str | None], None] | None = None, **kwargs: Any) -> None:
        self.max_wait = max_wait
        self.slept = slept  # seconds this request has waited already
        self.wait = wait  # seconds to wait before the attempt this object grants
        self.counted = counted  # counts an answer PyGithub never sees (see `_observed`)
        kwargs["max_rate_limit_wait"] = max(max_wait - slept, 0.0)
        super().__init__(**kwargs)

    @classmethod
    def of(cls, policy: RetryPolicy, counted: Callable[[int, str | None], None] | None = None) -> _Retry:
        return cls(total=max(policy.attempts - 1, 0), status_forcelist=list(_RETRIED_STATUSES),
                   allowed_methods=Retry.DEFAULT_ALLOWED_METHODS, backoff_factor=policy.backoff,
                   backoff_max=policy.max_wait, raise_on_status=False, max_wait=policy.max_wait,
                   secondary_rate_wait=60.0,  # GitHub's advice when a secondary limit names no time
                   counted=counted)

    def new(self, **kw: Any) -> _Retry:
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("slept", self.slept)
        kw.setdefault("counted", self.counted)
        retry = super().new(**kw)
        assert isinstance(retry, _Retry)
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # An answer, whatever the method: see the class's description. (`allowed_methods` still governs
        # requests that got no answer, in `increment`.)
        return super().is_retry("GET", status_code, has_retry_after)

    def get_backoff_time(self) -> float:
        """`backoff` seconds after the first failure, doubling after each next one, each wait drawn between half
        and all of that so that clients failing together do not come back together (urllib3's own waits
        nothing after a first failure)."""
        failures = len(self.history)
        if failures == 0:
            return 0.0
        ceiling = min(self.backoff_max, self.backoff_factor * 2 ** (failures - 1))
        return ceiling * (0.5 + random.random() / 2)  # jitter, not a secret

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> _Retry:
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[arg-type]
        except GithubException:
            self._count(response)  # a refusal `GithubRetry` raises itself, before PyGithub's hook sees it
            raise
        # (On MaxRetryError the answer stands and goes on to PyGithub, which counts it.)
        assert isinstance(retry, _Retry)
        wait = self._wait_before(retry, response)
        if response is not None:
            what = f"answered {response.status}"
        else:
            what = f"did not answer ({transport_failure(error)})" if error is not None else "did not answer"
        if self.slept + wait > self.max_wait:
            log.warning("GitHub %s to %s %s; giving up: waiting %.1f s more would pass %.0f s", what, method, url,
                        wait, self.max_wait)
            raise MaxRetryError(_pool, url or "", error or ResponseError(  # type: ignore[arg-type]
                f"{what}, and waiting {wait:.1f} s more would pass {self.max_wait:.0f} s"))
        retry.wait = wait
        retry.slept = self.slept + wait
        retry.max_rate_limit_wait = max(self.max_wait - retry.slept, 0.0)
        log.info("GitHub %s to %s %s; trying again in %.1f s", what, method, url, wait)
        self._count(response)  # an answer asked again: PyGithub only sees the last
        return retry

    def _count(self, response: BaseHTTPResponse | None) -> None:
        if response is not None and self.counted is not None:
            self.counted(int(response.status), response.headers.get("X-RateLimit-Remaining"))

    @staticmethod
    def _wait_before(retry: _Retry, response: BaseHTTPResponse | None) -> float:
        if response is not None:
            try:
                asked = retry.get_retry_after(response)
            except InvalidHeader:
                asked = None
            if asked is not None:
                return asked
            reset = response.headers.get("X-RateLimit-Reset") or ""
            if response.status in (403, 429) and response.headers.get("X-RateLimit-Remaining") == "0" \
                    and reset.isdigit():
                return max(int(reset) - time.time() + 1, retry.get_backoff_time())
        return retry.get_backoff_time()

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        # The wait was decided, and counted against `max_wait`, when this attempt was granted.
        if self.wait > 0:
            time.sleep(self.wait)


# PyGithub waits 0.25 s between requests and 1 s between writes by default, as GitHub asks of
# clients to stay clear of its secondary rate limits. Against the local sandbox forge nothing is
# gained by waiting, so callers may turn it off.
POLITE = {"seconds_between_requests": 0.25, "seconds_between_writes": 1.0}
IMPATIENT: dict[str, float | None] = {"seconds_between_requests": None, "seconds_between_writes": None}


def _transport(api_url: str, polite: bool, retries: RetryPolicy, observed: bool) -> dict[str, Any]:
    """The options every client is built with (an installation's token renewals inherit them too)."""
    return {"retry": _Retry.of(retries, _counter(api_url) if observed else None), "timeout": retries.timeout,
            **(POLITE if polite else IMPATIENT)}


def _counter(api_url: str) -> Callable[[int, str | None], None]:
    """Counts one answer of GitHub's, and the rate limit it reports, in Paved's metrics."""
    from bot.adapters import metrics

    def count(status: int, remaining: str | None) -> None:
        metrics.github_answered(api_url, status, remaining)

    return count


def _observed(requester: Any, api_url: str) -> None:
    """Count every request `requester` makes, and record the rate limit GitHub reports, in Paved's metrics.

    PyGithub calls its requester's `DEBUG_ON_RESPONSE` hook after every response it is handed, with the status
    and the headers and whether or not its debug mode is on: wrapping it on this one requester sees each call
    of this client, without touching PyGithub's classes (other clients in the process are not counted). The
    answers its retries swallow (a 502 asked again, say) are counted by `_Retry` instead.
    """
    count = _counter(api_url)
    original = requester.DEBUG_ON_RESPONSE

    def on_response(status: int, headers: dict[str, Any], data: Any) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        count(int(status), None if remaining is None else str(remaining))
        original(status, headers, data)

    requester.DEBUG_ON_RESPONSE = on_response


# -- conditional reads: GitHub's ETags, kept between jobs -----------------------------------------------------
#
# GitHub answers a GET with an `ETag`; asking again with it as `If-None-Match` gets `304 Not Modified`, which
# does not count against the hourly rate limit (5,000 requests for an installation). Reconcile reads every
# resource of the catalogue at every run, and most of them have not changed, so every client Paved builds
# keeps GitHub's answers in one store for the whole process and asks again conditionally: a reconcile that
# finds nothing changed spends next to nothing of the limit.
#
# The caching is CacheControl's (a requests adapter that stores answers and adds `If-None-Match`), mounted on
# the requests session PyGithub talks through. PyGithub offers no way to hand it a session (PyGithub#2865
# asks for one): it builds the session inside its connection class, which `_conditional` swaps, for this one
# client, for one that mounts CacheControl's adapter with the client's own retries and pool.
#
# Three choices make it safe:
# - **Always asked again.** GitHub also sends `Cache-Control: private, max-age=60`, which would let a cache
#   answer for a minute without asking. Paved never does (`_AlwaysAsk`): an observation may precede a write
#   (a heal, an apply), and acting on a minute-old state could undo someone's change. Asking costs nothing
#   when the answer is unchanged, and every read is current.
# - **Kept per credential.** GitHub's answers `Vary` by `Authorization`: what a token may see decides what
#   is answered. Each client stores under the name of its credential (an App installation, or a token by its
#   digest), never sharing answers with another. An installation's token changes with every job (and within
#   the hour), so `Authorization` is taken out of `Vary` (`_PerCredential`): the installation is the key,
#   not the token that stands for it this hour.
# - **Bounded.** The store keeps the most recently used answers up to `ANSWERS_KEPT_BYTES` (serialized),
#   dropping the least recently used beyond that: a process's memory does not grow with the organization.

# About 8 KiB per answer (a repository's JSON with its headers is the largest Paved reads often): room for a
# few reconciles' worth of 1,000 services' answers, far below what a `paved serve` process needs otherwise.
ANSWERS_KEPT_BYTES = 64 * 1024 * 1024


class ETagCache(BaseCache):
    """GitHub's answers to this process's reads, by credential and URL, to be asked for again with their ETag.

    CacheControl's store interface (`get`, `set`, `delete`) over one ordered map, safe across the queue's
    threads: an answer read or stored becomes the most recent, and the least recent go once the answers
    take more than `limit` bytes.
    """

    def __init__(self, limit: int = ANSWERS_KEPT_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
            return found

    def set(self, key: str, value: bytes, expires: int | datetime | None = None) -> None:
        # `expires` is ignored: every answer is asked for again anyway (see `_AlwaysAsk`).
        with self._lock:
            self._drop(key)
            if len(value) > self.limit:
                return
            self._answers[key] = value
            self.size += len(value)
            while self.size > self.limit:
                self._drop(next(iter(self._answers)))

    def delete(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def clear(self) -> None:
        """Forget every answer (the next read of each costs a request again)."""
        with self._lock:
            self._answers.clear()
            self.size = 0

    def __len__(self) -> int:
        return len(self._answers)

    def _drop(self, key: str) -> None:
        old = self._answers.pop(key, None)
        if old is not None:
            self.size -= len(old)


# One store for the whole process: jobs build a new client each, and it is the next job's reads that ask again.
ETAGS = ETagCache()


class _CredentialShare(BaseCache):
    """One credential's answers in the process's `ETagCache`: its keys carry the credential's name."""

    def __init__(self, store: ETagCache, credential: str) -> None:
        self.store = store
        self.prefix = f"{credential} "

    def get(self, key: str) -> bytes | None:
        return self.store.get(self.prefix + key)

    def set(self, key: str, value: bytes, expires: int | datetime | None = None) -> None:
        self.store.set(self.prefix + key, value)

    def delete(self, key: str) -> None:
        self.store.delete(self.prefix + key)


class _AlwaysAsk(CacheController):
    """Never answer from the store without asking GitHub: a stored answer only lends its ETag to the request."""

    def cached_request(self, request: PreparedRequest) -> Literal[False]:
        return False


class _PerCredential(BaseHeuristic):
    """Take `Authorization` out of `Vary` before an answer is stored: the store is per credential already,
    and an installation's token, which `Authorization` carries, is new with every job."""

    def update_headers(self, response: BaseHTTPResponse) -> dict[str, str]:
        vary = response.headers.get("Vary")
        if not vary:
            return {}
        named = [v.strip() for v in vary.split(",") if v.strip()]
        kept = [v for v in named if v.lower() != "authorization"]
        return {"Vary": ", ".join(kept)} if kept != named else {}

    def warning(self, response: BaseHTTPResponse) -> str | None:
        return None  # the answer is GitHub's as sent; only whom it is kept for changed


def credential_of(auth: Auth.Auth | None) -> str | None:
    """The name answers are kept under for a client authenticating with `auth`; None: not kept."""
    if isinstance(auth, Auth.AppInstallationAuth):
        return f"installation:{auth.app_id}:{auth.installation_id}"
    if isinstance(auth, Auth.Token):
        return f"token:{hashlib.sha256(auth.token.encode()).hexdigest()[:32]}"
    return None  # an App's own JWT, or no credential: a handful of requests per job, never worth keeping


def _conditional(requester: Requester, credential: str, store: ETagCache) -> None:
    """Make `requester`'s GETs conditional, keeping answers in `store` under `credential` (see above)."""
    base = HTTPSRequestsConnectionClass if requester.scheme == "https" else HTTPRequestsConnectionClass
    answers = _CredentialShare(store, credential)

    def connect(*args: Any, **kwargs: Any) -> HTTPRequestsConnectionClass | HTTPSRequestsConnectionClass:
        connection = base(*args, **kwargs)
        adapter = CacheControlAdapter(answers, controller_class=_AlwaysAsk, heuristic=_PerCredential(),
                                      max_retries=connection.retry, pool_connections=connection.pool_size,
                                      pool_maxsize=connection.pool_size)
        connection.adapter = adapter
        connection.session.mount(f"{connection.protocol}://", adapter)
        return connection

    # PyGithub's requester builds its connection from this private attribute (name-mangled); checked by
    # tests/test_github_requests.py, which counts the 304s it earns.
    requester._Requester__connectionClass = connect  # type: ignore[attr-defined]


def _github(api_url: str, auth: Auth.Auth | None, *, polite: bool, retries: RetryPolicy,
            observed: bool = True, conditional: bool = True) -> Github:
    """Every PyGithub client Paved makes, with the same transport; `conditional`: its reads ask again with the
    ETags of the answers this process keeps for its credential (see `ETagCache`)."""
    client = Github(base_url=api_url, auth=auth, per_page=100, **_transport(api_url, polite, retries, observed))
    if observed:
        _observed(client.requester, api_url)
    credential = credential_of(auth)
    if conditional and credential is not None:
        _conditional(client.requester, credential, ETAGS)
    return client


def connect_with_token(api_url: str, token: str, *, polite: bool = True, retries: RetryPolicy = RETRIES) -> Github:
    return _github(api_url, Auth.Token(token), polite=polite, retries=retries)


def person_forge(api_url: str, token: str, *, retries: RetryPolicy = RETRIES) -> GitHubForge:
    """A forge acting as the person whose user access token `token` is, for one errand: nothing is cached by
    the token (no conditional requests), so nothing of it outlives the forge."""
    return GitHubForge(_github(api_url, Auth.Token(token), polite=True, retries=retries, conditional=False))


def oauth_user_token(api_url: str, client_id: str, client_secret: str, code: str, *,
                     retries: RetryPolicy = RETRIES) -> str:
    """The user access token GitHub's OAuth web flow gives for `code` (the visitor's, signing in)."""
    client = _github(api_url, None, polite=False, retries=retries, observed=False)
    application = client.get_oauth_application(client_id, client_secret)
    try:
        # GitHub answers a refused exchange with 200 and an `error`; PyGithub raises on it.
        return str(application.get_access_token(code).token)
    except GithubException as exc:
        data = exc.data if isinstance(exc.data, dict) else {}
        raise ForgeError(f"GitHub refused the sign-in code: {_one_line(str(data.get('error') or exc.status))}",
                         status=exc.status) from exc
    except TRANSPORT_ERRORS as exc:
        raise ForgeError(f"GitHub could not be reached to finish signing in ({transport_failure(exc)})") from exc


def login_of_token(api_url: str, token: str, *, retries: RetryPolicy = RETRIES) -> str:
    """Whose a user access token is."""
    # A visitor's token, used once: nothing of it is kept.
    client = _github(api_url, Auth.Token(token), polite=False, retries=retries, observed=False, conditional=False)
    try:
        return str(client.get_user().login)
    except GithubException as exc:
        raise ForgeError(f"GitHub would not say who signed in ({exc.status})", status=exc.status) from exc
    except TRANSPORT_ERRORS as exc:
        raise ForgeError(f"GitHub could not be reached to finish signing in ({transport_failure(exc)})") from exc


@dataclass(frozen=True, slots=True)
class RateLimit:
    """What is left of a credential's hourly budget of REST requests (GitHub's primary rate limit)."""

    remaining: int
    limit: int
    resets_at: int  # epoch seconds: when the hour ends and the whole budget is back


def rate_limit_of(client: Github) -> RateLimit:
    """The client's budget as GitHub's last answer to it said (its `X-RateLimit-*` headers: no request), or as
    `GET /rate_limit` says (which costs nothing) when no answer has said yet or the hour it spoke of is over."""
    with _wrapped("read GitHub's rate limit"):
        remaining, limit = client.rate_limiting  # asks GET /rate_limit itself when nothing was seen yet
        resets_at = client.rate_limiting_resettime
        if resets_at <= time.time():
            core = client.get_rate_limit().resources.core
            remaining, limit, resets_at = core.remaining, core.limit, int(core.reset.timestamp())
    return RateLimit(int(remaining), int(limit), int(resets_at))


def installation_client(api_url: str, app_id: int | str, private_key: str, installation_id: int, *,
                        polite: bool = True, retries: RetryPolicy = RETRIES) -> Github:
    """A client acting as one installation of a GitHub App (its token is renewed by PyGithub)."""
    auth = Auth.AppAuth(int(app_id), private_key).get_installation_auth(installation_id)
    return _github(api_url, auth, polite=polite, retries=retries)


def _integration(api_url: str, app_id: int | str, private_key: str, *, retries: RetryPolicy = RETRIES) -> \
        GithubIntegration:
    # 100 a page, as every client's lists: listing an organization's repositories costs a tenth of a request each.
    integration = GithubIntegration(base_url=api_url, auth=Auth.AppAuth(int(app_id), private_key), per_page=100,
                                    **_transport(api_url, True, retries, True))
    _observed(integration.requester, api_url)
    return integration


def installation_of(api_url: str, app_id: int | str, private_key: str, repo: str, *,
                    retries: RetryPolicy = RETRIES) -> int:
    """The id of the App's installation that covers `repo`."""
    owner, name = repo.split("/", 1)
    integration = _integration(api_url, app_id, private_key, retries=retries)
    with _wrapped(f"find the installation for {repo}"):
        return int(integration.get_repo_installation(owner, name).id)


def _pull(repo: str, pr: Any) -> PullRequest:
    head_repo = pr.head.repo.full_name if pr.head.repo is not None else None
    return PullRequest(
        repo=repo, number=pr.number, title=pr.title, author=pr.user.login, head_sha=pr.head.sha,
        head_ref=pr.head.ref, base_ref=pr.base.ref, base_sha=pr.base.sha, state=pr.state,
        merged=bool(pr.merged), merge_commit_sha=pr.merge_commit_sha,
        merged_by=pr.merged_by.login if pr.merged and pr.merged_by is not None else None,
        draft=bool(pr.draft), from_fork=head_repo is not None and head_repo != repo, url=pr.html_url,
        created_at=pr.created_at.astimezone(UTC).isoformat(timespec="seconds") if pr.created_at else "",
        head_repo=head_repo or "", body=pr.body or "", labels=tuple(str(label.name) for label in pr.labels),
    )


def _listed_pull(repo: str, data: dict[str, Any]) -> PullRequest:
    """A pull request from a list's JSON (GitHub's "pull request simple"), read as it is: making PyGithub's
    object of it would ask for each whole pull request again to say whether it merged."""
    head, base = data.get("head") or {}, data.get("base") or {}
    head_repo = str((head.get("repo") or {}).get("full_name") or "")
    return PullRequest(
        repo=repo, number=int(data["number"]), title=str(data.get("title") or ""),
        author=str((data.get("user") or {}).get("login") or ""), head_sha=str(head.get("sha") or ""),
        head_ref=str(head.get("ref") or ""), base_ref=str(base.get("ref") or ""), base_sha=str(base.get("sha") or ""),
        state="closed" if data.get("state") == "closed" else "open", merged=data.get("merged_at") is not None,
        merge_commit_sha=data.get("merge_commit_sha"), draft=bool(data.get("draft")),
        from_fork=bool(head_repo) and head_repo != repo, url=str(data.get("html_url") or ""),
        created_at=str(data.get("created_at") or ""), head_repo=head_repo, body=str(data.get("body") or ""),
        labels=tuple(str(label.get("name")) for label in data.get("labels") or [] if isinstance(label, dict)))


def _output(check: CheckRun, annotations: tuple[Annotation, ...]) -> dict[str, Any]:
    return {
        "title": check.title[:255], "summary": check.summary[:65535], "text": check.text[:65535],
        "annotations": [
            {"path": a.path, "start_line": a.line, "end_line": a.line, "annotation_level": a.level,
             "message": a.message[:64 * 1024], "title": a.title[:255],
             **({"start_column": a.column, "end_column": a.column} if a.column else {})}
            for a in annotations
        ],
    }


def _shown_of(annotations: Iterable[Annotation]) -> list[tuple[str, int, int, str, str, str, int]]:
    """`annotations` as GitHub will list them once published (cut as `_output` cuts them), in order."""
    return sorted((a.path, a.line, a.line, a.level, a.message[:64 * 1024], a.title[:255], a.column)
                  for a in annotations)


def _shown(listed: Iterable[Any]) -> list[tuple[str, int, int, str, str, str, int]]:
    """The annotations a check run carries, as GitHub's list-annotations endpoint gives them, in order."""
    return sorted((str(a.path), int(a.start_line), int(a.end_line), str(a.annotation_level), str(a.message or ""),
                   str(a.title or ""), int(a.start_column or 0)) for a in listed)


class GitHubForge:
    """`Forge` over one PyGithub client.

    Paved knows its own comments and check runs by who made them, never by their text alone: anyone
    who may comment can write Paved's hidden markers, and any workflow can name a check run
    `paved/plan`. Acting as a GitHub App installation, Paved's are those made by its App (a comment's
    `performed_via_github_app`, a check run's `app`); acting with a token, those of the token's user.
    """

    def __init__(self, client: Github, *, login: str | None = None) -> None:
        self.client = client
        self._repos: dict[str, Any] = {}
        self._login = login  # whom a token acts as, when GitHub will not say (the Actions job token)

    def rate_limit(self) -> RateLimit:
        """What is left of this client's hourly budget of requests (see `rate_limit_of`)."""
        return rate_limit_of(self.client)

    @property
    def app_id(self) -> int | None:
        """The id of the GitHub App Paved acts as, or None when it acts with a person's token."""
        auth = self.client.requester.auth
        return int(auth.app_id) if isinstance(auth, Auth.AppInstallationAuth) else None

    def _user_login(self) -> str:
        if self._login is None:
            with _wrapped("read whose token Paved acts with"):
                self._login = str(self.client.get_user().login)
        return self._login

    def _mine(self, comment: Any) -> bool:
        """Whether Paved wrote this issue comment."""
        app_id = self.app_id
        if app_id is not None:
            via = comment.performed_via_github_app
            return via is not None and int(via.id) == app_id
        return comment.user is not None and comment.user.login == self._user_login()

    def _own_run(self, run: Any) -> bool:
        """Whether Paved published this check run (only Apps publish check runs).

        Anyone may name a check run `paved/plan`: a pull request can add a workflow job of that name, and
        GitHub Actions publishes a run for it. Paved's own are its App's, known by id when Paved holds the
        App's key, and by slug when it acts with an installation token it was handed (`paved ci`).
        """
        app_id = self.app_id
        if app_id is not None:
            return run.app is not None and int(run.app.id) == app_id
        slug = self._login.removesuffix("[bot]") if self._login and self._login.endswith("[bot]") else None
        return slug is None or (run.app is not None and run.app.slug == slug)

    def _own_runs(self, repo: str, sha: str, name: str) -> list[Any]:
        return [run for run in self._repo(repo).get_commit(sha).get_check_runs(check_name=name) if self._own_run(run)]

    def _repo(self, repo: str) -> Any:
        if repo not in self._repos:
            with _wrapped(f"read {repo}"):
                self._repos[repo] = self.client.get_repo(repo)
        return self._repos[repo]

    def _call(self, what: str, action: Callable[[], T]) -> T:
        with _wrapped(what):
            return action()

    def pull_request(self, repo: str, number: int) -> PullRequest:
        return self._call(f"read pull request #{number} of {repo}",
                          lambda: _pull(repo, self._repo(repo).get_pull(number)))

    def open_pull_requests(self, repo: str) -> list[PullRequest]:
        return self._call(f"list the open pull requests of {repo}",
                          lambda: [_pull(repo, pr) for pr in self._repo(repo).get_pulls(state="open")])

    def reviews(self, repo: str, number: int) -> list[Review]:
        def read() -> list[Review]:
            return [Review(r.user.login, r.state, r.commit_id)
                    for r in self._repo(repo).get_pull(number).get_reviews() if r.user is not None]
        return self._call(f"read the reviews of #{number} in {repo}", read)

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> int:
        body = fit_body(body)

        def upsert() -> int:
            issue = self._repo(repo).get_issue(number)
            for comment in issue.get_comments():
                if comment.body.startswith(marker) and self._mine(comment):
                    if comment.body != body:
                        comment.edit(body)
                    return int(comment.id)
            return int(issue.create_comment(body).id)
        return self._call(f"comment on #{number} in {repo}", upsert)

    def has_path(self, repo: str, path: str) -> bool:
        """Looked for folder by folder from the root, one listing each.

        GitHub's answer to a missing path (404) always costs a request; a folder's listing, asked for again
        with its ETag, costs none while the folder is unchanged. Reconcile asks every repository the App sees
        whether it is a platform repo, so looking from the root makes that free for every repository not
        pushed since (asking for the path itself would cost one request per repository, at every reconcile).
        """
        folder = ""
        try:
            with _wrapped(f"look for {path} in {repo}"):
                for name in [part for part in path.split("/") if part]:
                    listed = f"/repos/{repo}/contents" + (f"/{urllib.parse.quote(folder)}" if folder else "")
                    _, entries = self.client.requester.requestJsonAndCheck("GET", listed)
                    if not isinstance(entries, list) or not any(e.get("name") == name for e in entries):
                        return False  # not there (or `folder` is a file)
                    folder = f"{folder}/{name}".lstrip("/")
        except ForgeError as exc:
            if exc.status == 404:  # the repository is empty
                return False
            raise
        return True

    def own_comment(self, repo: str, number: int, marker: str) -> str | None:
        def find() -> str | None:
            return next((str(c.body) for c in self._repo(repo).get_issue(number).get_comments()
                         if c.body.startswith(marker) and self._mine(c)), None)
        return self._call(f"read the comments of #{number} in {repo}", find)

    def comment(self, repo: str, number: int, body: str) -> int:
        return self._call(f"comment on #{number} in {repo}",
                          lambda: int(self._repo(repo).get_issue(number).create_comment(fit_body(body)).id))

    def react(self, repo: str, number: int, comment_id: int, content: str) -> None:
        self._call(f"react to comment {comment_id} in {repo}",
                   lambda: self._repo(repo).get_issue(number).get_comment(comment_id).create_reaction(content))

    def comment_reactions(self, repo: str, comment_id: int) -> list[Reaction] | None:
        path = f"/repos/{urllib.parse.quote(repo, safe='/')}/issues/comments/{int(comment_id)}/reactions"

        def read() -> list[Reaction] | None:
            try:
                listed = self._read(path, {"per_page": 100})
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
            return [Reaction(int(r["id"]), _login(r.get("user")), _text(r.get("content")), _text(r.get("created_at")))
                    for r in listed if isinstance(r, dict) and isinstance(r.get("id"), int)] \
                if isinstance(listed, list) else []
        return self._call(f"read the reactions on comment {comment_id} in {repo}", read)

    def publish_check(self, repo: str, check: CheckRun) -> int:
        """Publish `check` on its head: one run per head and name, carrying each annotation once.

        GitHub appends the annotations of every update to those the run has (its update endpoint says so),
        and cannot delete one. So a re-plan whose annotations are already on the run updates everything
        else and sends none; one whose annotations differ starts a new run for the head, because the newest
        run of a name is the one GitHub lists (`filter=latest`) and shows on the pull request, with only
        its own annotations. Editing the old run would show old and new findings side by side, and the
        person fixing them could not tell which still hold.
        """
        def publish() -> int:
            target = self._repo(repo)
            batches = [check.annotations[i:i + ANNOTATIONS_PER_REQUEST]
                       for i in range(0, len(check.annotations), ANNOTATIONS_PER_REQUEST)] or [()]
            existing = next(iter(self._own_runs(repo, check.head_sha, check.name)), None)
            fields: dict[str, Any] = {"status": "completed" if check.conclusion else "in_progress"}
            if check.conclusion:
                fields["conclusion"] = check.conclusion
            if check.details_url:
                fields["details_url"] = check.details_url
            if existing is not None and int(existing.output.annotations_count or 0):
                if _shown(existing.get_annotations()) == _shown_of(check.annotations):
                    existing.edit(output=_output(check, ()), **fields)
                    return int(existing.id)
                existing = None
            if existing is None:
                run = target.create_check_run(name=check.name, head_sha=check.head_sha,
                                              output=_output(check, batches[0]), **fields)
            else:
                run = existing
                run.edit(output=_output(check, batches[0]), **fields)
            for batch in batches[1:]:
                run.edit(output=_output(check, batch))
            return int(run.id)
        return self._call(f"publish the {check.name} check on {check.head_sha[:12]} in {repo}", publish)

    def permission_of(self, repo: str, login: str) -> Permission:
        def read() -> Permission:
            try:
                level = self._repo(repo).get_collaborator_role_name(login)
            except GithubException as exc:
                if exc.status == 404:
                    return "none"
                raise
            return {"admin": "admin", "maintain": "maintain", "write": "write", "triage": "triage",
                    "read": "read"}.get(str(level), "none")  # type: ignore[return-value]
        return self._call(f"read {login}'s permission on {repo}", read)

    def default_branch(self, repo: str) -> str:
        return self._call(f"read {repo}", lambda: str(self._repo(repo).default_branch))

    def clone_url(self, repo: str) -> str:
        return self._call(f"read {repo}", lambda: str(self._repo(repo).clone_url))

    def merged_pull_request(self, repo: str, sha: str) -> PullRequest | None:
        def find() -> PullRequest | None:
            recent = self._repo(repo).get_pulls(state="closed", sort="updated", direction="desc")
            for pr, _ in zip(recent, range(50), strict=False):
                if pr.merged and pr.merge_commit_sha == sha:
                    return _pull(repo, pr)
            return None
        return self._call(f"find the pull request merged as {sha[:12]} in {repo}", find)

    def has_check(self, repo: str, sha: str, name: str) -> bool:
        return self.check_conclusion(repo, sha, name) is not None

    def check_conclusion(self, repo: str, sha: str, name: str) -> str | None:
        def read() -> str | None:
            runs = self._own_runs(repo, sha, name)
            if not runs:
                return None
            return str(runs[0].conclusion) if runs[0].status == "completed" else str(runs[0].status)
        return self._call(f"read the checks of {sha[:12]} in {repo}", read)

    def admin_teams(self, repo: str) -> dict[str, tuple[str, ...]]:
        def read() -> dict[str, tuple[str, ...]]:
            return {str(team.slug): tuple(sorted(str(u.login) for u in team.get_members()))
                    for team in self._repo(repo).get_teams() if team.permission == "admin"}
        return self._call(f"read the teams with admin permission on {repo}", read)

    def _read(self, path: str, parameters: dict[str, Any] | None = None) -> Any:
        """GitHub's JSON answer to a GET of `path` (below the API root): asked with the ETag of the answer this
        process keeps for it, so an unchanged answer comes back `304 Not Modified`, free (see `ETagCache`)."""
        _, data = self.client.requester.requestJsonAndCheck("GET", path, parameters)
        return data

    def deployment_status(self, repo: str, environments: Iterable[str]) -> ServiceStatus | None:
        """Read one request per environment and one per deployment status, plus the repository and its latest
        run: about 2 + 2 x environments requests, each conditional (a second read of an unchanged repository
        costs no rate-limited request)."""
        base = f"/repos/{urllib.parse.quote(repo, safe='/')}"

        def latest(environment: str) -> Deployment | None:
            listed = self._read(f"{base}/deployments", {"environment": environment, "per_page": 1})
            if not isinstance(listed, list) or not listed or not isinstance(listed[0], dict):
                return None
            found = listed[0]
            statuses = self._read(f"{base}/deployments/{int(found['id'])}/statuses", {"per_page": 1})
            status = statuses[0] if isinstance(statuses, list) and statuses and isinstance(statuses[0], dict) else {}
            return Deployment(
                id=int(found["id"]), sha=_text(found.get("sha")), ref=_text(found.get("ref")),
                creator=_login(found.get("creator")), created_at=_text(found.get("created_at")),
                state=_text(status.get("state")) or None, description=_text(found.get("description")),
                log_url=_text(status.get("log_url") or status.get("target_url")),
                environment_url=_text(status.get("environment_url")), updated_at=_text(status.get("created_at")))

        def read() -> ServiceStatus | None:
            try:
                about = self._read(base)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
            branch = _text(about.get("default_branch"))
            found = tuple(EnvironmentStatus(name, latest(name)) for name in environments)
            runs = self._read(f"{base}/actions/runs", {"branch": branch, "event": "push", "per_page": 1}) \
                if branch else {}
            listed = runs.get("workflow_runs") if isinstance(runs, dict) else None
            run = listed[0] if isinstance(listed, list) and listed and isinstance(listed[0], dict) else None
            properties = about.get("custom_properties")
            return ServiceStatus(
                repository=_text(about.get("full_name")) or repo, default_branch=branch, environments=found,
                latest_run=None if run is None else LatestRun(
                    name=_text(run.get("name")), status=_text(run.get("status")),
                    conclusion=_text(run.get("conclusion")) or None, actor=_login(run.get("actor")),
                    created_at=_text(run.get("created_at")), html_url=_text(run.get("html_url")),
                    head_sha=_text(run.get("head_sha"))),
                html_url=_text(about.get("html_url")),
                properties={str(k): _text(v) for k, v in properties.items()} if isinstance(properties, dict) else {})
        return self._call(f"read the deployments of {repo}", read)

    @staticmethod
    def _issue(issue: Any) -> Issue:
        return Issue(number=int(issue.number), title=issue.title or "", body=issue.body or "",
                     state="closed" if issue.state == "closed" else "open",
                     labels=tuple(lb.name for lb in issue.labels), url=issue.html_url or "")

    def labelled_issues(self, repo: str, label: str) -> list[Issue]:
        # GitHub's issue list holds pull requests too; they carry `pull_request`.
        return self._call(f"list the open issues labelled {label} in {repo}", lambda: [
            self._issue(i) for i in self._repo(repo).get_issues(state="open", labels=[label])
            if i.pull_request is None])

    def open_issue(self, repo: str, title: str, body: str, labels: Iterable[str] = ()) -> Issue:
        return self._call(f"open an issue in {repo}", lambda: self._issue(
            self._repo(repo).create_issue(title=title, body=body, labels=list(labels))))

    def ensure_label(self, repo: str, name: str, color: str, description: str) -> None:
        def ensure() -> None:
            target = self._repo(repo)
            try:
                target.get_label(name)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                target.create_label(name, color, description)
        self._call(f"create the label {name} in {repo}", ensure)

    def update_issue(self, repo: str, number: int, title: str, body: str) -> None:
        self._call(f"update issue #{number} in {repo}",
                   lambda: self._repo(repo).get_issue(number).edit(title=title, body=body))

    def close_issue(self, repo: str, number: int, comment: str) -> None:
        def close() -> None:
            issue = self._repo(repo).get_issue(number)
            issue.create_comment(comment)
            issue.edit(state="closed", state_reason="completed")
        self._call(f"close issue #{number} in {repo}", close)

    # -- pull requests Paved opens on the repositories it made ------------------------------------------------

    def repository(self, repo: str) -> ForgeRepository | None:
        def read() -> ForgeRepository | None:
            try:
                found = self.client.get_repo(repo)
            except GithubException as exc:
                if exc.status == 404:
                    self._repos.pop(repo, None)
                    return None
                raise
            self._repos[repo] = found  # the calls that follow act on it without asking for it again
            values = found.raw_data.get("custom_properties")
            if not isinstance(values, dict):  # left out of the repository by older GitHub servers
                values = found.get_custom_properties()
            return ForgeRepository(full_name=str(found.full_name), default_branch=str(found.default_branch or ""),
                                   archived=bool(found.archived),
                                   properties={str(k): str(v) for k, v in values.items() if v is not None})
        return self._call(f"read {repo}", read)

    def pull_request_from(self, repo: str, branch: str) -> PullRequest | None:
        def find() -> PullRequest | None:
            owner = repo.split("/", 1)[0]
            _, listed = self.client.requester.requestJsonAndCheck(
                "GET", f"/repos/{repo}/pulls", parameters={"state": "open", "head": f"{owner}:{branch}"})
            found = [_listed_pull(repo, item) for item in (listed if isinstance(listed, list) else [])]
            return next((pr for pr in found if pr.head_ref == branch and pr.head_repo == repo), None)
        return self._call(f"find the open pull request from {branch} in {repo}", find)

    def open_pull_request(self, repo: str, *, head: str, base: str, title: str, body: str, draft: bool = False,
                          labels: Iterable[str] = ()) -> PullRequest:
        def create() -> PullRequest:
            pr = self._repo(repo).create_pull(base=base, head=head, title=title, body=fit_body(body), draft=draft)
            wanted = list(labels)
            if wanted:
                pr.add_to_labels(*wanted)
            return replace(_pull(repo, pr), labels=tuple(dict.fromkeys([*(lb.name for lb in pr.labels), *wanted])))
        return self._call(f"open a pull request from {head} in {repo}", create)

    def update_pull_request(self, repo: str, number: int, *, title: str, body: str) -> None:
        self._call(f"update pull request #{number} of {repo}",
                   lambda: self._repo(repo).get_pull(number).edit(title=title, body=fit_body(body)))

    def label_pull_request(self, repo: str, number: int, labels: Iterable[str]) -> None:
        self._call(f"label pull request #{number} of {repo}",
                   lambda: self._repo(repo).get_issue(number).add_to_labels(*labels))

    def close_pull_request(self, repo: str, number: int, comment: str) -> None:
        def close() -> None:
            self._repo(repo).get_issue(number).create_comment(fit_body(comment))
            self._repo(repo).get_pull(number).edit(state="closed")
        self._call(f"close pull request #{number} of {repo}", close)

    def branch_head(self, repo: str, branch: str) -> str | None:
        def read() -> str | None:
            try:
                return str(self._repo(repo).get_branch(branch).commit.sha)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
        return self._call(f"read the branch {branch} of {repo}", read)

    def create_branch(self, repo: str, branch: str, sha: str) -> None:
        self._call(f"create the branch {branch} in {repo}",
                   lambda: self._repo(repo).create_git_ref(ref=f"refs/heads/{branch}", sha=sha))

    def file_blob(self, repo: str, branch: str, path: str) -> str | None:
        def read() -> str | None:
            try:
                found = self._repo(repo).get_contents(path, ref=branch)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
            return None if isinstance(found, list) else str(found.sha)
        return self._call(f"read {path} on {branch} of {repo}", read)

    def put_file(self, repo: str, *, branch: str, path: str, data: bytes, message: str,
                 replacing: str | None) -> None:
        def put() -> None:
            if replacing is None:
                self._repo(repo).create_file(path, message, data, branch=branch)
            else:
                self._repo(repo).update_file(path, message, data, replacing, branch=branch)
        self._call(f"write {path} on {branch} of {repo}", put)

    def pull_requests_of_commit(self, repo: str, sha: str) -> list[PullRequest]:
        def read() -> list[PullRequest]:
            _, listed = self.client.requester.requestJsonAndCheck(
                "GET", f"/repos/{repo}/commits/{urllib.parse.quote(sha)}/pulls")
            return [_listed_pull(repo, item) for item in (listed if isinstance(listed, list) else [])]
        return self._call(f"find the pull requests of {sha[:12]} in {repo}", read)


def _text(value: Any) -> str:
    """A string field of GitHub's JSON as text ("" when it is missing or null)."""
    return "" if value is None else str(value)


def _login(user: Any) -> str:
    return _text(user.get("login")) if isinstance(user, dict) else ""


def token_of(client: Github) -> str:
    """The token a client currently authenticates with (an installation's is renewed when it expires)."""
    auth = client.requester.auth
    with _wrapped("renew the App installation's token"):
        token = getattr(auth, "token", None)  # an installation's asks GitHub for a new one when it expires
    if not isinstance(token, str):
        raise ForgeError("this GitHub client has no token to hand to git")
    return token


def installed_repositories(api_url: str, app_id: int | str, private_key: str, *,
                           retries: RetryPolicy = RETRIES) -> list[str]:
    """Every repository the App is installed on, across its installations."""
    integration = _integration(api_url, app_id, private_key, retries=retries)
    with _wrapped("list the App's installations and their repositories"):
        return sorted(repo.full_name for installation in integration.get_installations()
                      for repo in installation.get_repos())
