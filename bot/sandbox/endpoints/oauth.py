"""The OAuth web flow's pages on the forge's web host: `/login/oauth/authorize` and `/login/oauth/access_token`.

These are github.com's web URLs, not REST operations (GitHub's REST description leaves them out), so the
server mounts them apart from `/api/v3` and the conformance recorder never sees them; their tests check
GitHub's documented behaviour instead. The rules are in `oauth.py`.

GitHub asks a visitor for their password and then whether to authorize the app. The sandbox has no
passwords: its authorize page lists the forge's users, each with a button to sign in as them and agree
(`login=NAME` in the query puts that user first, as GitHub uses it to suggest an account), and a Cancel
button that refuses. Pressing one posts the form back to `/login/oauth/authorize`, which redirects to
the app's callback with `code` and `state`, or with `error=access_denied`.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.sax.saxutils import escape as xml_escape

from ..errors import ApiError
from ..model import StoredAccount, StoredApp
from ..oauth import OAuth, OAuthError, access_denied
from ..routing import Request, Response, Routes
from .common import forge_of

web_routes = Routes()

_HTML = "text/html; charset=utf-8"


def _params(request: Request) -> dict[str, str]:
    """Query parameters, overlaid by a form or JSON body: GitHub takes the flow's parameters either way."""
    params = dict(request.query)
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = request.json()
        if isinstance(body, dict):
            params.update({key: str(value) for key, value in body.items() if value is not None})
    elif request.raw_body:
        try:
            params.update(parse_qsl(request.raw_body.decode(), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise ApiError(400, "Problems parsing the form") from exc
    return params


def _with_query(url: str, values: dict[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return url + joiner + urlencode({key: value for key, value in values.items() if value is not None})


def _redirect(url: str) -> Response:
    return Response(302, b"", headers={"Location": url, "Cache-Control": "no-store"}, content_type=_HTML)


def _page(status: int, title: str, body: str) -> Response:
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;color:#1f2328}"
            "button{display:block;width:100%;margin:.4rem 0;padding:.6rem;font-size:1rem;cursor:pointer}"
            ".suggested{font-weight:bold}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return Response(status, page.encode(), headers={"Cache-Control": "no-store"}, content_type=_HTML)


def _app_or_page(request: Request, params: dict[str, str]) -> StoredApp | Response:
    app = OAuth(forge_of(request).store).app(params.get("client_id", ""))
    if app is None:  # GitHub shows its 404 page: there is nowhere trustworthy to send the visitor back to
        return _page(404, "Not Found", "<p>No application has this client_id.</p>")
    return app


def _refusal(app: StoredApp, error: OAuthError, state: str | None) -> Response:
    """Back to the app's first callback with the error, as GitHub sends it; a page if it registered none."""
    if not app.callback_urls:
        return _page(400, "Cannot sign in", f"<p>{html.escape(error.description)}</p>")
    return _redirect(_with_query(app.callback_urls[0], {**error.body(), **({"state": state} if state is not None
                                                                          else {})}))


@web_routes.get("/login/oauth/authorize")
def authorize_page(request: Request) -> Response:
    params = _params(request)
    app = _app_or_page(request, params)
    if isinstance(app, Response):
        return app
    forge = forge_of(request)
    try:
        redirect_uri = OAuth(forge.store).redirect_uri(app, params.get("redirect_uri"))
    except OAuthError as error:
        return _refusal(app, error, params.get("state"))
    # The forge's administrator is not someone to sign in as; every other user is listed.
    users = forge.store.all(StoredAccount, lambda a: a.type == "User" and not a.site_admin)
    suggested = params.get("login", "").lower()
    users.sort(key=lambda a: (a.login.lower() != suggested, a.login.lower()))
    hidden = "".join(f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
                     for name in ("client_id", "redirect_uri", "state", "scope") if name in params)
    buttons = "".join(
        f'<button type="submit" name="login" value="{html.escape(user.login)}" id="login-{html.escape(user.login)}"'
        f'{" class=suggested" if user.login.lower() == suggested else ""}>Sign in as {html.escape(user.login)}'
        "</button>" for user in users)
    owner = forge.store.get(StoredAccount, app.owner_id)
    body = (f"<p><strong>{html.escape(app.name)}</strong> by {html.escape(owner.login if owner else '')} wants to "
            f"know who you are. After you sign in you go back to <code>{html.escape(redirect_uri)}</code>.</p>"
            f'<form method="post" action="/login/oauth/authorize">{hidden}{buttons}'
            '<button type="submit" name="deny" value="1" id="cancel">Cancel</button></form>')
    return _page(200, f"Sign in to {app.name}", body)


@web_routes.post("/login/oauth/authorize")
def authorize(request: Request) -> Response:
    params = _params(request)
    app = _app_or_page(request, params)
    if isinstance(app, Response):
        return app
    forge = forge_of(request)
    oauth = OAuth(forge.store)
    state = params.get("state")
    try:
        target = oauth.redirect_uri(app, params.get("redirect_uri"))
    except OAuthError as error:
        return _refusal(app, error, state)
    keep_state = {"state": state} if state is not None else {}
    if params.get("deny"):
        return _redirect(_with_query(target, {**access_denied().body(), **keep_state}))
    user = forge.account(params.get("login", ""))
    if user is None or user.type != "User" or user.site_admin:
        return _page(422, "Cannot sign in", "<p>Choose one of the users listed.</p>")
    done = oauth.authorize(app, user, target, params.get("scope", ""))
    return _redirect(_with_query(done.redirect_uri, {"code": done.code, **keep_state}))


@web_routes.post("/login/oauth/access_token")
def access_token(request: Request) -> Response:
    params = _params(request)
    oauth = OAuth(forge_of(request).store)
    try:
        token = oauth.exchange(params.get("client_id", ""), params.get("client_secret", ""), params.get("code", ""),
                               params.get("redirect_uri"))
        answer: dict[str, str] = {"access_token": token.token, "token_type": "bearer", "scope": ""}
    except OAuthError as error:
        # GitHub answers these with 200 and the error in the body, whatever the Accept header.
        answer = error.body()
    return _answer(request, answer)


def _answer(request: Request, values: dict[str, Any]) -> Response:
    """In the format the client accepts, as GitHub does: JSON, XML, or (by default) a form-encoded body."""
    accept = (request.headers.get("Accept") or "").lower()
    headers = {"Cache-Control": "no-store"}
    if "application/json" in accept:
        return Response(200, json.dumps(values).encode(), headers, "application/json; charset=utf-8")
    if "application/xml" in accept:
        fields = "".join(f"<{key}>{xml_escape(str(value))}</{key}>" for key, value in values.items())
        return Response(200, f"<OAuth>{fields}</OAuth>".encode(), headers, "application/xml; charset=utf-8")
    return Response(200, urlencode(values).encode(), headers, "application/x-www-form-urlencoded; charset=utf-8")
