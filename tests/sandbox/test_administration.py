"""Administering an organization as a provisioner does: repository settings and archiving, team
descriptions and memberships, and the branch name patterns an environment deploys from."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from git import GitCommandError, Repo
from github import GithubException

from bot.sandbox import Sandbox

from .conftest import Cast, github


def test_a_repository_changes_description_and_visibility(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.edit(description="Requests for the platform", visibility="internal")
    again = github(forge, cast.alice.token).get_repo("acme/platform")
    assert (again.description, again.visibility, again.private) == ("Requests for the platform", "internal", True)
    again.edit(private=False)
    assert github(forge, cast.alice.token).get_repo("acme/platform").visibility == "public"


def test_a_repository_is_created_internal_in_an_organization(forge: Sandbox, cast: Cast) -> None:
    org = github(forge, cast.alice.token).get_organization("acme")
    created = org.create_repo("handbook", visibility="internal")
    assert (created.visibility, created.private) == ("internal", True)


def test_only_admins_may_change_a_repository(forge: Sandbox, cast: Cast) -> None:
    with pytest.raises(GithubException) as refused:
        github(forge, cast.bob.token).get_repo("acme/platform").edit(description="mine now")
    assert refused.value.status == 403


def test_the_default_branch_moves_only_to_a_branch_that_exists(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    with pytest.raises(GithubException) as refused:
        repo.edit(default_branch="trunk")
    assert refused.value.status == 422
    forge.create_branch("acme", "platform", "trunk", by="alice")
    repo.edit(default_branch="trunk")
    assert github(forge, cast.alice.token).get_repo("acme/platform").default_branch == "trunk"


def test_an_archived_repository_is_read_only_until_unarchived(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    clone = Repo.clone_from(forge.authenticated_clone_url("acme", "platform", cast.alice.token), tmp_path / "work")
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.edit(archived=True)
    assert github(forge, cast.alice.token).get_repo("acme/platform").archived
    with pytest.raises(GithubException) as refused:
        repo.edit(description="still here?")
    assert refused.value.status == 403
    with pytest.raises(GithubException) as write:
        repo.create_file("notes.md", "Add notes", "notes\n")
    assert write.value.status == 403
    (tmp_path / "work" / "notes.md").write_text("notes\n")
    clone.index.add(["notes.md"])
    clone.index.commit("Add notes")
    with pytest.raises(GitCommandError, match="archived"):
        clone.git.push("origin", "main")
    repo.edit(archived=False)
    clone.git.push("origin", "main")
    assert forge.branch_sha("acme", "platform", "main") == clone.head.commit.hexsha


def test_a_team_changes_its_description_and_its_slug_follows_its_name(forge: Sandbox, cast: Cast) -> None:
    org = github(forge, cast.alice.token).get_organization("acme")
    team = org.create_team("payments", description="Card payments")
    team.edit("payments", description="Card payments and refunds")
    assert org.get_team_by_slug("payments").description == "Card payments and refunds"
    team.edit("Payments Core")
    assert org.get_team_by_slug("payments-core").name == "Payments Core"


def test_team_members_are_added_listed_by_role_and_removed(forge: Sandbox, cast: Cast) -> None:
    client = github(forge, cast.alice.token)
    team = client.get_organization("acme").create_team("payments")
    team.add_membership(client.get_user("bob"), "maintainer")
    team.add_membership(client.get_user("carol"))
    assert [u.login for u in team.get_members(role="maintainer")] == ["bob"]
    assert [u.login for u in team.get_members(role="member")] == ["carol"]
    assert team.get_team_membership("carol").role == "member"
    team.add_membership(client.get_user("carol"), "maintainer")
    assert sorted(u.login for u in team.get_members(role="maintainer")) == ["bob", "carol"]
    team.remove_membership(client.get_user("bob"))
    assert [u.login for u in team.get_members()] == ["carol"]


def test_a_person_added_to_a_team_joins_the_organization(forge: Sandbox, cast: Cast) -> None:
    forge.create_repo("acme", "handbook", private=True)
    with pytest.raises(GithubException) as hidden:
        github(forge, cast.carol.token).get_repo("acme/handbook")
    assert hidden.value.status == 404
    client = github(forge, cast.alice.token)
    client.get_organization("acme").create_team("readers").add_membership(client.get_user("carol"))
    assert github(forge, cast.carol.token).get_repo("acme/handbook").name == "handbook"  # as a member, she reads


def test_a_team_is_managed_by_its_slug_as_by_its_id(forge: Sandbox, cast: Cast) -> None:
    forge.create_team("acme", "payments")
    requester = github(forge, cast.alice.token).requester
    team = f"{forge.api_url}/orgs/acme/teams/payments"
    _, edited = requester.requestJsonAndCheck("PATCH", team, input={"description": "Card payments"})
    assert edited["description"] == "Card payments"
    _, membership = requester.requestJsonAndCheck("PUT", f"{team}/memberships/bob", input={"role": "maintainer"})
    assert (membership["role"], membership["state"]) == ("maintainer", "active")
    _, read = requester.requestJsonAndCheck("GET", f"{team}/memberships/bob")
    assert read["role"] == "maintainer"
    _, members = requester.requestJsonAndCheck("GET", f"{team}/members", parameters={"role": "maintainer"})
    assert [m["login"] for m in members] == ["bob"]
    requester.requestJsonAndCheck("DELETE", f"{team}/memberships/bob")
    with pytest.raises(GithubException) as gone:
        requester.requestJsonAndCheck("GET", f"{team}/memberships/bob")
    assert gone.value.status == 404
    requester.requestJsonAndCheck("DELETE", team)
    assert [t.slug for t in github(forge, cast.alice.token).get_organization("acme").get_teams()] == []


def test_only_owners_and_team_maintainers_manage_members(forge: Sandbox, cast: Cast) -> None:
    forge.create_team("acme", "payments", maintainers=["bob"])
    as_bob = github(forge, cast.bob.token)
    team = as_bob.get_organization("acme").get_team_by_slug("payments")
    team.add_membership(as_bob.get_user("carol"))
    forge.create_team("acme", "growth")
    other = as_bob.get_organization("acme").get_team_by_slug("growth")
    with pytest.raises(GithubException) as refused:
        other.add_membership(as_bob.get_user("carol"))
    assert refused.value.status == 403


def test_a_deleted_team_loses_its_repository_roles(forge: Sandbox, cast: Cast) -> None:
    forge.create_team("acme", "payments", members=["carol"], repos={"platform": "push"})
    client = github(forge, cast.alice.token)
    assert client.get_repo("acme/platform").get_collaborator_permission("carol") == "write"
    client.get_organization("acme").get_team_by_slug("payments").delete()
    assert [t.slug for t in client.get_repo("acme/platform").get_teams()] == []
    assert client.get_repo("acme/platform").get_collaborator_permission("carol") == "read"


def _policies_url(forge: Sandbox, environment: str) -> str:
    return f"{forge.api_url}/repos/acme/platform/environments/{environment}/deployment-branch-policies"


def _custom_branches(forge: Sandbox, cast: Cast, environment: str) -> None:
    from github.EnvironmentDeploymentBranchPolicy import EnvironmentDeploymentBranchPolicyParams

    github(forge, cast.alice.token).get_repo("acme/platform").create_environment(
        environment, deployment_branch_policy=EnvironmentDeploymentBranchPolicyParams(custom_branch_policies=True))


def test_an_environment_deploys_from_the_branch_patterns_it_lists(forge: Sandbox, cast: Cast) -> None:
    _custom_branches(forge, cast, "production")
    requester = github(forge, cast.alice.token).requester
    url = _policies_url(forge, "production")
    _, created = requester.requestJsonAndCheck("POST", url, input={"name": "release/*", "type": "branch"})
    requester.requestJsonAndCheck("POST", url, input={"name": "main"})
    _, listed = requester.requestJsonAndCheck("GET", url)
    assert [(p["name"], p["type"]) for p in listed["branch_policies"]] == [("release/*", "branch"), ("main", "branch")]
    _, one = requester.requestJsonAndCheck("GET", f"{url}/{created['id']}")
    assert one["name"] == "release/*"
    requester.requestJsonAndCheck("DELETE", f"{url}/{created['id']}")
    _, listed = requester.requestJsonAndCheck("GET", url)
    assert [p["name"] for p in listed["branch_policies"]] == ["main"]


def test_a_pattern_listed_twice_redirects_to_the_first(forge: Sandbox, cast: Cast) -> None:
    _custom_branches(forge, cast, "production")
    headers = {"Authorization": f"token {cast.alice.token}"}
    first = requests.post(_policies_url(forge, "production"), json={"name": "main"}, headers=headers, timeout=10)
    again = requests.post(_policies_url(forge, "production"), json={"name": "main"}, headers=headers, timeout=10,
                          allow_redirects=False)
    assert again.status_code == 303
    assert again.headers["Location"].endswith(f"/deployment-branch-policies/{first.json()['id']}")


def test_patterns_need_custom_branch_policies_and_go_with_them(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.create_environment("staging")
    requester = github(forge, cast.alice.token).requester
    with pytest.raises(GithubException) as refused:
        requester.requestJsonAndCheck("POST", _policies_url(forge, "staging"), input={"name": "main"})
    assert refused.value.status == 422
    _custom_branches(forge, cast, "staging")
    requester.requestJsonAndCheck("POST", _policies_url(forge, "staging"), input={"name": "main"})
    repo.create_environment("staging")  # no deployment_branch_policy: any branch may deploy again
    _, listed = requester.requestJsonAndCheck("GET", _policies_url(forge, "staging"))
    assert listed["total_count"] == 0
