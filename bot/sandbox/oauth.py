"""GitHub's OAuth web flow for GitHub Apps: client secrets, authorization codes and user access tokens.

A site signs its visitors in by sending them to `/login/oauth/authorize` on the forge's web host. Once
they agree, the forge sends them back to the app's callback URL with a code and the site's `state`;
the site exchanges the code, with the app's client id and secret, at `/login/oauth/access_token` for a
user access token (`ghu_…`) that acts as the visitor within the app's permissions and installations
(see `auth.AccessRules.app_reaches`). The HTTP side is `endpoints/oauth.py`; the rules are here, as GitHub
documents them ("Generating a user access token for a GitHub App"):

- `redirect_uri` must be one of the app's callback URLs exactly (no `redirect_uri` means the first);
  for a loopback callback (`127.0.0.1`, `localhost`, `[::1]`) the port may differ, as native apps need.
- A code expires ten minutes after it is issued and is good for one exchange.
- The exchange must present the `redirect_uri` the code was issued for, when it presents one.
- The user access tokens do not expire: the sandbox's apps behave as apps that turned off "expire user
  authorization tokens", so no refresh token is issued.

Refusals are `OAuthError`s, carrying GitHub's error code, description and documentation link.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .auth import new_token, now_iso, parse_iso
from .model import StoredAccount, StoredApp, StoredOAuthCode, StoredToken
from .store import Store

CODE_LIFETIME = 600
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_TOKEN_DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
_AUTHORIZE_DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/"


class OAuthError(Exception):
    """Raised when the web flow refuses a request; `error` is GitHub's code (`bad_verification_code`, ...)."""

    def __init__(self, error: str, description: str, uri: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.uri = uri

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description, "error_uri": self.uri}


def incorrect_client_credentials() -> OAuthError:
    return OAuthError("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.",
                      _TOKEN_DOCS + "#incorrect-client-credentials")


def bad_verification_code() -> OAuthError:
    return OAuthError("bad_verification_code", "The code passed is incorrect or expired.",
                      _TOKEN_DOCS + "#bad-verification-code")


def redirect_uri_mismatch(at_authorize: bool) -> OAuthError:
    return OAuthError("redirect_uri_mismatch",
                      "The redirect_uri MUST match the registered callback URL for this application.",
                      (_AUTHORIZE_DOCS if at_authorize else _TOKEN_DOCS) + "#redirect-uri-mismatch")


def access_denied() -> OAuthError:
    return OAuthError("access_denied", "The user has denied your application access.",
                      _AUTHORIZE_DOCS + "#access-denied")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _matches(callback: str, redirect_uri: str) -> bool:
    if callback == redirect_uri:
        return True
    registered, given = urlsplit(callback), urlsplit(redirect_uri)
    if registered.hostname not in _LOOPBACK:
        return False
    try:
        given.port  # noqa: B018 - a malformed port raises here, and such a URI matches nothing
    except ValueError:
        return False
    return (registered.scheme, registered.hostname, registered.path, registered.query) == (
        given.scheme, given.hostname, given.path, given.query)


@dataclass(frozen=True)
class Authorized:
    """Where to send the visitor back, with the code to exchange."""

    redirect_uri: str
    code: str


class OAuth:
    """The web flow's state changes, each atomic under the store's lock."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def app(self, client_id: str) -> StoredApp | None:
        if not client_id:
            return None
        return self.store.first(StoredApp, lambda a: secrets.compare_digest(a.client_id, client_id))

    def add_client_secret(self, app: StoredApp) -> str:
        """A new client secret for `app`; only its digest is kept, so this is the one time it is seen."""
        secret = secrets.token_hex(20)
        with self.store.lock:
            app.client_secret_digests = [*app.client_secret_digests, _digest(secret)]
            self.store.put(app)
        return secret

    def set_callback_urls(self, app: StoredApp, urls: list[str]) -> None:
        with self.store.lock:
            app.callback_urls = list(urls)
            self.store.put(app)

    def redirect_uri(self, app: StoredApp, given: str | None) -> str:
        """The callback the visitor goes back to: `given` if the app registered it, else its first callback.

        Raises `OAuthError` (`redirect_uri_mismatch`) for a URI the app did not register.
        """
        if not given:
            if not app.callback_urls:
                raise redirect_uri_mismatch(at_authorize=True)
            return app.callback_urls[0]
        if any(_matches(callback, given) for callback in app.callback_urls):
            return given
        raise redirect_uri_mismatch(at_authorize=True)

    def authorize(self, app: StoredApp, user: StoredAccount, redirect_uri: str | None, scope: str = "") -> Authorized:
        """`user` agreed to sign in to `app`: a fresh code, bound to the redirect URI it goes back to."""
        target = self.redirect_uri(app, redirect_uri)
        with self.store.lock:
            code = self.store.put(StoredOAuthCode(self.store.new_id(), secrets.token_hex(10), app.id, user.id, target,
                                                  now_iso(), now_iso(CODE_LIFETIME), scope=scope))
        return Authorized(target, code.code)

    def exchange(self, client_id: str, client_secret: str, code: str, redirect_uri: str | None) -> StoredToken:
        """The user access token for `code`; the code is used up. Raises `OAuthError` as GitHub refuses."""
        app = self.app(client_id)
        if app is None or not client_secret or not any(
                secrets.compare_digest(_digest(client_secret), digest) for digest in app.client_secret_digests):
            raise incorrect_client_credentials()
        with self.store.lock:
            found = self.store.first(StoredOAuthCode,
                                     lambda c: c.app_id == app.id and secrets.compare_digest(c.code, code))
            if found is None or found.used or parse_iso(found.expires_at) <= time.time():
                raise bad_verification_code()
            if redirect_uri and redirect_uri != found.redirect_uri:
                raise redirect_uri_mismatch(at_authorize=False)
            found.used = True
            self.store.put(found)
            return self.store.put(StoredToken(self.store.new_id(), new_token("ghu_"), now_iso(), user_id=found.user_id,
                                              permissions=dict(app.permissions), app_id=app.id,
                                              note=f"user access token of {app.slug}"))
