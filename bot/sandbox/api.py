"""The Python handle on a sandbox forge, for demos and tests that read like stories.

    with Sandbox.start(tmp_path / "forge") as forge:
        forge.create_org("acme")
        alice = forge.create_user("alice")
        bob = forge.create_user("bob")
        forge.add_member("acme", "alice", role="admin")
        forge.add_member("acme", "bob")
        repo = forge.create_repo_from_folder("acme", "platform", folder, owner_token=alice.token)
        forge.push_files("acme", "platform", "feature", {"app.yaml": "replicas: 2\\n"}, by="alice")
        pr = forge.open_pull_request("acme", "platform", head="feature", title="Scale up", by="alice")
        forge.approve("acme", "platform", pr.number, by="bob")
        forge.merge("acme", "platform", pr.number, by="alice")
        forge.wait_for_deliveries()

Clients point at `forge.api_url` as at GitHub Enterprise: `Github(base_url=forge.api_url,
auth=Auth.Token(alice.token))` (PyGithub pauses 0.25 s between requests and 1 s between writes by
default; `seconds_between_requests=None, seconds_between_writes=None` drops that against a local
forge), and git clones `forge.clone_url("acme", "platform")` with the token as password
(`forge.authenticated_clone_url(...)` puts `x-access-token:<token>@` in the URL).

A site signs people in as GitHub's web flow does (`oauth.py`): register where they come back with
`forge.set_callback_urls(app, [url])`, get a secret with `forge.create_client_secret(app)`, and send
browsers to `forge.url + "/login/oauth/authorize?client_id=..."`, where the forge lists its users to
sign in as.

Every REST request counts against its caller's hourly rate limit, as on GitHub, and a successful GET
answers with an `ETag` that a conditional request (`If-None-Match`) turns into a free `304 Not Modified`
(`ratelimits.py`). `forge.rate_limits()` says what each caller spent; `forge.set_rate_limit(n)` and
`forge.reset_rate_limits()` set a smaller budget or start a new hour for a test (the administration API
offers the same to other processes).

Everything goes through the same use cases as the REST API (`github/`), with the same permission
checks and webhooks; people are named by login. Failures raise `ApiError` carrying GitHub's status
and message. `ForgeHandle` (`handle.py`) is the operations alone (the CLI's admin endpoint calls it too);
`Sandbox` adds starting and stopping the server.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .commands import ADMIN_TOKEN_FILE, STATE_FILE
from .endpoints import all_routes, all_web_routes
from .endpoints.admin import routes as admin_routes
from .faults import DEFAULT_KINDS, FaultKind, FaultPlan, Faults
from .github import SandboxGitHub
from .handle import (
    AppCredentials,
    CommentRef,
    DeliveryInfo,
    ForgeHandle,
    InstallationRef,
    Org,
    PullRef,
    RepoRef,
    TeamRef,
    User,
)
from .model import StoredToken
from .render import Urls
from .server import SandboxServer, serve_in_thread

log = logging.getLogger(__name__)

# The story-level values and operations live in `handle.py`; they are offered here beside `Sandbox`, which
# adds the server to them.
__all__ = ["AppCredentials", "CommentRef", "DeliveryInfo", "ForgeHandle", "InstallationRef", "Org", "PullRef",
           "RepoRef", "Sandbox", "SandboxBusy", "TeamRef", "User"]


class SandboxBusy(RuntimeError):
    """Raised when another running forge already keeps its data in the folder asked for."""


def _lock_data_folder(data: Path) -> IO[str]:
    """An exclusive lock on the data folder for as long as the forge runs (two forges would corrupt it)."""
    handle = (data / "lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise SandboxBusy(f"another sandbox forge is running with data in {data}") from exc
    return handle


class Sandbox(ForgeHandle):
    """A running sandbox forge: server, data folder and the story-level operations.

    Start with `Sandbox.start(data_dir)` (free loopback port unless `port` is given), use as a context
    manager or call `stop()`. `api_url` is the REST base URL for PyGithub, `clone_url()` the git URL.
    """

    def __init__(self, forge: SandboxGitHub, server: Any, thread: threading.Thread, data_dir: Path) -> None:
        super().__init__(forge)
        self._server = server
        self._thread = thread
        self.data_dir = data_dir
        self._lock: IO[str] | None = None
        self.admin_token = self._ensure_admin_token()

    @classmethod
    def start(cls, data_dir: str | Path, port: int = 0, clock: Callable[[], float] = time.time) -> Sandbox:
        """Start a forge keeping its data in `data_dir` (created if missing; reused if it holds a forge's data).

        `clock` (epoch seconds) times the callers' hourly rate limits, so a test can let the hour pass without
        waiting for it. Raises `SandboxBusy` if another running forge already uses that folder.
        """
        data = Path(data_dir)
        data.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        lock = _lock_data_folder(data)
        try:
            server = SandboxServer(None, all_routes(), admin_routes, port, all_web_routes())  # type: ignore[arg-type]
        except OSError:
            lock.close()
            raise
        web = f"http://127.0.0.1:{server.server_address[1]}"
        forge = SandboxGitHub(data, Urls(web=web, api=f"{web}/api/v3"), clock)
        server.forge = forge
        thread = serve_in_thread(server)
        sandbox = cls(forge, server, thread, data)
        sandbox._lock = lock
        (data / STATE_FILE).write_text(json.dumps({"url": web, "api_url": forge.bound_urls.api, "pid": os.getpid()}))
        log.info("sandbox forge at %s (data in %s), started in %.0f ms", web, data,
                 (time.perf_counter() - started) * 1000)
        return sandbox

    def _ensure_admin_token(self) -> str:
        admin = self._admin_account()
        path = self.data_dir / ADMIN_TOKEN_FILE
        existing = path.read_text().strip() if path.exists() else ""
        known = self.forge.store.first(StoredToken, lambda t: t.token == existing)
        if existing and known is not None:
            return existing
        token = self.forge.create_token(admin, note="sandbox administration").token
        path.write_text(token + "\n")
        path.chmod(0o600)
        return token

    @property
    def url(self) -> str:
        return self.forge.bound_urls.web

    @property
    def api_url(self) -> str:
        return self.forge.bound_urls.api

    def clone_url(self, owner: str, repo: str) -> str:
        return f"{self.forge.bound_urls.web}/{owner}/{repo}.git"

    # -- faults on purpose ------------------------------------------------------------------------------------

    def faults(self, rate: float, kinds: tuple[FaultKind, ...] | list[FaultKind] = DEFAULT_KINDS, seed: int = 0,
               slow_seconds: float = 2.0, retry_after: int = 1, only: str = "",
               limit: int | None = None) -> Faults:
        """From now on, a fraction `rate` of REST calls (those `only` matches in `"METHOD /path"`, at most
        `limit` of them) fail in one of `kinds`: `500`, `502`, `secondary` (403 with `Retry-After:
        retry_after`), `slow` (done, answered `slow_seconds` late), `drop` (done, never answered; a push
        applied, then dropped). Drawn from `seed`; the administration API never fails. See `faults.py`.
        Returns the faults at work, whose `served` counts them by kind."""
        faults = Faults(FaultPlan(rate, tuple(kinds), seed, slow_seconds, retry_after, only, limit))
        self._server.faults = faults
        return faults

    def no_faults(self) -> None:
        """Every call is answered as asked again."""
        self._server.faults = None

    def authenticated_clone_url(self, owner: str, repo: str, token: str) -> str:
        """The git URL with `x-access-token:<token>@` in it, as GitHub Apps clone."""
        scheme, rest = self.clone_url(owner, repo).split("://", 1)
        return f"{scheme}://x-access-token:{token}@{rest}"

    def stop(self) -> None:
        """Stop serving, finish pending deliveries (briefly) and close the data folder."""
        self.forge.hooks.wait(timeout=5)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.forge.close()
        state = self.data_dir / STATE_FILE
        if state.exists():
            state.unlink()
        if self._lock is not None:
            self._lock.close()  # releases the folder's lock
            self._lock = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
