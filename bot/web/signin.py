"""Who may read the catalogue: visitors sign in with GitHub and need read access to the platform repo.

When the sign-in settings are given (`Settings.signin`: the GitHub App's client id and secret, and the key
that signs session cookies), every catalogue page depends on `viewer`, which

- sends a visitor who has not signed in to `/signin` (a 401 JSON answer when they did not ask for HTML);
- lets a signed-in visitor in when they may read the platform repo, and answers everyone else 403 with a
  page that says why and how to get access;
- asks GitHub again, after `RECHECK_SECONDS`, so access taken away on GitHub is taken away here too;
- sends the visitor to sign in again `SESSION_SECONDS` after they signed in, however often the session
  was re-issued since (each re-check writes a fresh cookie, so the cookie's own age never runs out).

Signing in is GitHub's OAuth web flow for GitHub Apps: `/signin` keeps a random `state` in the session
and redirects to GitHub's authorize page; `/oauth/callback` checks the state, exchanges the code for the
visitor's user access token (over HTTP, with the App's client secret), reads who they are with it, and
reads their permission on the platform repo with Paved's own credentials, the same way every later
re-check does. The visitor's token is dropped at once: the session holds only the login and what was
found, and when they signed in (`since`), so a stolen cookie never carries a GitHub credential and is
worth at most `SESSION_SECONDS` from the sign-in it came from. `POST /signout` clears the session; there is
no other write on the site.

Sessions are cookies signed with HMAC-SHA256 (`SessionCookies`; stdlib only, so no dependency is added
for it): HttpOnly, SameSite=Lax, Secure when `PAVED_PUBLIC_URL` is https, and no older than
`SESSION_SECONDS`. Without sign-in settings the catalogue is open; `Settings.check_service` allows that
only on loopback or when PAVED_ALLOW_OPEN asks for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.errors import ConfigurationError, PavedError
from bot.forge import Permission, at_least
from bot.settings import Settings

log = logging.getLogger(__name__)

COOKIE = "paved_session"
SESSION_SECONDS = 8 * 3600
RECHECK_SECONDS = 600
RETRY_SECONDS = 60  # after a re-check GitHub did not answer, the next one waits this long, not a whole period
_SIGNATURE_CONTEXT = b"paved-session-v1:"


# -- signed session cookies --------------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_session(data: dict[str, Any], key: str, now: float | None = None) -> str:
    """The cookie value for `data`: payload and issue time, then their HMAC-SHA256 under `key`."""
    payload = _b64(json.dumps({"at": int(time.time() if now is None else now), "data": data},
                              separators=(",", ":")).encode())
    mac = hmac.new(key.encode(), _SIGNATURE_CONTEXT + payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def read_session(value: str, key: str, max_age: int = SESSION_SECONDS, now: float | None = None) -> dict[str, Any]:
    """The data of a cookie signed with `key` and younger than `max_age`; {} for anything else."""
    payload, _, mac = value.partition(".")
    try:
        expected = hmac.new(key.encode(), _SIGNATURE_CONTEXT + payload.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return {}
        content = json.loads(_unb64(payload))
    except (ValueError, UnicodeError):
        return {}
    issued = content.get("at") if isinstance(content, dict) else None
    data = content.get("data") if isinstance(content, dict) else None
    if not isinstance(issued, int) or not isinstance(data, dict):
        return {}
    if not 0 <= (time.time() if now is None else now) - issued <= max_age:
        return {}
    return data


class SessionCookies:
    """ASGI middleware: `request.session` from the signed cookie, written back when a request changed it."""

    def __init__(self, app: ASGIApp, key: str, secure: bool, max_age: int = SESSION_SECONDS) -> None:
        self.app = app
        self.key = key
        self.secure = secure
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = SimpleCookie()
        for name, value in scope["headers"]:
            if name == b"cookie":
                try:
                    cookie.load(value.decode("latin-1"))
                except CookieError:  # a cookie header that cannot be read is no session, not an error
                    log.debug("unreadable cookie header ignored")
        found = cookie.get(COOKIE)
        before = read_session(found.value, self.key, self.max_age) if found else {}
        scope["session"] = dict(before)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope["session"]
                if session != before or (found is not None and not before):
                    MutableHeaders(scope=message).append("set-cookie", self._cookie(session))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, session: dict[str, Any]) -> str:
        value, age = (sign_session(session, self.key), self.max_age) if session else ("", 0)
        return (f"{COOKIE}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax"
                + ("; Secure" if self.secure else ""))


# -- what Paved asks GitHub ------------------------------------------------------------------------------------

class Accounts(Protocol):
    """GitHub, as signing in needs it."""

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the visitor to sign in and agree."""
        ...

    def exchange(self, code: str, redirect_uri: str) -> str:
        """The visitor's user access token for the code GitHub sent them back with."""
        ...

    def login_of(self, token: str) -> str:
        """Who a user access token belongs to."""
        ...

    def permission_of(self, login: str) -> Permission:
        """`login`'s permission on the platform repo, read with Paved's own credentials."""
        ...


class SignInError(PavedError):
    """Raised when GitHub refuses or fails a step of signing in."""


class GitHubAccounts:
    """`Accounts` over GitHub's REST API and its OAuth web flow, with PyGithub."""

    def __init__(self, settings: Settings, repo: str) -> None:
        if settings.github_client_id is None or settings.github_client_secret is None:
            raise ConfigurationError("signing in needs PAVED_GITHUB_CLIENT_ID and PAVED_GITHUB_CLIENT_SECRET")
        self.settings = settings
        self.repo = repo
        self._forge: Any = None
        self._lock = threading.Lock()

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = urlencode({"client_id": self.settings.github_client_id, "redirect_uri": redirect_uri,
                           "state": state})
        return f"{self.settings.github_web_url}/login/oauth/authorize?{query}"

    def exchange(self, code: str, redirect_uri: str) -> str:
        from bot.adapters.github import ForgeError, oauth_user_token

        assert self.settings.github_client_id is not None and self.settings.github_client_secret is not None
        try:
            return oauth_user_token(self.settings.github_api_url, self.settings.github_client_id,
                                    self.settings.github_client_secret.reveal(), code)
        except ForgeError as exc:
            raise SignInError(exc.message) from exc

    def login_of(self, token: str) -> str:
        from bot.adapters.github import ForgeError, login_of_token

        try:
            return login_of_token(self.settings.github_api_url, token)
        except ForgeError as exc:
            raise SignInError(exc.message) from exc

    def permission_of(self, login: str) -> Permission:
        from bot.adapters.github import ForgeError

        try:  # the forge reports GitHub's refusals and unreachable networks alike as ForgeError
            permission: Permission = self._paved_forge().permission_of(self.repo, login)
        except ForgeError as exc:
            raise SignInError(exc.message) from exc
        return permission

    def _paved_forge(self) -> Any:
        # One client for the process: as the App's installation (PyGithub renews its token), or with the token.
        with self._lock:
            if self._forge is None:
                from bot.adapters.github import GitHubForge
                from bot.composition import github_client

                try:
                    self._forge = GitHubForge(github_client(self.settings, self.repo))
                except ConfigurationError as exc:
                    raise SignInError("Paved has no GitHub credentials to read visitors' access with") from exc
            return self._forge


# -- the routes and the dependency -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at the catalogue: a signed-in login, or None when the catalogue is open."""

    login: str | None = None


class SignInRequired(PavedError):
    """Raised when a catalogue page is asked for by a visitor who has not signed in."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in to see the catalogue")
        self.next_path = next_path


class NoReadAccess(PavedError):
    """Raised when a signed-in visitor may not read the platform repo."""

    def __init__(self, login: str, repo: str) -> None:
        super().__init__(f"{login} may not read {repo}")
        self.login = login
        self.repo = repo


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width'><title>{html.escape(title)} · Paved</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;"
        "color:#1f2328;line-height:1.5}a,button{font:inherit}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>",
        status_code=status, headers={"Cache-Control": "no-store"})


def _signout_form(label: str = "Sign out") -> str:
    return f'<form method="post" action="/signout"><button type="submit" id="signout">{label}</button></form>'


def _safe_next(value: str | None) -> str:
    """A path on this site to go back to after signing in; anything else (another site) becomes `/`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


class SignIn:
    """The sign-in routes and the `viewer` dependency for one platform repo."""

    def __init__(self, settings: Settings, repo: str, accounts: Accounts | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.repo = repo
        self.enabled = settings.signin
        if self.enabled and settings.session_secret is None:
            raise ConfigurationError("signing in needs PAVED_SESSION_SECRET to sign session cookies with")
        self.accounts: Accounts | None = accounts
        if self.enabled and accounts is None:
            self.accounts = GitHubAccounts(settings, repo)
        self.clock = clock

    # -- the dependency ---------------------------------------------------------------------------------------

    def viewer(self, request: Request) -> Viewer:
        """FastAPI dependency: the visitor, if they may see the catalogue (see the module's docstring)."""
        if not self.enabled:
            return Viewer()
        assert self.accounts is not None
        session = request.session
        login = session.get("login")
        since = session.get("since")
        if not isinstance(login, str) or not login or not isinstance(since, int) \
                or self.clock() - since > SESSION_SECONDS:
            if login:
                log.info("%s's session is over: signed in more than %d hours ago", login, SESSION_SECONDS // 3600)
                session.clear()
            query = request.url.query
            raise SignInRequired(request.url.path + (f"?{query}" if query else ""))
        checked = session.get("checked")
        if not isinstance(checked, int) or self.clock() - checked > RECHECK_SECONDS:
            try:
                permission = self.accounts.permission_of(login)
            except SignInError as exc:
                # Keep the last answer a little longer rather than lock everyone out while GitHub is away (at
                # most the session's lifetime), and ask again in a minute rather than on every page.
                log.warning("could not re-check %s's access to %s: %s", login, self.repo, exc.message)
                session["checked"] = int(self.clock()) - RECHECK_SECONDS + RETRY_SECONDS
            else:
                session["checked"] = int(self.clock())
                session["read"] = at_least(permission, "read")
        if not session.get("read"):
            raise NoReadAccess(login, self.repo)
        return Viewer(login)

    def dependencies(self) -> list[Any]:
        """What a catalogue router is given to guard every page: `[Depends(viewer)]`."""
        return [Depends(self.viewer)]

    # -- the routes -----------------------------------------------------------------------------------------

    def _callback_url(self, request: Request) -> str:
        base = self.settings.public_url or str(request.base_url).rstrip("/")
        return f"{base}/oauth/callback"

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/signin", include_in_schema=False)
        def signin(request: Request, next: str | None = None) -> Response:
            """Send the visitor to GitHub to sign in, remembering where they were going."""
            if not self.enabled:
                return RedirectResponse(_safe_next(next), status_code=303)
            assert self.accounts is not None
            state = secrets.token_urlsafe(24)
            request.session.clear()
            request.session.update({"state": state, "next": _safe_next(next)})
            return RedirectResponse(self.accounts.authorize_url(self._callback_url(request), state), status_code=303)

        @router.get("/oauth/callback", include_in_schema=False)
        def callback(request: Request, code: str | None = None, state: str | None = None,
                     error: str | None = None) -> Response:
            """GitHub sends the visitor back here with a code (or an error) and the state we gave it."""
            if not self.enabled:
                return RedirectResponse("/", status_code=303)
            assert self.accounts is not None
            expected = request.session.pop("state", None)
            next_path = _safe_next(request.session.pop("next", None))
            again = f'<p><a href="/signin?{urlencode({"next": next_path})}" id="signin">Sign in again</a></p>'
            if not isinstance(expected, str) or not state or not hmac.compare_digest(expected, state):
                return _page("Sign-in expired", "<p>This sign-in was not started here, or was already used.</p>"
                             + again, 400)
            if error or not code:
                return _page("Not signed in", "<p>GitHub did not sign you in"
                             + (" (you cancelled)" if error == "access_denied" else "") + ".</p>" + again, 401)
            try:
                token = self.accounts.exchange(code, self._callback_url(request))
                login = self.accounts.login_of(token)
                permission = self.accounts.permission_of(login)
            except SignInError as exc:
                log.warning("sign-in failed: %s", exc.message)
                return _page("Sign-in failed", "<p>GitHub could not confirm who you are just now.</p>" + again, 502)
            request.session.clear()
            now = int(self.clock())
            request.session.update({"login": login, "since": now, "checked": now, "read": at_least(permission, "read")})
            log.info("%s signed in (%s on %s)", login, permission, self.repo)
            return RedirectResponse(next_path, status_code=303)

        @router.get("/signout", include_in_schema=False)
        def signout_page(request: Request) -> Response:
            """Where signing out leads; it offers the button when someone is still signed in."""
            login = request.session.get("login") if self.enabled else None
            if login:
                return _page("Sign out", f"<p>Signed in as <strong>{html.escape(str(login))}</strong>.</p>"
                             + _signout_form())
            return _page("Signed out", '<p>You are signed out. <a href="/signin" id="signin">Sign in</a></p>')

        @router.post("/signout", include_in_schema=False)
        def signout(request: Request) -> Response:
            """Forget the visitor: the session cookie is cleared."""
            if self.enabled:
                request.session.clear()
            return RedirectResponse("/signout", status_code=303)

        return router

    # -- putting it on the app --------------------------------------------------------------------------------

    def install(self, app: FastAPI) -> None:
        """Add the routes, the session cookies and the answers for visitors who may not see a page."""
        app.include_router(self.router())
        if self.enabled and self.settings.session_secret is not None:
            secure = (self.settings.public_url or "").startswith("https://")
            app.add_middleware(SessionCookies, key=self.settings.session_secret.reveal(), secure=secure)

        @app.exception_handler(SignInRequired)
        async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
            if "text/html" in request.headers.get("accept", ""):
                return RedirectResponse(f"/signin?{urlencode({'next': exc.next_path})}", status_code=303)
            return JSONResponse({"message": "sign in at /signin to see the catalogue"}, status_code=401)

        @app.exception_handler(NoReadAccess)
        async def no_access(request: Request, exc: NoReadAccess) -> Response:
            if "text/html" not in request.headers.get("accept", ""):
                return JSONResponse({"message": f"{exc.login} has no read access to {exc.repo}"}, status_code=403)
            return _page("No access to the catalogue", (
                f"<p>You are signed in as <strong>{html.escape(exc.login)}</strong>, who may not read "
                f"<code>{html.escape(exc.repo)}</code>. The catalogue shows what that repository holds, so it "
                "is shown to the people who may read it.</p><p>Ask its owners for read access (through a team, "
                "or as a collaborator), then sign in again; or sign in as someone else.</p>"
                + _signout_form("Sign out")), 403)

