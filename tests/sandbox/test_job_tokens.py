"""GitHub Actions' job token (`GITHUB_TOKEN`) as GitHub makes it, next to a GitHub App's installation token.

A job's token is an installation token of the `github-actions` app for its one repository, holding only
what the workflow's `permissions:` grants, which can never include administration, members or secrets;
a pull request from a fork gets it read-only. An app's token that lacks a permission is refused with 403
and `X-Accepted-GitHub-Permissions` naming the one the endpoint accepts, which is how a runner learns
what is missing. Every answer here is checked against GitHub's descriptions by the session's recorder.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from bot.sandbox import Sandbox

from .conftest import Cast

PLAN_JOB = {"checks": "write", "contents": "write", "issues": "write", "pull_requests": "write"}


def call(forge: Sandbox, token: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, forge.api_url + path, json=body, timeout=10,
                            headers={"Authorization": f"token {token}", "Accept": "application/vnd.github+json"})


def test_a_job_token_acts_as_github_actions_on_its_own_repository(forge: Sandbox, cast: Cast) -> None:
    token = forge.job_token("acme", "platform", PLAN_JOB)

    listed = call(forge, token, "GET", "/installation/repositories").json()

    assert [r["full_name"] for r in listed["repositories"]] == ["acme/platform"]
    assert token.startswith("ghs_")


def test_a_job_token_cannot_create_a_team_and_github_says_members_write_is_needed(forge: Sandbox,
                                                                                   cast: Cast) -> None:
    token = forge.job_token("acme", "platform", PLAN_JOB)

    answer = call(forge, token, "POST", "/orgs/acme/teams", {"name": "search"})

    assert (answer.status_code, answer.json()["message"]) == (403, "Resource not accessible by integration")
    assert answer.headers["X-Accepted-GitHub-Permissions"] == "members=write"


def test_a_job_token_cannot_create_a_repository_in_the_organisation(forge: Sandbox, cast: Cast) -> None:
    token = forge.job_token("acme", "platform", PLAN_JOB)

    answer = call(forge, token, "POST", "/orgs/acme/repos", {"name": "search"})

    assert answer.status_code == 403
    assert answer.headers["X-Accepted-GitHub-Permissions"] == "administration=write"


def test_a_job_token_cannot_read_the_key_that_secrets_are_sealed_with(forge: Sandbox, cast: Cast) -> None:
    token = forge.job_token("acme", "platform", PLAN_JOB)

    answer = call(forge, token, "GET", "/repos/acme/platform/actions/secrets/public-key")

    assert answer.status_code == 403
    assert answer.headers["X-Accepted-GitHub-Permissions"] == "secrets=read"


@pytest.mark.parametrize("permission", ["administration", "members", "secrets", "organization_custom_properties"])
def test_a_workflow_cannot_grant_its_job_token_an_organisation_permission(forge: Sandbox, cast: Cast,
                                                                          permission: str) -> None:
    with pytest.raises(ValueError, match=permission):
        forge.job_token("acme", "platform", {permission: "write"})


def test_a_fork_pull_requests_job_token_may_read_but_not_publish_a_check(forge: Sandbox, cast: Cast) -> None:
    token = forge.job_token("acme", "platform", PLAN_JOB, fork=True)
    head = forge.branch_sha("acme", "platform", "main")

    read = call(forge, token, "GET", f"/repos/acme/platform/commits/{head}/check-runs")
    written = call(forge, token, "POST", "/repos/acme/platform/check-runs", {"name": "paved/plan", "head_sha": head})

    assert (read.status_code, written.status_code) == (200, 403)
    assert written.headers["X-Accepted-GitHub-Permissions"] == "checks=write"


def test_an_invalid_write_the_token_may_make_is_refused_as_invalid_not_forbidden(forge: Sandbox, cast: Cast) -> None:
    app = forge.create_app("acme", "platform-app", permissions={"members": "write", "metadata": "read"})
    installation = forge.install_app(app.id, "acme")
    token = forge.installation_token(installation.id)

    answer = call(forge, token, "POST", "/orgs/acme/teams", {})

    assert answer.status_code == 422


def test_an_app_token_without_a_permission_is_told_so_before_its_body_is_read(forge: Sandbox, cast: Cast) -> None:
    token = forge.job_token("acme", "platform", PLAN_JOB)

    for path, permission in (("/orgs/acme/repos", "administration=write"), ("/orgs/acme/teams", "members=write")):
        answer = call(forge, token, "POST", path, {})

        assert answer.status_code == 403
        assert answer.headers["X-Accepted-GitHub-Permissions"] == permission
