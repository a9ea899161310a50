"""GitHub Apps: JWTs, installations, installation tokens and what they may do."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from github import Auth, GithubException, GithubIntegration

from bot.sandbox import AppCredentials, Sandbox

from .conftest import Cast, Receiver, github

PAVED_PERMISSIONS = {"metadata": "read", "contents": "write", "pull_requests": "write", "issues": "write",
                     "checks": "write", "statuses": "write"}


@pytest.fixture
def app(forge: Sandbox, cast: Cast) -> AppCredentials:
    credentials = forge.create_app("acme", "Paved", permissions=PAVED_PERMISSIONS)
    forge.install_app(credentials.slug, "acme")
    return credentials


def app_jwt(app: AppCredentials, issued: float, expires: float) -> str:
    return jwt.encode({"iat": int(issued), "exp": int(expires), "iss": str(app.id)}, app.private_key, "RS256")


def test_an_app_jwt_is_exchanged_for_an_installation_token_that_works(forge: Sandbox, app: AppCredentials) -> None:
    auth = Auth.AppAuth(app.id, app.private_key)
    integration = GithubIntegration(auth=auth, base_url=forge.api_url)
    installation = integration.get_repo_installation("acme", "platform")
    token = integration.get_access_token(installation.id)
    assert token.token.startswith("ghs_")
    assert 3500 < token.expires_at.timestamp() - time.time() <= 3600
    gh = github(forge, auth=auth.get_installation_auth(installation.id))
    assert gh.get_repo("acme/platform").get_branch("main").commit.sha == forge.branch_sha("acme", "platform", "main")


def test_an_installation_token_comments_as_the_apps_bot(forge: Sandbox, app: AppCredentials, cast: Cast) -> None:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    token = forge.installation_token(_installation_id(forge, app))
    gh = github(forge, token)
    comment = gh.get_repo("acme/platform").get_pull(pr.number).create_issue_comment("Plan: 1 change")
    assert comment.user.login == "paved[bot]"
    assert comment.user.type == "Bot"


def _installation_id(forge: Sandbox, app: AppCredentials) -> int:
    auth = Auth.AppAuth(app.id, app.private_key)
    return GithubIntegration(auth=auth, base_url=forge.api_url).get_repo_installation("acme", "platform").id


def test_an_expired_jwt_is_refused(forge: Sandbox, app: AppCredentials) -> None:
    now = time.time()
    answer = requests.get(f"{forge.api_url}/app", timeout=5,
                          headers={"Authorization": f"Bearer {app_jwt(app, now - 900, now - 300)}"})
    assert answer.status_code == 401
    assert "exp" in answer.json()["message"]


def test_a_jwt_expiring_more_than_ten_minutes_ahead_is_refused(forge: Sandbox, app: AppCredentials) -> None:
    now = time.time()
    answer = requests.get(f"{forge.api_url}/app", timeout=5,
                          headers={"Authorization": f"Bearer {app_jwt(app, now - 30, now + 3600)}"})
    assert answer.status_code == 401


def test_a_jwt_signed_with_another_key_is_refused(forge: Sandbox, app: AppCredentials) -> None:
    other = forge.create_app("acme", "Other")
    forged = AppCredentials(app.id, app.slug, app.client_id, other.private_key, app.bot_login)
    now = time.time()
    answer = requests.get(f"{forge.api_url}/app", timeout=5,
                          headers={"Authorization": f"Bearer {app_jwt(forged, now - 30, now + 300)}"})
    assert answer.status_code == 401


def test_a_jwt_cannot_call_repository_endpoints(forge: Sandbox, app: AppCredentials) -> None:
    now = time.time()
    answer = requests.get(f"{forge.api_url}/repos/acme/platform/pulls", timeout=5,
                          headers={"Authorization": f"Bearer {app_jwt(app, now - 30, now + 300)}"})
    assert answer.status_code == 403


def test_an_installation_token_cannot_reach_repositories_outside_the_installation(forge: Sandbox, cast: Cast) -> None:
    credentials = forge.create_app("acme", "Narrow", permissions=PAVED_PERMISSIONS)
    forge.create_repo("acme", "other", private=True, by="alice", auto_init=True)
    installation = forge.install_app(credentials.slug, "acme", repositories=["platform"])
    gh = github(forge, forge.installation_token(installation.id))
    assert gh.get_repo("acme/platform").name == "platform"
    with pytest.raises(GithubException) as refused:
        gh.get_repo("acme/other")
    assert refused.value.status == 404


def test_a_read_only_installation_token_cannot_comment(forge: Sandbox, app: AppCredentials, cast: Cast) -> None:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    token = forge.installation_token(_installation_id(forge, app),
                                     permissions={"pull_requests": "read", "issues": "read"})
    gh = github(forge, token)
    pull = gh.get_repo("acme/platform").get_pull(pr.number)
    with pytest.raises(GithubException) as refused:
        pull.create_issue_comment("hello")
    assert refused.value.status == 403
    assert refused.value.data["message"] == "Resource not accessible by integration"


def test_installing_an_app_sends_it_an_installation_event(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    credentials = forge.create_app("acme", "Listener", permissions=PAVED_PERMISSIONS, webhook_url=receiver.url,
                                   webhook_secret="app-secret")
    installation = forge.install_app(credentials.slug, "acme")
    forge.wait_for_deliveries()
    created = receiver.events("installation", "created")
    assert len(created) == 1
    assert created[0].payload["installation"]["id"] == installation.id
    assert [r["full_name"] for r in created[0].payload["repositories"]] == ["acme/platform"]


def test_an_installed_app_hears_pull_requests_with_its_installation(forge: Sandbox, cast: Cast,
                                                                   receiver: Receiver) -> None:
    credentials = forge.create_app("acme", "Listener", permissions=PAVED_PERMISSIONS, webhook_url=receiver.url)
    installation = forge.install_app(credentials.slug, "acme")
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    forge.wait_for_deliveries()
    opened = receiver.events("pull_request", "opened")
    assert opened[0].payload["installation"]["id"] == installation.id
