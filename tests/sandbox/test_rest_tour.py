"""The rest of the REST surface Paved may touch, one behaviour each, through PyGithub or plain HTTP."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from github import GithubException

from bot.sandbox import AppCredentials, InstallationRef, Sandbox

from .conftest import Cast, Receiver, github


def rest(forge: Sandbox, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{forge.api_url}{path}", timeout=5,
                            headers={"Authorization": f"token {token}", **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture
def app(forge: Sandbox, cast: Cast) -> AppCredentials:
    return forge.create_app("acme", "Paved", permissions={"metadata": "read", "checks": "write"})


@pytest.fixture
def installation(forge: Sandbox, app: AppCredentials) -> InstallationRef:
    return forge.install_app(app.slug, "acme")


def bearer(app: AppCredentials) -> dict[str, str]:
    now = int(time.time())
    return {"Authorization": "Bearer " + jwt.encode({"iat": now - 30, "exp": now + 300, "iss": str(app.id)},
                                                    app.private_key, "RS256")}


def test_an_app_reads_itself_and_its_installations(forge: Sandbox, app: AppCredentials,
                                                   installation: InstallationRef) -> None:
    me = requests.get(f"{forge.api_url}/app", headers=bearer(app), timeout=5).json()
    assert (me["slug"], me["installations_count"]) == ("paved", 1)
    listed = requests.get(f"{forge.api_url}/app/installations", headers=bearer(app), timeout=5).json()
    assert [i["account"]["login"] for i in listed] == ["acme"]
    one = requests.get(f"{forge.api_url}/app/installations/{installation.id}", headers=bearer(app), timeout=5)
    assert one.json()["permissions"] == {"metadata": "read", "checks": "write"}


def test_teams_are_listed_and_checked_by_slug_and_by_id(forge: Sandbox, cast: Cast) -> None:
    team = forge.create_team("acme", "SRE", members=["bob"], repos={"platform": "admin"})
    token = cast.alice.token
    assert [t["slug"] for t in rest(forge, "GET", "/orgs/acme/teams", token).json()] == ["sre"]
    assert rest(forge, "GET", f"/teams/{team.id}", token).json()["members_count"] == 1
    assert [r["name"] for r in rest(forge, "GET", "/orgs/acme/teams/sre/repos", token).json()] == ["platform"]
    assert rest(forge, "GET", "/orgs/acme/teams/sre/repos/acme/platform", token).status_code == 204
    detailed = rest(forge, "GET", f"/teams/{team.id}/repos/acme/platform", token,
                    headers={"Accept": "application/vnd.github.v3.repository+json"})
    assert detailed.json()["permissions"]["admin"] is True


def test_a_teams_repository_role_is_changed_and_removed(forge: Sandbox, cast: Cast) -> None:
    team = forge.create_team("acme", "SRE", members=["bob"], repos={"platform": "pull"})
    token = cast.alice.token
    assert rest(forge, "PUT", f"/teams/{team.id}/repos/acme/platform", token,
                json={"permission": "push"}).status_code == 204
    assert rest(forge, "DELETE", "/orgs/acme/teams/sre/repos/acme/platform", token).status_code == 204
    assert rest(forge, "GET", f"/teams/{team.id}/repos/acme/platform", token).status_code == 404
    rest(forge, "PUT", "/orgs/acme/teams/sre/repos/acme/platform", token, json={"permission": "triage"})
    assert rest(forge, "DELETE", f"/teams/{team.id}/repos/acme/platform", token).status_code == 204


def test_a_member_who_is_not_an_owner_cannot_create_teams(forge: Sandbox, cast: Cast) -> None:
    answer = rest(forge, "POST", "/orgs/acme/teams", cast.bob.token, json={"name": "Rogue"})
    assert answer.status_code == 403


def test_secrets_are_read_by_name_and_deleted(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.create_secret("TOKEN", "value")
    assert rest(forge, "GET", "/repos/acme/platform/actions/secrets/TOKEN", cast.alice.token).json()["name"] == "TOKEN"
    repo.delete_secret("TOKEN")
    assert rest(forge, "GET", "/repos/acme/platform/actions/secrets/TOKEN", cast.alice.token).status_code == 404


def test_a_writer_cannot_read_the_secrets_key(forge: Sandbox, cast: Cast) -> None:
    answer = rest(forge, "GET", "/repos/acme/platform/actions/secrets/public-key", cast.bob.token)
    assert answer.status_code == 403


def test_environment_secrets_are_listed_read_and_deleted_with_the_environment(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.create_environment("production").create_secret("KEY", "v")
    token = cast.alice.token
    listed = rest(forge, "GET", "/repos/acme/platform/environments/production/secrets", token).json()
    assert [s["name"] for s in listed["secrets"]] == ["KEY"]
    assert rest(forge, "GET", "/repos/acme/platform/environments/production/secrets/KEY", token).status_code == 200
    assert rest(forge, "DELETE", "/repos/acme/platform/environments/production/secrets/KEY", token).status_code == 204
    assert rest(forge, "DELETE", "/repos/acme/platform/environments/production", token).status_code == 204
    assert rest(forge, "GET", "/repos/acme/platform/environments/production", token).status_code == 404


def test_required_status_checks_are_read_and_updated(forge: Sandbox, cast: Cast) -> None:
    github(forge, cast.alice.token).get_repo("acme/platform").get_branch("main").edit_protection(
        strict=False, contexts=["paved/plan"])
    token = cast.alice.token
    path = "/repos/acme/platform/branches/main/protection/required_status_checks"
    assert rest(forge, "GET", path, token).json()["contexts"] == ["paved/plan"]
    updated = rest(forge, "PATCH", path, token, json={"strict": True, "contexts": ["paved/plan", "ci"]}).json()
    assert (updated["strict"], updated["contexts"]) == (True, ["paved/plan", "ci"])


def test_protection_needs_every_top_level_setting(forge: Sandbox, cast: Cast) -> None:
    answer = rest(forge, "PUT", "/repos/acme/platform/branches/main/protection", cast.alice.token,
                  json={"required_status_checks": None})
    assert answer.status_code == 422


def test_a_hook_is_read_pinged_and_deleted(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    hook_id = forge.register_webhook("acme", "platform", receiver.url)
    token = cast.alice.token
    base = f"/repos/acme/platform/hooks/{hook_id}"
    assert rest(forge, "GET", base, token).json()["config"]["url"] == receiver.url
    assert rest(forge, "POST", f"{base}/pings", token).status_code == 204
    forge.wait_for_deliveries()
    [first, _] = forge.deliveries("ping")
    detail = rest(forge, "GET", f"{base}/deliveries/{first.id}", token).json()
    assert detail["request"]["headers"]["X-GitHub-Event"] == "ping"
    assert detail["response"]["payload"] == "ok"
    assert rest(forge, "DELETE", base, token).status_code == 204
    assert rest(forge, "GET", base, token).status_code == 404


def test_a_check_suite_lists_its_runs_and_is_rerequested(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    app = forge.create_app("acme", "Paved", permissions={"metadata": "read", "checks": "write"},
                           webhook_url=receiver.url)
    installation = forge.install_app(app.slug, "acme")
    token = forge.installation_token(installation.id)
    sha = forge.branch_sha("acme", "platform", "main")
    run = rest(forge, "POST", "/repos/acme/platform/check-runs", token, json={"name": "plan", "head_sha": sha}).json()
    assert rest(forge, "POST", f"/repos/acme/platform/check-runs/{run['id']}/rerequest", token).status_code == 422
    rest(forge, "PATCH", f"/repos/acme/platform/check-runs/{run['id']}", token, json={"conclusion": "failure"})
    suites = rest(forge, "GET", "/repos/acme/platform/commits/main/check-suites", token).json()["check_suites"]
    assert [s["id"] for s in suites] == [run["check_suite"]["id"]]
    suite = rest(forge, "GET", f"/repos/acme/platform/check-suites/{suites[0]['id']}", token).json()
    assert (suite["status"], suite["conclusion"], suite["latest_check_runs_count"]) == ("completed", "failure", 1)
    runs = rest(forge, "GET", f"/repos/acme/platform/check-suites/{suite['id']}/check-runs", token).json()
    assert [r["id"] for r in runs["check_runs"]] == [run["id"]]
    assert rest(forge, "POST", f"/repos/acme/platform/check-suites/{suite['id']}/rerequest", token).status_code == 201
    assert rest(forge, "POST", f"/repos/acme/platform/check-runs/{run['id']}/rerequest", token).status_code == 201
    forge.wait_for_deliveries()
    assert len(receiver.events("check_suite", "rerequested")) == 1
    assert len(receiver.events("check_run", "rerequested")) == 1


def test_another_app_cannot_update_a_check_run(forge: Sandbox, cast: Cast) -> None:
    first = forge.install_app(forge.create_app("acme", "First", permissions={"checks": "write"}).slug, "acme")
    second = forge.install_app(forge.create_app("acme", "Second", permissions={"checks": "write"}).slug, "acme")
    sha = forge.branch_sha("acme", "platform", "main")
    run = rest(forge, "POST", "/repos/acme/platform/check-runs", forge.installation_token(first.id),
               json={"name": "plan", "head_sha": sha}).json()
    answer = rest(forge, "PATCH", f"/repos/acme/platform/check-runs/{run['id']}", forge.installation_token(second.id),
                  json={"status": "completed", "conclusion": "success"})
    assert answer.status_code == 403


def test_branches_commits_and_blobs_are_listed_and_read(forge: Sandbox, cast: Cast) -> None:
    forge.create_branch("acme", "platform", "feature", by="alice")
    forge.push_files("acme", "platform", "main", {"a.txt": "a\n"}, by="alice", message="Add a")
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    assert [b.name for b in repo.get_branches()] == ["feature", "main"]
    assert [c.commit.message for c in repo.get_commits()] == ["Add a", "Initial commit"]
    blob_sha = repo.get_contents("a.txt").sha
    assert repo.get_git_blob(blob_sha).content.strip() == "YQo="
    legacy = rest(forge, "GET", "/repos/acme/platform/git/refs/heads/main", cast.alice.token).json()
    assert legacy["object"]["sha"] == forge.branch_sha("acme", "platform", "main")


def test_a_review_is_read_by_id(forge: Sandbox, cast: Cast) -> None:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    review_id = forge.approve("acme", "platform", pr.number, by="alice", body="Looks right")
    review = github(forge, cast.bob.token).get_repo("acme/platform").get_pull(pr.number).get_review(review_id)
    assert (review.state, review.body, review.user.login) == ("APPROVED", "Looks right", "alice")


def test_labels_are_replaced_and_cleared(forge: Sandbox, cast: Cast) -> None:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    issue = github(forge, cast.alice.token).get_repo("acme/platform").get_issue(pr.number)
    issue.set_labels("one", "two")
    assert [label.name for label in issue.get_labels()] == ["one", "two"]
    issue.delete_labels()
    assert list(issue.get_labels()) == []


def test_a_collaborator_is_added_over_rest_and_the_repository_deleted(forge: Sandbox, cast: Cast) -> None:
    forge.create_user("dave")
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.add_to_collaborators("dave", "triage")
    assert repo.get_collaborator_permission("dave") == "read"
    with pytest.raises(GithubException) as refused:
        github(forge, cast.bob.token).get_repo("acme/platform").delete()
    assert refused.value.status == 403
    repo.delete()
    assert rest(forge, "GET", "/repos/acme/platform", cast.alice.token).status_code == 404


def test_the_rate_limit_is_reported(forge: Sandbox, cast: Cast) -> None:
    limits = github(forge, cast.alice.token).get_rate_limit()
    assert limits.resources.core.limit == 5000
