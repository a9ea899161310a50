"""Registering a GitHub App from a manifest: the new-App forms on the web host and the code's conversion.

A site (Paved's `paved setup`) posts a form with a `manifest` field (JSON) to `/settings/apps/new`, or to
`/organizations/ORG/settings/apps/new` for an organization's App, with its `state` in the form's URL. GitHub
then asks who is registering it and to confirm; the sandbox has no passwords, so its page lists the users who
may (any user; an organization's owners for an organization's App), each with a button that posts the form
again with `login=NAME`. That creates the App (`github/apps.py`) and redirects to the manifest's
`redirect_url` with `code` and `state`. The site converts the code, within the hour and once, with the REST
operation `POST /app-manifests/{code}/conversions` (no authentication), whose answer the conformance check
holds to GitHub's description like every REST answer.
"""

from __future__ import annotations

import html
import json

from ..errors import ApiError
from ..model import StoredAccount
from ..routing import Request, Response, Routes
from .common import forge_of
from .oauth import _page, _params, _redirect, _with_query

web_routes = Routes()
routes = Routes()


@web_routes.post("/settings/apps/new")
def new_app(request: Request) -> Response:
    return _register(request, None)


@web_routes.post("/organizations/{org}/settings/apps/new")
def new_org_app(request: Request) -> Response:
    return _register(request, request.params["org"])


def _register(request: Request, org_login: str | None) -> Response:
    forge = forge_of(request)
    params = _params(request)
    try:
        manifest = json.loads(params.get("manifest") or "")
    except ValueError:
        return _page(422, "Invalid manifest", "<p>The form's <code>manifest</code> field must hold the App's "
                                              "manifest as JSON.</p>")
    org: StoredAccount | None = None
    if org_login is not None:
        org = forge.account(org_login)
        if org is None or org.type != "Organization":
            return _page(404, "Not Found", "<p>No organization has this name.</p>")
    # Who may register it: any user for their own App; an organization's owners for the organization's.
    allowed = [a for a in forge.store.all(StoredAccount, lambda a: a.type == "User" and not a.site_admin)
               if org is None or ((m := forge.membership(org, a)) is not None and m.role == "admin")]
    login = params.get("login", "")
    if not login:
        return _confirmation(request.path, params, manifest, org, allowed)
    user = next((a for a in allowed if a.login.lower() == login.lower()), None)
    if user is None:
        return _page(403, "Cannot register the App",
                     f"<p>Only owners of {html.escape(org.login)} may register its Apps.</p>" if org
                     else "<p>Choose one of the users listed.</p>")
    try:
        app, code = forge.create_app_from_manifest(org or user, manifest)
    except ApiError as error:
        reasons = "".join(f"<li>{html.escape(str(e.get('message') or e.get('field')))}</li>"
                          for e in error.errors or [])
        return _page(422, "Cannot register the App", f"<p>{html.escape(error.message)}</p><ul>{reasons}</ul>")
    state = params.get("state")
    target = manifest.get("redirect_url")
    if not target:  # GitHub shows the new App's settings then; the sandbox shows the code to convert
        return _page(201, f"{app.name} is registered", f"<p>Its code: <code>{html.escape(code)}</code></p>")
    return _redirect(_with_query(target, {"code": code, **({"state": state} if state is not None else {})}))


def _confirmation(path: str, params: dict[str, str], manifest: object, org: StoredAccount | None,
                  allowed: list[StoredAccount]) -> Response:
    name = str(manifest.get("name", "")) if isinstance(manifest, dict) else ""
    hidden = "".join(f'<input type="hidden" name="{key}" value="{html.escape(params[key])}">'
                     for key in ("manifest", "state") if key in params)
    buttons = "".join(f'<button type="submit" name="login" value="{html.escape(a.login)}" '
                      f'id="login-{html.escape(a.login)}">Create it as {html.escape(a.login)}</button>'
                      for a in allowed)
    owner = f"the organization {html.escape(org.login)}" if org else "you"
    body = (f"<p>Register the GitHub App <strong>{html.escape(name)}</strong>, owned by {owner}?</p>"
            f'<form method="post" action="{html.escape(path)}">{hidden}{buttons}</form>')
    return _page(200, "Create GitHub App", body)


@routes.post("/app-manifests/{code}/conversions")
def create_from_manifest(request: Request) -> Response:
    forge = forge_of(request)
    app, private_key, webhook_secret, client_secret = forge.convert_manifest_code(request.params["code"])
    body = forge.render.app(app) or {}
    body.update(client_id=app.client_id, client_secret=client_secret, webhook_secret=webhook_secret,
                pem=private_key)
    return Response(201, body)
