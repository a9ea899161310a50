"""Git data through the API (blobs, trees, commits, refs) and repositories made through the API."""

from __future__ import annotations

import time

import pytest
import requests
from github import GithubException, InputGitTreeElement

from bot.sandbox import Sandbox
from bot.sandbox.model import StoredToken

from .conftest import Cast, github


def test_a_commit_is_built_from_blobs_and_trees_and_a_branch_points_at_it(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    main = repo.get_branch("main").commit
    blob = repo.create_git_blob("kind: Database\nname: billing-db\n", "utf-8")
    tree = repo.create_git_tree([InputGitTreeElement("databases/billing.yaml", "100644", "blob", sha=blob.sha)],
                                base_tree=repo.get_git_tree(main.commit.tree.sha))
    commit = repo.create_git_commit("Add the billing database", tree, [repo.get_git_commit(main.sha)])
    ref = repo.create_git_ref("refs/heads/database", commit.sha)
    assert ref.object.sha == commit.sha
    assert repo.get_contents("databases/billing.yaml", ref="database").decoded_content.startswith(b"kind: Database")
    assert repo.get_contents("README.md", ref="database").decoded_content.startswith(b"# platform")
    assert {e.path for e in repo.get_git_tree(commit.sha, recursive=True).tree} >= {"databases/billing.yaml",
                                                                                     "services/billing.yaml"}


def test_a_ref_moves_only_forward_unless_forced(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    old = repo.get_branch("main").commit.sha
    new = forge.push_files("acme", "platform", "main", {"a.txt": "a\n"}, by="alice")
    ref = repo.get_git_ref("heads/main")
    with pytest.raises(GithubException) as refused:
        ref.edit(old)
    assert refused.value.status == 422
    ref.edit(old, force=True)
    assert repo.get_branch("main").commit.sha == old != new


def test_matching_refs_are_listed_by_prefix(forge: Sandbox, cast: Cast) -> None:
    forge.create_branch("acme", "platform", "feature/a", by="alice")
    forge.create_branch("acme", "platform", "feature/b", by="alice")
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    assert [r.ref for r in repo.get_git_matching_refs("heads/feature/")] == ["refs/heads/feature/a",
                                                                            "refs/heads/feature/b"]


def test_a_file_is_updated_only_with_its_current_sha(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.bob.token).get_repo("acme/platform")
    current = repo.get_contents("services/billing.yaml")
    updated = repo.update_file("services/billing.yaml", "Scale", "replicas: 2\n", current.sha)
    with pytest.raises(GithubException) as conflict:
        repo.update_file("services/billing.yaml", "Scale again", "replicas: 3\n", current.sha)
    assert conflict.value.status == 409
    repo.delete_file("services/billing.yaml", "Remove", updated["content"].sha)
    with pytest.raises(GithubException) as gone:
        repo.get_contents("services/billing.yaml")
    assert gone.value.status == 404


def test_a_user_creates_a_private_repository_of_their_own(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.carol.token).get_user().create_repo("scratch", private=True, auto_init=True)
    assert (repo.full_name, repo.private, repo.default_branch) == ("carol/scratch", True, "main")
    with pytest.raises(GithubException) as hidden:
        github(forge, cast.bob.token).get_repo("carol/scratch")
    assert hidden.value.status == 404


def test_an_org_member_creates_a_repository_in_the_org(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.bob.token).get_organization("acme").create_repo("docs", description="Docs")
    assert repo.full_name == "acme/docs" and repo.description == "Docs"
    assert [r.name for r in github(forge, cast.alice.token).get_organization("acme").get_repos()] == ["platform",
                                                                                                      "docs"]


def test_a_repository_name_is_taken_once(forge: Sandbox, cast: Cast) -> None:
    with pytest.raises(GithubException) as taken:
        github(forge, cast.alice.token).get_organization("acme").create_repo("platform")
    assert taken.value.status == 422


def test_an_installation_lists_its_repositories(forge: Sandbox, cast: Cast) -> None:
    app = forge.create_app("acme", "Paved", permissions={"metadata": "read"})
    installation = forge.install_app(app.slug, "acme")
    installation_api = github(forge, forge.installation_token(installation.id))
    answer = requests.get(f"{forge.api_url}/installation/repositories", timeout=5,
                          headers={"Authorization": f"token {forge.installation_token(installation.id)}"})
    assert [r["full_name"] for r in answer.json()["repositories"]] == ["acme/platform"]
    assert installation_api.get_repo("acme/platform").full_name == "acme/platform"


def test_an_expired_installation_token_is_refused(forge: Sandbox, cast: Cast) -> None:
    app = forge.create_app("acme", "Paved", permissions={"metadata": "read"})
    installation = forge.install_app(app.slug, "acme")
    token = forge.installation_token(installation.id)
    record = forge.forge.store.first(StoredToken, lambda t: t.token == token)
    assert record is not None
    record.expires_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    forge.forge.store.put(record)
    with pytest.raises(GithubException) as refused:
        github(forge, token).get_repo("acme/platform")
    assert refused.value.status == 401
