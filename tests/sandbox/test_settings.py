"""Repository settings Paved manages: collaborators, teams, environments, secrets, branch protection."""

from __future__ import annotations

import base64

import pytest
from github import GithubException
from nacl.public import PublicKey, SealedBox

from bot.sandbox import Sandbox

from .conftest import Cast, github


def test_a_collaborators_permission_is_reported_as_github_does(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    assert repo.get_collaborator_permission("bob") == "write"
    assert repo.get_collaborator_permission("carol") == "read"
    assert repo.get_collaborator_permission("alice") == "admin"
    assert repo.has_in_collaborators("carol")


def test_a_maintainer_is_reported_with_write_permission_and_its_role(forge: Sandbox, cast: Cast) -> None:
    forge.create_user("dave")
    forge.add_collaborator("acme", "platform", "dave", "maintain")
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    permission = repo.get_collaborator_role_name("dave")
    assert permission == "maintain"
    assert repo.get_collaborator_permission("dave") == "write"


def test_a_team_gets_a_role_on_a_repository(forge: Sandbox, cast: Cast) -> None:
    forge.create_user("erin")
    org = github(forge, cast.alice.token).get_organization("acme")
    team = org.create_team("Platform Engineers", description="Run the platform")
    assert team.slug == "platform-engineers"
    team.update_team_repository(github(forge, cast.alice.token).get_repo("acme/platform"), "maintain")
    assert [r.full_name for r in team.get_repos()] == ["acme/platform"]
    assert org.get_team_by_slug("platform-engineers").name == "Platform Engineers"
    assert [t.slug for t in github(forge, cast.alice.token).get_repo("acme/platform").get_teams()] == [
        "platform-engineers"]


def test_team_members_get_the_teams_role(forge: Sandbox, cast: Cast) -> None:
    forge.create_user("erin")
    forge.add_member("acme", "erin")
    forge.create_team("acme", "Reviewers", members=["erin"], repos={"platform": "push"})
    assert github(forge, cast.alice.token).get_repo("acme/platform").get_collaborator_permission("erin") == "write"


def test_an_environment_is_created_with_a_wait_timer(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    env = repo.create_environment("production", wait_timer=30)
    assert env.name == "production"
    assert [rule.type for rule in repo.get_environment("production").protection_rules] == ["wait_timer"]
    assert [e.name for e in repo.get_environments()] == ["production"]


def test_only_admins_may_create_environments(forge: Sandbox, cast: Cast) -> None:
    with pytest.raises(GithubException) as refused:
        github(forge, cast.bob.token).get_repo("acme/platform").create_environment("staging")
    assert refused.value.status == 403


def test_a_sealed_secret_is_opened_by_the_sandbox(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.create_secret("DATABASE_URL", "postgres://billing@db/billing")
    assert forge.secret_value("acme", "platform", "DATABASE_URL") == "postgres://billing@db/billing"
    assert [s.name for s in repo.get_secrets()] == ["DATABASE_URL"]


def test_an_environment_secret_is_sealed_with_the_environments_key(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    env = repo.create_environment("production")
    env.create_secret("API_TOKEN", "s3cr3t")
    assert forge.secret_value("acme", "platform", "API_TOKEN", environment="production") == "s3cr3t"


def test_a_secret_sealed_for_another_key_is_refused(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    key = repo.get_public_key()
    stranger = PublicKey(bytes(32 * [7]))
    sealed = base64.b64encode(SealedBox(stranger).encrypt(b"value")).decode()
    with pytest.raises(GithubException) as refused:
        repo._requester.requestJsonAndCheck("PUT", f"{repo.url}/actions/secrets/WRONG",
                                            input={"encrypted_value": sealed, "key_id": key.key_id})
    assert refused.value.status == 422


def test_branch_protection_is_stored_and_read_back(forge: Sandbox, cast: Cast) -> None:
    branch = github(forge, cast.alice.token).get_repo("acme/platform").get_branch("main")
    branch.edit_protection(strict=True, contexts=["paved/plan"], required_approving_review_count=2)
    protection = branch.get_protection()
    assert protection.required_status_checks.contexts == ["paved/plan"]
    assert protection.required_pull_request_reviews.required_approving_review_count == 2
    assert github(forge, cast.alice.token).get_repo("acme/platform").get_branch("main").protected
    branch.remove_protection()
    with pytest.raises(GithubException) as missing:
        branch.get_protection()
    assert missing.value.status == 404


def test_a_required_check_blocks_the_merge_until_it_passes(forge: Sandbox, cast: Cast) -> None:
    branch = github(forge, cast.alice.token).get_repo("acme/platform").get_branch("main")
    branch.edit_protection(strict=False, contexts=["paved/plan"])
    sha = forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    repo = github(forge, cast.bob.token).get_repo("acme/platform")
    with pytest.raises(GithubException) as refused:
        repo.get_pull(pr.number).merge()
    assert refused.value.status == 405
    repo.get_commit(sha).create_status("success", context="paved/plan")
    assert repo.get_pull(pr.number).merge().merged
