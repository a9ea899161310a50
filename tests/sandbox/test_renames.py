"""Renaming a repository (`PATCH /repos/{owner}/{repo}` with `name`), as GitHub does: the same repository under
a new name, its git data moved with it, and its old name redirecting to it until a new repository takes it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from git import Repo
from github import GithubException

from bot.sandbox import Sandbox

from .conftest import Cast, github


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _ask(forge: Sandbox, token: str, method: str, path: str) -> tuple[int, dict[str, str], dict[str, object]]:
    """One REST call as it is answered, redirects not followed: (status, headers, JSON body)."""
    request = urllib.request.Request(f"{forge.api_url}{path}", method=method,
                                     headers={"Authorization": f"token {token}"},
                                     data=b"{}" if method != "GET" else None)
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def test_a_renamed_repository_keeps_its_id_history_and_issues(forge: Sandbox, cast: Cast) -> None:
    gh = github(forge, cast.alice.token)
    before = gh.get_repo("acme/platform")
    issue = before.create_issue("Keep me")
    before.edit(name="paved")
    after = gh.get_repo("acme/paved")
    assert (after.id, after.full_name) == (before.id, "acme/paved")
    assert after.clone_url.endswith("/acme/paved.git")
    assert after.get_issue(issue.number).title == "Keep me"
    assert after.get_contents("services/billing.yaml").decoded_content.startswith(b"kind: Service")


def test_the_old_name_answers_301_to_the_repository_by_id(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.edit(name="paved")
    status, headers, body = _ask(forge, cast.alice.token, "GET", "/repos/acme/platform/issues?state=all")
    assert status == 301
    assert headers["Location"] == f"{forge.api_url}/repositories/{repo.id}/issues?state=all"
    assert body["message"] == "Moved Permanently" and body["url"] == headers["Location"]


def test_a_write_to_the_old_name_answers_307(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.edit(name="paved")
    status, headers, _ = _ask(forge, cast.alice.token, "PATCH", "/repos/acme/platform")
    assert status == 307
    assert headers["Location"] == f"{forge.api_url}/repositories/{repo.id}"


def test_pygithub_follows_the_old_name_to_the_renamed_repository(forge: Sandbox, cast: Cast) -> None:
    gh = github(forge, cast.alice.token)
    gh.get_repo("acme/platform").edit(name="paved")
    assert gh.get_repo("acme/platform").full_name == "acme/paved"


def test_the_old_name_does_not_lead_who_may_not_see_the_repository_there(forge: Sandbox, cast: Cast) -> None:
    gh = github(forge, cast.alice.token)
    gh.get_repo("acme/platform").edit(name="paved", private=True)
    forge.create_user("mallory")
    outsider = forge.create_token("mallory")
    assert _ask(forge, outsider, "GET", "/repos/acme/platform")[0] == 404


def test_a_name_another_repository_has_is_refused(forge: Sandbox, cast: Cast) -> None:
    forge.create_repo("acme", "other")
    with pytest.raises(GithubException) as refused:
        github(forge, cast.alice.token).get_repo("acme/platform").edit(name="Other")
    assert refused.value.status == 422
    assert refused.value.data["errors"][0]["field"] == "name"


@pytest.mark.parametrize("name", ["", "..", "two words", "x" * 101])
def test_a_name_github_would_not_take_is_refused(forge: Sandbox, cast: Cast, name: str) -> None:
    with pytest.raises(GithubException) as refused:
        github(forge, cast.alice.token).get_repo("acme/platform").edit(name=name)
    assert refused.value.status == 422


def test_only_admins_may_rename(forge: Sandbox, cast: Cast) -> None:
    with pytest.raises(GithubException) as refused:
        github(forge, cast.bob.token).get_repo("acme/platform").edit(name="mine")
    assert refused.value.status in (403, 404)
    assert github(forge, cast.alice.token).get_repo("acme/platform").name == "platform"


def test_git_pushes_and_fetches_by_the_new_name(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    github(forge, cast.alice.token).get_repo("acme/platform").edit(name="paved")
    work = Repo.clone_from(forge.authenticated_clone_url("acme", "paved", cast.bob.token), tmp_path / "work")
    (tmp_path / "work" / "new.txt").write_text("new\n")
    work.index.add(["new.txt"])
    sha = work.index.commit("Add new").hexsha
    work.git.push("origin", "main")
    assert forge.branch_sha("acme", "paved", "main") == sha


def test_git_follows_the_old_name_to_the_renamed_repository(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    github(forge, cast.alice.token).get_repo("acme/platform").edit(name="paved")
    work = Repo.clone_from(forge.authenticated_clone_url("acme", "platform", cast.bob.token), tmp_path / "work")
    assert work.head.commit.hexsha == forge.branch_sha("acme", "paved", "main")


def test_a_new_repository_may_take_the_old_name_and_the_redirect_stops(forge: Sandbox, cast: Cast) -> None:
    gh = github(forge, cast.alice.token)
    renamed = gh.get_repo("acme/platform")
    renamed.edit(name="paved")
    created = gh.get_organization("acme").create_repo("platform")
    assert created.id != renamed.id
    assert gh.get_repo("acme/platform").id == created.id
    assert gh.get_repo("acme/paved").id == renamed.id


def test_renaming_back_takes_the_name_again(forge: Sandbox, cast: Cast) -> None:
    gh = github(forge, cast.alice.token)
    repo = gh.get_repo("acme/platform")
    repo.edit(name="paved")
    gh.get_repo("acme/paved").edit(name="platform")
    assert gh.get_repo("acme/platform").id == repo.id
    assert gh.get_repo("acme/paved").full_name == "acme/platform"  # the other name now redirects


def test_a_restarted_forge_keeps_the_rename_and_its_redirect(tmp_path: Path, platform_folder: Path) -> None:
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        forge.create_org("acme", owners=["alice"])
        forge.create_repo_from_folder("acme", "platform", platform_folder, owner_token=alice.token)
        github(forge, alice.token).get_repo("acme/platform").edit(name="paved")
    with Sandbox.start(tmp_path / "forge") as forge:
        assert forge.read_file("acme", "paved", "README.md").startswith(b"# platform")
        assert github(forge, alice.token).get_repo("acme/platform").full_name == "acme/paved"
