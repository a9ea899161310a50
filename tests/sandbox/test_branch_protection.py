"""Branch protection applies to pushes and API writes as on GitHub; pull requests are the way in."""

from __future__ import annotations

from pathlib import Path

import pytest
from git import GitCommandError, Repo
from github import Github, GithubException

from bot.sandbox import ApiError, Sandbox

from .conftest import Cast, github


def protect(forge: Sandbox, token: str, **settings: object) -> None:
    body = {"required_status_checks": None, "enforce_admins": False, "required_pull_request_reviews": None,
            "restrictions": None, **settings}
    repo = github(forge, token).get_repo("acme/platform")
    repo._requester.requestJsonAndCheck("PUT", f"{repo.url}/branches/main/protection", input=body)


def clone_and_commit(forge: Sandbox, token: str, where: Path) -> Repo:
    repo = Repo.clone_from(forge.authenticated_clone_url("acme", "platform", token), where)
    (where / "direct.txt").write_text("pushed straight to main\n")
    repo.index.add(["direct.txt"])
    repo.index.commit("Push straight to main")
    return repo


def test_a_push_to_a_branch_that_needs_reviews_is_refused(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    protect(forge, cast.alice.token, required_pull_request_reviews={"required_approving_review_count": 1})
    repo = clone_and_commit(forge, cast.bob.token, tmp_path / "work")
    with pytest.raises(GitCommandError) as refused:
        repo.git.push("origin", "main")
    assert "GH006: Protected branch update failed for refs/heads/main" in str(refused.value)


def test_an_admin_may_push_unless_admins_are_included(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    protect(forge, cast.alice.token, required_pull_request_reviews={"required_approving_review_count": 1})
    repo = clone_and_commit(forge, cast.alice.token, tmp_path / "work")
    repo.git.push("origin", "main")
    assert forge.branch_sha("acme", "platform", "main") == repo.head.commit.hexsha


def test_a_force_push_to_a_protected_branch_is_refused(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    protect(forge, cast.alice.token)
    repo = clone_and_commit(forge, cast.bob.token, tmp_path / "work")
    repo.git.push("origin", "main")  # a fast-forward is fine without a review rule
    repo.git.reset("--hard", "HEAD~1")
    (tmp_path / "work" / "other.txt").write_text("rewritten\n")
    repo.index.add(["other.txt"])
    repo.index.commit("Rewrite history")
    with pytest.raises(GitCommandError) as refused:
        repo.git.push("--force", "origin", "main")
    assert "Cannot force-push to this branch" in str(refused.value)


def test_the_contents_api_cannot_write_to_a_branch_that_needs_reviews(forge: Sandbox, cast: Cast) -> None:
    protect(forge, cast.alice.token, required_pull_request_reviews={"required_approving_review_count": 1})
    repo = github(forge, cast.bob.token).get_repo("acme/platform")
    with pytest.raises(GithubException) as refused:
        repo.create_file("direct.txt", "Straight to main", "no review\n", branch="main")
    assert refused.value.status == 409


def test_a_protected_branch_changes_through_a_reviewed_pull_request(forge: Sandbox, cast: Cast) -> None:
    protect(forge, cast.alice.token, required_pull_request_reviews={"required_approving_review_count": 1},
            enforce_admins=True)
    with pytest.raises(ApiError):
        forge.push_files("acme", "platform", "main", {"direct.txt": "x\n"}, by="alice")
    forge.push_files("acme", "platform", "change", {"reviewed.txt": "x\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="change", title="Reviewed change", by="bob")
    forge.approve("acme", "platform", pr.number, by="alice")
    sha = forge.merge("acme", "platform", pr.number, by="bob")
    assert forge.branch_sha("acme", "platform", "main") == sha


def pull_request_with_check_runs(forge: Sandbox, cast: Cast) -> tuple[int, str, dict[str, Github], int]:
    """bob's pull request, two apps that may write check runs on it, and the id of the first, Paved's."""
    forge.push_files("acme", "platform", "change", {"change.txt": "x\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="change", title="Change", by="bob")
    permissions = {"metadata": "read", "checks": "write"}
    apps, ids = {}, []
    for name in ("Paved", "Other checks"):
        app = forge.create_app("acme", name, permissions=permissions)
        apps[name] = github(forge, forge.installation_token(forge.install_app(app.slug, "acme").id))
        ids.append(app.id)
    return pr.number, pr.head_sha, apps, ids[0]


def test_a_check_required_from_one_app_is_not_passed_by_another_apps_run_of_that_name(
        forge: Sandbox, cast: Cast) -> None:
    number, head, apps, paved_id = pull_request_with_check_runs(forge, cast)
    protect(forge, cast.alice.token, required_status_checks={
        "strict": False, "checks": [{"context": "paved/plan", "app_id": paved_id}]})
    apps["Paved"].get_repo("acme/platform").create_check_run("paved/plan", head, status="in_progress")
    apps["Other checks"].get_repo("acme/platform").create_check_run("paved/plan", head, conclusion="success")

    with pytest.raises(ApiError) as refused:
        forge.merge("acme", "platform", number, by="bob")

    assert 'Required status check "paved/plan" is expected.' in str(refused.value)


def test_a_check_required_from_one_app_is_passed_by_that_apps_run(forge: Sandbox, cast: Cast) -> None:
    number, head, apps, paved_id = pull_request_with_check_runs(forge, cast)
    protect(forge, cast.alice.token, required_status_checks={
        "strict": False, "checks": [{"context": "paved/plan", "app_id": paved_id}]})

    apps["Paved"].get_repo("acme/platform").create_check_run("paved/plan", head, conclusion="success")

    assert forge.merge("acme", "platform", number, by="bob")
