"""Signing in to the catalogue with GitHub, end to end over real HTTP against the sandbox forge.

A stand-in catalogue page is guarded by `SignIn.viewer` exactly as the catalogue's routes are; visitors
are httpx clients keeping cookies, going through the forge's real OAuth pages. The settings' checks for
sign-in and open mode are here too.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from bot.errors import ConfigurationError
from bot.forge import Permission
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.signin import (
    COOKIE,
    RECHECK_SECONDS,
    RETRY_SECONDS,
    SESSION_SECONDS,
    SignIn,
    SignInError,
    Viewer,
    _safe_next,
    read_session,
    sign_session,
)
from tests.conftest import serving

HTML = {"Accept": "text/html,application/xhtml+xml"}
SESSION_KEY = "a-session-key-for-the-sign-in-tests"
TOKEN = "ghp_" + "T0kenForTests" * 2 + "0123456789"
WEBHOOK = "webhook-secret-for-tests-5f1c9a"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    forge: Sandbox
    url: str
    clock: Clock

    def visitor(self) -> httpx.Client:
        return httpx.Client(follow_redirects=True, timeout=10)

    def sign_in(self, client: httpx.Client, login: str, path: str = "/") -> httpx.Response:
        """Open `path`, get sent to the forge's sign-in page, press `login`'s button; the page one ends on."""
        page = client.get(self.url + path, headers=HTML)
        assert page.status_code == 200 and str(page.url).startswith(self.forge.url + "/login/oauth/authorize"), page
        assert f'value="{login}"' in page.text
        return client.post(self.forge.url + "/login/oauth/authorize", headers=HTML,
                           data={**dict(page.url.params), "login": login})


def stand_in_catalogue(signin: SignIn) -> FastAPI:
    """A page guarded the way the catalogue's pages are, saying who it was shown to."""
    app = FastAPI()
    signin.install(app)

    @app.get("/")
    def home(viewer: Viewer = Depends(signin.viewer)) -> HTMLResponse:  # noqa: B008 - FastAPI's idiom
        return HTMLResponse(f"<h1>Catalogue</h1><p>for {viewer.login or 'anyone'}</p>")

    @app.get("/resources/{kind}/{name}")
    def resource(kind: str, name: str, viewer: Viewer = Depends(signin.viewer)) -> HTMLResponse:  # noqa: B008
        return HTMLResponse(f"<h1>{kind}/{name}</h1>")

    return app


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """acme's private platform repo: erin may read it, mallory may not; Paved's App signs visitors in."""
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        for login in ("erin", "mallory"):
            forge.create_user(login)
        forge.create_org("acme", owners=["alice"])
        folder = tmp_path / "seed"
        folder.mkdir()
        (folder / "README.md").write_text("# platform\n")
        forge.create_repo_from_folder("acme", "platform", folder, owner_token=alice.token, private=True)
        forge.add_collaborator("acme", "platform", "erin", "read")
        app = forge.create_app("acme", "paved", permissions={"metadata": "read", "contents": "read"})
        forge.install_app(app.id, "acme")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data")}), github_api_url=forge.api_url,
            github_app_id=str(app.id), github_private_key=Secret(app.private_key),
            github_client_id=app.client_id, github_client_secret=Secret(forge.create_client_secret(app.id)),
            session_secret=Secret(SESSION_KEY))
        clock = Clock()
        with serving(stand_in_catalogue(SignIn(settings, "acme/platform", clock=clock)), lifespan="off") as url:
            forge.set_callback_urls(app.id, [url + "/oauth/callback"])
            yield Site(forge, url, clock)


def session_cookie(client: httpx.Client) -> str:
    return client.cookies[COOKIE]


# -- signing in ---------------------------------------------------------------------------------------------------

def test_a_reader_signs_in_with_github_and_sees_the_page_they_asked_for(site: Site) -> None:
    with site.visitor() as erin:
        page = site.sign_in(erin, "erin", "/resources/Service/checkout")
        assert page.status_code == 200
        assert str(page.url) == site.url + "/resources/Service/checkout"
        assert erin.get(site.url + "/", headers=HTML).text.endswith("<p>for erin</p>")
        # The session holds who signed in, when, and what was found, never a GitHub token.
        data = read_session(session_cookie(erin), SESSION_KEY)
        assert set(data) == {"login", "since", "checked", "read"} and data["login"] == "erin"
        assert data["since"] == int(site.clock.now)
        assert "gh" not in json.dumps(data)


def test_the_session_cookie_is_httponly_samesite_lax_and_not_secure_on_plain_http(site: Site) -> None:
    with site.visitor() as erin:
        page = site.sign_in(erin, "erin")
        set_cookie = next(r.headers["set-cookie"] for r in page.history if "set-cookie" in r.headers
                          and "oauth/callback" in str(r.url))
        attributes = [part.strip() for part in set_cookie.split(";")]
        assert "HttpOnly" in attributes and "SameSite=Lax" in attributes and "Path=/" in attributes
        assert f"Max-Age={SESSION_SECONDS}" in attributes
        assert "Secure" not in attributes


def test_someone_without_read_access_gets_a_page_saying_why(site: Site) -> None:
    with site.visitor() as mallory:
        page = site.sign_in(mallory, "mallory")
        assert page.status_code == 403
        assert "No access to the catalogue" in page.text and "mallory" in page.text and "acme/platform" in page.text
        assert 'action="/signout"' in page.text
        assert "Traceback" not in page.text
        refused = mallory.get(site.url + "/", headers={"Accept": "application/json"})
        assert refused.status_code == 403
        assert refused.json() == {"message": "mallory has no read access to acme/platform"}


def test_an_anonymous_visitor_is_sent_to_sign_in_or_told_to(site: Site) -> None:
    with httpx.Client(timeout=10) as anonymous:
        page = anonymous.get(site.url + "/resources/Team/payments?tab=history", headers=HTML)
        assert page.status_code == 303
        assert page.headers["location"] == "/signin?next=%2Fresources%2FTeam%2Fpayments%3Ftab%3Dhistory"
        to_github = anonymous.get(site.url + page.headers["location"])
        assert to_github.status_code == 303
        assert to_github.headers["location"].startswith(site.forge.url + "/login/oauth/authorize?client_id=")
        api = anonymous.get(site.url + "/", headers={"Accept": "application/json"})
        assert (api.status_code, api.json()) == (401, {"message": "sign in at /signin to see the catalogue"})


def test_access_is_read_again_after_a_while(site: Site) -> None:
    with site.visitor() as mallory:
        assert site.sign_in(mallory, "mallory").status_code == 403
        site.forge.add_collaborator("acme", "platform", "mallory", "read")
        assert mallory.get(site.url + "/", headers=HTML).status_code == 403  # what was found at sign-in still holds
        site.clock.now += RECHECK_SECONDS + 1
        assert mallory.get(site.url + "/", headers=HTML).text.endswith("<p>for mallory</p>")


def test_a_session_ends_eight_hours_after_signing_in_however_often_it_was_renewed(site: Site) -> None:
    with site.visitor() as erin:
        site.sign_in(erin, "erin")
        signed_in = read_session(session_cookie(erin), SESSION_KEY)["since"]
        renewed = set()
        while site.clock.now + RECHECK_SECONDS + 1 - signed_in <= SESSION_SECONDS:
            site.clock.now += RECHECK_SECONDS + 1
            assert erin.get(site.url + "/", headers=HTML).text.endswith("<p>for erin</p>")
            renewed.add(session_cookie(erin))
            assert read_session(session_cookie(erin), SESSION_KEY)["since"] == signed_in
        assert len(renewed) >= SESSION_SECONDS // (RECHECK_SECONDS + 1)  # a fresh cookie at every re-check
        site.clock.now = signed_in + SESSION_SECONDS + 1
        over = erin.get(site.url + "/", headers=HTML, follow_redirects=False)
        assert over.status_code == 303 and over.headers["location"] == "/signin?next=%2F"
        assert COOKIE not in erin.cookies
        api = httpx.get(site.url + "/", headers={"Accept": "application/json"},
                        cookies={COOKIE: next(iter(renewed))})
        assert api.status_code == 401


def test_a_session_that_does_not_say_when_its_visitor_signed_in_is_not_honoured(site: Site) -> None:
    undated = sign_session({"login": "erin", "checked": int(site.clock.now), "read": True}, SESSION_KEY)
    with httpx.Client(timeout=10, cookies={COOKIE: undated}) as erin:
        page = erin.get(site.url + "/", headers=HTML, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/signin")


def test_signing_out_forgets_the_visitor(site: Site) -> None:
    with site.visitor() as erin:
        site.sign_in(erin, "erin")
        assert "Signed in as <strong>erin</strong>" in erin.get(site.url + "/signout").text
        out = erin.post(site.url + "/signout", headers=HTML)
        assert (out.status_code, str(out.url)) == (200, site.url + "/signout")
        assert "You are signed out" in out.text
        assert COOKIE not in erin.cookies
        again = erin.get(site.url + "/", headers=HTML, follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"].startswith("/signin")


def test_a_callback_that_was_not_started_here_is_refused(site: Site) -> None:
    with site.visitor() as visitor:
        page = visitor.get(site.url + "/oauth/callback", params={"code": "0123456789abcdef0123", "state": "forged"})
        assert page.status_code == 400 and "Sign-in expired" in page.text
        # A state from another sign-in does not fit this visitor's session either.
        visitor.get(site.url + "/signin", follow_redirects=False)
        page = visitor.get(site.url + "/oauth/callback", params={"code": "0123456789abcdef0123", "state": "forged"})
        assert page.status_code == 400


def test_a_code_github_refuses_signs_nobody_in(site: Site) -> None:
    with site.visitor() as visitor:
        to_github = visitor.get(site.url + "/signin", follow_redirects=False)
        state = httpx.URL(to_github.headers["location"]).params["state"]
        page = visitor.get(site.url + "/oauth/callback", params={"code": "0123456789abcdef0123", "state": state})
        assert page.status_code == 502 and "Sign-in failed" in page.text
        assert read_session(visitor.cookies.get(COOKIE, ""), SESSION_KEY).get("login") is None


def test_cancelling_on_github_signs_nobody_in(site: Site) -> None:
    with site.visitor() as visitor:
        page = visitor.get(site.url + "/", headers=HTML)
        back = visitor.post(site.forge.url + "/login/oauth/authorize", data={**dict(page.url.params), "deny": "1"})
        assert back.status_code == 401 and "you cancelled" in back.text


class UnreachableGitHub:
    """Paved's `Accounts` port while GitHub does not answer: what a re-check meets during an outage."""

    def __init__(self) -> None:
        self.asked = 0

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        raise AssertionError("not signing in here")

    def exchange(self, code: str, redirect_uri: str) -> str:
        raise SignInError("GitHub could not be reached")

    def login_of(self, token: str) -> str:
        raise SignInError("GitHub could not be reached")

    def permission_of(self, login: str) -> Permission:
        self.asked += 1
        raise SignInError("GitHub could not be reached")


def test_while_github_is_away_the_last_answer_holds_and_is_asked_again_a_minute_later(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, github_client_id="Iv1.0123456789abcdef", session_secret=Secret(SESSION_KEY),
                        github_client_secret=Secret("0123456789abcdef0123456789abcdef01234567"))
    github, clock = UnreachableGitHub(), Clock()
    signed_in = sign_session({"login": "erin", "since": int(clock.now), "checked": int(clock.now), "read": True},
                             SESSION_KEY)
    with serving(stand_in_catalogue(SignIn(settings, "acme/platform", github, clock=clock)), lifespan="off") as url, \
            httpx.Client(base_url=url, timeout=10, cookies={COOKIE: signed_in}) as erin:
        clock.now += RECHECK_SECONDS + 1
        assert erin.get("/", headers=HTML).text.endswith("<p>for erin</p>")
        assert erin.get("/", headers=HTML).status_code == 200
        assert github.asked == 1
        clock.now += RETRY_SECONDS + 1
        assert erin.get("/", headers=HTML).status_code == 200
        assert github.asked == 2


# -- the session cookie ---------------------------------------------------------------------------------------------

def test_a_session_cookie_is_read_only_with_its_key_unchanged_and_in_time() -> None:
    now = 1_700_000_000
    value = sign_session({"login": "erin"}, SESSION_KEY, now=now)
    assert read_session(value, SESSION_KEY, now=now + 60) == {"login": "erin"}
    assert read_session(value, "another-key-of-enough-length", now=now + 60) == {}
    _, _, mac = value.partition(".")
    forged = sign_session({"login": "alice"}, "guessed-key", now=now).partition(".")[0]
    assert read_session(f"{forged}.{mac}", SESSION_KEY, now=now + 60) == {}
    assert read_session(value, SESSION_KEY, now=now + SESSION_SECONDS + 1) == {}
    assert read_session("garbage", SESSION_KEY) == {} and read_session("", SESSION_KEY) == {}


@pytest.mark.parametrize(("asked", "kept"), [
    ("/resources/Service/checkout?tab=history", "/resources/Service/checkout?tab=history"),
    ("https://evil.example/", "/"), ("//evil.example/", "/"), ("/\\evil.example", "/"), (None, "/"), ("", "/")])
def test_after_signing_in_a_visitor_goes_back_only_to_this_site(asked: str | None, kept: str) -> None:
    assert _safe_next(asked) == kept


# -- open mode and the settings -------------------------------------------------------------------------------------

def test_without_sign_in_settings_the_catalogue_is_open(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with serving(stand_in_catalogue(SignIn(settings, "acme/platform")), lifespan="off") as url, \
            httpx.Client(timeout=10) as client:
        page = client.get(url + "/", headers=HTML)
        assert page.status_code == 200 and page.text.endswith("<p>for anyone</p>")
        assert "set-cookie" not in page.headers
        assert client.get(url + "/signin?next=/resources/Team/payments").headers["location"] == (
            "/resources/Team/payments")


def test_sign_in_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "PAVED_DATA_DIR": str(tmp_path), "PAVED_GITHUB_CLIENT_ID": "Iv1.0123456789abcdef",
        "PAVED_GITHUB_CLIENT_SECRET": "0123456789abcdef0123456789abcdef01234567",
        "PAVED_SESSION_SECRET": SESSION_KEY, "PAVED_PUBLIC_URL": "https://paved.acme.example/",
        "PAVED_ALLOW_OPEN": "yes"})
    assert settings.signin and settings.allow_open
    assert (settings.github_client_id, settings.public_url) == ("Iv1.0123456789abcdef", "https://paved.acme.example")
    assert settings.github_client_secret == Secret("0123456789abcdef0123456789abcdef01234567")
    assert SESSION_KEY not in repr(settings) and "0123456789abcdef0123" not in repr(settings)
    assert SESSION_KEY in settings.secret_values()
    assert settings.github_web_url == "https://github.com"
    assert dataclasses.replace(settings, github_api_url="https://ghe.acme.example/api/v3").github_web_url == (
        "https://ghe.acme.example")
    assert not Settings.from_env({"PAVED_DATA_DIR": str(tmp_path)}).signin


def serve_refusal(settings: Settings) -> str:
    with pytest.raises(ConfigurationError) as refused:
        settings.check_service("serve")
    return refused.value.message


def serving_settings(tmp_path: Path, **changes: object) -> Settings:
    return dataclasses.replace(Settings(data_dir=tmp_path, webhook_secret=Secret(WEBHOOK), github_token=Secret(TOKEN)),
                               **changes)


def test_paved_serve_refuses_an_open_catalogue_on_a_public_interface(tmp_path: Path) -> None:
    message = serve_refusal(serving_settings(tmp_path, host="0.0.0.0"))
    assert message == (
        "paved serve cannot start: the catalogue would be open to anyone who reaches 0.0.0.0: set "
        "PAVED_GITHUB_CLIENT_ID, PAVED_GITHUB_CLIENT_SECRET and PAVED_SESSION_SECRET so that visitors sign in with "
        "GitHub, listen on 127.0.0.1, or set PAVED_ALLOW_OPEN=1 to serve it open on purpose")
    serving_settings(tmp_path, host="0.0.0.0", allow_open=True).check_service("serve")
    for loopback in ("127.0.0.1", "localhost", "::1"):
        serving_settings(tmp_path, host=loopback).check_service("serve")


def test_sign_in_settings_are_checked_together(tmp_path: Path) -> None:
    message = serve_refusal(serving_settings(tmp_path, host="0.0.0.0", session_secret=Secret("changeme")))
    assert "PAVED_GITHUB_CLIENT_ID is not set" in message
    assert "PAVED_GITHUB_CLIENT_SECRET is not set" in message
    assert "PAVED_SESSION_SECRET is a placeholder value" in message and "changeme" not in message
    assert "PAVED_PUBLIC_URL is not set" in message
    assert "PAVED_CATALOGUE_REPO is not set" in message
    complete = serving_settings(tmp_path, host="0.0.0.0", catalogue_repo="acme/platform",
                                github_client_id="Iv1.0123456789abcdef",
                                github_client_secret=Secret("0123456789abcdef0123456789abcdef01234567"),
                                session_secret=Secret(SESSION_KEY), public_url="https://paved.acme.example")
    complete.check_service("serve")
    assert "PAVED_PUBLIC_URL must be https://" in serve_refusal(
        dataclasses.replace(complete, public_url="http://paved.acme.example"))
    dataclasses.replace(complete, host="127.0.0.1", public_url=None).check_service("serve")


def test_sign_in_needs_github_credentials_to_read_visitors_access(tmp_path: Path) -> None:
    enqueue_only = Settings(data_dir=tmp_path, webhook_secret=Secret(WEBHOOK), redis_url=Secret("redis://queue:6379"),
                            github_client_id="Iv1.0123456789abcdef", session_secret=Secret(SESSION_KEY),
                            github_client_secret=Secret("0123456789abcdef0123456789abcdef01234567"))
    assert "GitHub credentials are not set" in serve_refusal(enqueue_only)
