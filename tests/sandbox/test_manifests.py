"""Registering a GitHub App from a manifest, as GitHub documents it ("Registering a GitHub App from a manifest").

The new-App forms are github.com web pages, which GitHub's REST description leaves out, so these tests hold
them to the documentation; the conversion (`POST /app-manifests/{code}/conversions`) is a REST operation,
checked against GitHub's description as every answer is (`tests/conformance.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from bot.sandbox import Sandbox

from .conftest import Cast, Receiver

REDIRECT = "http://127.0.0.1:9/callback"  # nothing listens there: the tests read the redirect, never follow it
MANIFEST = {
    "name": "Paved (acme)",
    "url": "https://paved.example",
    "description": "Platform requests through pull requests.",
    "public": False,
    "redirect_url": REDIRECT,
    "callback_urls": ["https://paved.example/oauth/callback"],
    "default_permissions": {"checks": "write", "contents": "write", "pull_requests": "write"},
    "default_events": ["pull_request", "push"],
}


@pytest.fixture
def web(forge: Sandbox) -> httpx.Client:
    with httpx.Client(base_url=forge.url, follow_redirects=False, timeout=10) as client:
        yield client  # type: ignore[misc]


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value)
            for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}


def register(web: httpx.Client, manifest: dict[str, Any], login: str, org: str | None = None,
             state: str = "s1") -> httpx.Response:
    """What a browser does: post the manifest, then press the button of the user registering it."""
    path = f"/organizations/{org}/settings/apps/new" if org else "/settings/apps/new"
    page = web.post(path, params={"state": state}, data={"manifest": json.dumps(manifest)})
    assert page.status_code == 200, page.text
    assert f'value="{login}"' in page.text
    return web.post(path, data={**hidden_fields(page.text), "login": login})


def code_of(answer: httpx.Response) -> str:
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"].startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def convert(forge: Sandbox, code: str) -> httpx.Response:
    return httpx.post(f"{forge.api_url}/app-manifests/{code}/conversions",
                      headers={"Accept": "application/vnd.github+json"}, timeout=10)


def test_the_form_asks_who_registers_the_app_and_sends_the_browser_back_with_a_code_and_the_state(
        forge: Sandbox, cast: Cast, web: httpx.Client) -> None:
    page = web.post("/settings/apps/new?state=s1", data={"manifest": json.dumps(MANIFEST)})
    assert page.status_code == 200
    assert "Paved (acme)" in page.text
    assert {"alice", "bob", "carol"} <= set(re.findall(r'name="login" value="([^"]+)"', page.text))
    assert hidden_fields(page.text) == {"manifest": json.dumps(MANIFEST), "state": "s1"}
    assert len(code_of(web.post("/settings/apps/new", data={**hidden_fields(page.text), "login": "bob"}))) >= 20


def test_a_code_converts_once_into_the_apps_credentials(forge: Sandbox, cast: Cast, web: httpx.Client) -> None:
    code = code_of(register(web, MANIFEST, "bob"))
    answer = convert(forge, code)
    assert answer.status_code == 201
    app = answer.json()
    assert (app["name"], app["slug"], app["owner"]["login"]) == ("Paved (acme)", "paved-acme", "bob")
    assert app["permissions"] == {"metadata": "read", "checks": "write", "contents": "write",
                                  "pull_requests": "write"}
    assert app["events"] == ["pull_request", "push"]
    assert app["client_id"].startswith("Iv1.") and len(app["client_secret"]) == 40
    assert app["webhook_secret"] is None  # the manifest has no webhook
    assert "-----BEGIN RSA PRIVATE KEY-----" in app["pem"]
    again = convert(forge, code)
    assert again.status_code == 404
    assert again.json()["message"] == "Not Found"


def test_the_private_key_signs_in_as_the_app(forge: Sandbox, cast: Cast, web: httpx.Client) -> None:
    app = convert(forge, code_of(register(web, MANIFEST, "bob"))).json()
    now = int(time.time())
    token = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(app["id"])}, app["pem"], "RS256")
    answer = httpx.get(f"{forge.api_url}/app", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["slug"] == "paved-acme"


def test_an_organizations_app_is_registered_by_one_of_its_owners(forge: Sandbox, cast: Cast,
                                                                 web: httpx.Client) -> None:
    page = web.post("/organizations/acme/settings/apps/new?state=s1", data={"manifest": json.dumps(MANIFEST)})
    assert re.findall(r'name="login" value="([^"]+)"', page.text) == ["alice"]  # bob is a member, not an owner
    refused = web.post("/organizations/acme/settings/apps/new", data={**hidden_fields(page.text), "login": "bob"})
    assert refused.status_code == 403
    app = convert(forge, code_of(register(web, MANIFEST, "alice", org="acme"))).json()
    assert (app["owner"]["login"], app["owner"]["type"]) == ("acme", "Organization")


def test_an_unknown_organization_has_no_new_app_form(forge: Sandbox, cast: Cast, web: httpx.Client) -> None:
    answer = web.post("/organizations/nobody/settings/apps/new", data={"manifest": json.dumps(MANIFEST)})
    assert answer.status_code == 404


def test_the_webhook_gets_a_secret_that_signs_its_deliveries(forge: Sandbox, cast: Cast, web: httpx.Client,
                                                             receiver: Receiver) -> None:
    manifest = {**MANIFEST, "hook_attributes": {"url": receiver.url, "active": True}}
    secret = convert(forge, code_of(register(web, manifest, "alice", org="acme"))).json()["webhook_secret"]
    forge.wait_for_deliveries()
    ping = receiver.events("ping")[0]  # GitHub pings a new webhook
    expected = "sha256=" + hmac.new(secret.encode(), ping.body, hashlib.sha256).hexdigest()
    assert ping.headers["X-Hub-Signature-256"] == expected


def test_the_client_secret_and_callback_sign_people_in(forge: Sandbox, cast: Cast, web: httpx.Client) -> None:
    app = convert(forge, code_of(register(web, MANIFEST, "alice", org="acme"))).json()
    forge.install_app(app["slug"], "acme")
    back = web.post("/login/oauth/authorize", data={"client_id": app["client_id"], "login": "bob", "state": "x"})
    assert back.headers["location"].startswith("https://paved.example/oauth/callback?")
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    token = web.post("/login/oauth/access_token", headers={"Accept": "application/json"}, data={
        "client_id": app["client_id"], "client_secret": app["client_secret"], "code": code}).json()
    assert token["access_token"].startswith("ghu_")


def test_a_code_expires_after_an_hour(tmp_path: Path) -> None:
    now = [time.time()]
    with Sandbox.start(tmp_path / "forge", clock=lambda: now[0]) as forge, \
            httpx.Client(base_url=forge.url, follow_redirects=False, timeout=10) as web:
        forge.create_user("bob")
        fresh, stale = (code_of(register(web, {**MANIFEST, "name": name}, "bob")) for name in ("fresh", "stale"))
        now[0] += 3599
        assert convert(forge, fresh).status_code == 201
        now[0] += 1
        assert convert(forge, stale).status_code == 404


def test_an_unknown_code_is_not_found(forge: Sandbox) -> None:
    assert convert(forge, "0123456789abcdef0123456789abcdef01234567").status_code == 404


@pytest.mark.parametrize(("change", "refusal"), [
    ({"url": None}, "Homepage URL"),
    ({"name": "x" * 35}, "Name must be"),
    ({"default_permissions": {"contents": "everything"}}, "Permissions must"),
    ({"hook_attributes": {"url": "ftp://hooks.example"}}, "Webhook URL"),
])
def test_a_manifest_github_would_refuse_registers_nothing(forge: Sandbox, cast: Cast, web: httpx.Client,
                                                          change: dict[str, Any], refusal: str) -> None:
    manifest = {key: value for key, value in {**MANIFEST, **change}.items() if value is not None}
    answer = register(web, manifest, "bob")
    assert answer.status_code == 422
    assert refusal in answer.text
    assert convert(forge, code_of(register(web, MANIFEST, "bob"))).json()["slug"] == "paved-acme"  # name still free


def test_a_form_without_a_manifest_is_refused(forge: Sandbox, cast: Cast, web: httpx.Client) -> None:
    assert web.post("/settings/apps/new", data={"login": "bob"}).status_code == 422
