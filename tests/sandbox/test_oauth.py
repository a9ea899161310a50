"""Signing users in with a GitHub App's OAuth web flow, checked against GitHub's documented behaviour.

The flow's web endpoints (`/login/oauth/authorize`, `/login/oauth/access_token`) are not in GitHub's REST
description, so these tests hold them to the documentation ("Generating a user access token for a GitHub
App", "Troubleshooting authorization request errors", "Troubleshooting OAuth app access token request
errors"); the REST calls made with the tokens they issue are checked against the REST description as
every other answer is.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from github import GithubException

from bot.sandbox import AppCredentials, Sandbox
from bot.sandbox import oauth as sandbox_oauth

from .conftest import Cast, github

CALLBACK = "https://paved.example/oauth/callback"


@pytest.fixture
def app(forge: Sandbox, cast: Cast) -> AppCredentials:
    credentials = forge.create_app("acme", "Paved", permissions={"metadata": "read", "contents": "read"})
    forge.install_app(credentials.slug, "acme")
    forge.set_callback_urls(credentials.slug, [CALLBACK])
    return credentials


@pytest.fixture
def secret(forge: Sandbox, app: AppCredentials) -> str:
    return forge.create_client_secret(app.slug)


@pytest.fixture
def web(forge: Sandbox) -> httpx.Client:
    with httpx.Client(base_url=forge.url, follow_redirects=False, timeout=10) as client:
        yield client  # type: ignore[misc]


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def sign_in(web: httpx.Client, app: AppCredentials, login: str, state: str = "s1",
            redirect_uri: str | None = CALLBACK) -> str:
    """What a browser does: open the authorize page, press the user's button; returns the code sent back."""
    params = {"client_id": app.client_id, "state": state, "scope": "read:user",
              **({"redirect_uri": redirect_uri} if redirect_uri else {})}
    page = web.get("/login/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    assert f'value="{login}"' in page.text
    back = web.post("/login/oauth/authorize", data={**params, "login": login})
    assert back.status_code == 302
    assert back.headers["location"].startswith((redirect_uri or CALLBACK) + "?")
    answer = query_of(back.headers["location"])
    assert answer["state"] == state
    return answer["code"]


def exchange(web: httpx.Client, app: AppCredentials, secret: str, code: str, **extra: str) -> dict[str, str]:
    answer = web.post("/login/oauth/access_token", headers={"Accept": "application/json"},
                      data={"client_id": app.client_id, "client_secret": secret, "code": code, **extra})
    # GitHub answers 200 whether or not the exchange worked; an error is told in the body.
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, str] = answer.json()
    return body


def test_the_authorize_page_lists_the_users_to_sign_in_as(forge: Sandbox, app: AppCredentials, web: httpx.Client,
                                                          cast: Cast) -> None:
    page = web.get("/login/oauth/authorize", params={"client_id": app.client_id, "login": "carol"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Sign in to Paved" in page.text
    assert all(f'value="{login}"' in page.text for login in ("alice", "bob", "carol"))
    assert page.text.index('value="carol"') < page.text.index('value="alice"')  # the suggested account first
    assert "sandbox-admin" not in page.text
    assert CALLBACK in page.text  # no redirect_uri: the first callback URL


def test_a_signed_in_user_gets_a_token_that_acts_as_them(forge: Sandbox, app: AppCredentials, secret: str,
                                                        web: httpx.Client, cast: Cast) -> None:
    code = sign_in(web, app, "carol")
    answer = exchange(web, app, secret, code, redirect_uri=CALLBACK)
    assert answer["token_type"] == "bearer"
    assert answer["scope"] == ""  # GitHub Apps have permissions, not scopes
    token = answer["access_token"]
    assert token.startswith("ghu_")
    gh = github(forge, token)
    assert gh.get_user().login == "carol"
    repo = gh.get_repo("acme/platform")
    assert (repo.permissions.pull, repo.permissions.push) == (True, False)
    assert repo.get_collaborator_permission("carol") == "read"


def test_the_token_answer_is_form_encoded_unless_json_or_xml_is_asked_for(
        app: AppCredentials, secret: str, web: httpx.Client) -> None:
    form = web.post("/login/oauth/access_token", data={"client_id": app.client_id, "client_secret": secret,
                                                       "code": sign_in(web, app, "bob")})
    assert form.headers["content-type"].startswith("application/x-www-form-urlencoded")
    fields = parse_qs(form.text)
    assert fields["access_token"][0].startswith("ghu_") and fields["token_type"] == ["bearer"]
    xml = web.post("/login/oauth/access_token", headers={"Accept": "application/xml"},
                   params={"client_id": app.client_id, "client_secret": secret, "code": sign_in(web, app, "bob")})
    assert xml.headers["content-type"].startswith("application/xml")
    assert xml.text.startswith("<OAuth><access_token>ghu_")


def test_the_exchange_takes_a_json_body(app: AppCredentials, secret: str, web: httpx.Client) -> None:
    answer = web.post("/login/oauth/access_token", headers={"Accept": "application/json"},
                      json={"client_id": app.client_id, "client_secret": secret, "code": sign_in(web, app, "alice")})
    assert answer.json()["access_token"].startswith("ghu_")


def test_a_code_is_good_for_one_exchange(app: AppCredentials, secret: str, web: httpx.Client) -> None:
    code = sign_in(web, app, "bob")
    assert "access_token" in exchange(web, app, secret, code)
    assert exchange(web, app, secret, code) == {
        "error": "bad_verification_code", "error_description": "The code passed is incorrect or expired.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-"
                     "request-errors/#bad-verification-code"}
    assert exchange(web, app, secret, "0123456789abcdef0123")["error"] == "bad_verification_code"


def test_a_code_expires(app: AppCredentials, secret: str, web: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # GitHub's codes last ten minutes; one issued with no lifetime has run out by the time it is presented.
    monkeypatch.setattr(sandbox_oauth, "CODE_LIFETIME", 0)
    assert exchange(web, app, secret, sign_in(web, app, "bob"))["error"] == "bad_verification_code"


def test_wrong_client_credentials_are_refused_without_using_up_the_code(
        forge: Sandbox, app: AppCredentials, secret: str, web: httpx.Client) -> None:
    code = sign_in(web, app, "bob")
    refused = exchange(web, app, "0" * 40, code)
    assert refused["error"] == "incorrect_client_credentials"
    assert refused["error_description"] == "The client_id and/or client_secret passed are incorrect."
    answer = web.post("/login/oauth/access_token", headers={"Accept": "application/json"},
                      data={"client_id": "Iv1.unknown", "client_secret": secret, "code": code})
    assert answer.json()["error"] == "incorrect_client_credentials"
    assert exchange(web, app, forge.create_client_secret(app.slug), code)["access_token"].startswith("ghu_")


def test_every_client_secret_of_the_app_works(forge: Sandbox, app: AppCredentials, secret: str,
                                             web: httpx.Client) -> None:
    second = forge.create_client_secret(app.slug)  # rotating: the old one keeps working until deleted
    assert second != secret and len(second) == 40
    assert "access_token" in exchange(web, app, secret, sign_in(web, app, "bob"))
    assert "access_token" in exchange(web, app, second, sign_in(web, app, "bob"))


def test_the_exchange_must_name_the_redirect_uri_the_code_was_issued_for(
        app: AppCredentials, secret: str, web: httpx.Client) -> None:
    code = sign_in(web, app, "bob")
    refused = exchange(web, app, secret, code, redirect_uri="https://paved.example/elsewhere")
    assert refused["error"] == "redirect_uri_mismatch"
    assert refused["error_description"] == ("The redirect_uri MUST match the registered callback URL for this "
                                            "application.")


def test_an_unregistered_redirect_uri_goes_back_to_the_callback_with_an_error(
        app: AppCredentials, web: httpx.Client) -> None:
    answer = web.get("/login/oauth/authorize", params={"client_id": app.client_id, "state": "s9",
                                                       "redirect_uri": "https://evil.example/steal"})
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    assert query_of(location) == {
        "error": "redirect_uri_mismatch",
        "error_description": "The redirect_uri MUST match the registered callback URL for this application.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-"
                     "errors/#redirect-uri-mismatch",
        "state": "s9"}
    posted = web.post("/login/oauth/authorize", data={"client_id": app.client_id, "login": "bob",
                                                      "redirect_uri": "https://evil.example/steal"})
    assert posted.status_code == 302 and "code=" not in posted.headers["location"]


def test_a_loopback_callback_may_come_back_on_another_port(forge: Sandbox, app: AppCredentials,
                                                           web: httpx.Client) -> None:
    forge.set_callback_urls(app.slug, ["http://127.0.0.1:8000/oauth/callback"])
    sign_in(web, app, "bob", redirect_uri="http://127.0.0.1:53117/oauth/callback")
    other_path = web.get("/login/oauth/authorize", params={"client_id": app.client_id,
                                                           "redirect_uri": "http://127.0.0.1:53117/other"})
    assert query_of(other_path.headers["location"])["error"] == "redirect_uri_mismatch"


def test_cancelling_sends_the_user_back_with_access_denied(app: AppCredentials, web: httpx.Client) -> None:
    answer = web.post("/login/oauth/authorize", data={"client_id": app.client_id, "state": "s2", "deny": "1"})
    assert answer.status_code == 302
    assert query_of(answer.headers["location"]) == {
        "error": "access_denied", "error_description": "The user has denied your application access.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-"
                     "errors/#access-denied",
        "state": "s2"}


def test_an_unknown_client_id_gets_a_not_found_page(web: httpx.Client, cast: Cast) -> None:
    answer = web.get("/login/oauth/authorize", params={"client_id": "Iv1.nosuchapp", "redirect_uri": CALLBACK})
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert web.get("/login/oauth/nowhere").status_code == 404


def test_a_user_token_reaches_only_what_the_app_is_installed_on(
        forge: Sandbox, cast: Cast, platform_folder: Path, web: httpx.Client) -> None:
    forge.create_repo_from_folder("acme", "secrets", platform_folder, private=True)
    forge.add_collaborator("acme", "secrets", "carol", "read")
    app = forge.create_app("acme", "Narrow", permissions={"metadata": "read"})
    forge.install_app(app.slug, "acme", repositories=["platform"])
    forge.set_callback_urls(app.slug, [CALLBACK])
    secret = forge.create_client_secret(app.slug)
    token = exchange(web, app, secret, sign_in(web, app, "carol"))["access_token"]
    with pytest.raises(GithubException) as refused:
        github(forge, token).get_repo("acme/secrets")
    assert refused.value.status == 404
    assert github(forge, cast.carol.token).get_repo("acme/secrets").private  # her own token reaches it
    assert github(forge, token).get_repo("acme/platform").permissions.pull
