"""The GitHub provider makes merged requests real on the sandbox forge, over real HTTP and git.

Each test applies requests as they would be after a merge (the templates come from acme's platform
repo at its merged commit) and then looks at the organization the way a person would: the team, the
new repository's files and settings, the grants and the deployment environments.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from github import Auth, Github, GithubException
from github.OrganizationCustomProperty import CustomProperty

from bot.model import Resource
from bot.provider import Result, Target
from bot.providers.github.environments import ObservedEnvironment
from bot.providers.github.provider import GitHubProvider
from bot.sandbox.recording import Exchange, watch
from tests.conftest import Provisioner, World


def request(text: str) -> Resource:
    data = yaml.safe_load(textwrap.dedent(text))
    return Resource(data["kind"], data["metadata"]["name"], data["metadata"]["owner"], "catalog/request.yaml", 0, 1,
                    {"apiVersion": "paved/v1", **data})


def from_catalogue(target: Target, path: str, name: str) -> Resource:
    """A request of acme's bundled catalogue, as merged."""
    for number, data in enumerate(yaml.safe_load_all(target.tree.read(path))):
        if data["metadata"]["name"] == name:
            return Resource(data["kind"], name, data["metadata"]["owner"], path, number, 1, data)
    raise KeyError(name)


PAYMENTS = """
kind: Team
metadata: {name: payments, owner: payments, description: Takes card payments.}
spec:
  members: [alice, bob, carol]
  maintainers: [alice]
  budget: {monthly: 500}
"""

SEARCH = """
kind: Service
metadata: {name: search, owner: payments, description: Finds products in the shop's catalogue.}
spec:
  template: {name: fastapi-service, parameters: {port: "8080"}}
  repository: {visibility: private}
  tier: production
  lifecycle: production
"""


def search(**changes: Any) -> Resource:
    """The `search` service request, with `changes` to its spec (`visibility=...`, `port=...`)."""
    resource = request(SEARCH)
    if "visibility" in changes:
        resource.spec["repository"]["visibility"] = changes["visibility"]
    if "port" in changes:
        resource.spec["template"]["parameters"]["port"] = changes["port"]
    return resource


@pytest.fixture
def provider(provisioner: Provisioner) -> GitHubProvider:
    return GitHubProvider(provisioner.client, provisioner.token)


@pytest.fixture
def target(provisioner: Provisioner) -> Target:
    return provisioner.target


@pytest.fixture
def payments(provider: GitHubProvider, target: Target) -> Resource:
    """The payments team, applied."""
    team = request(PAYMENTS)
    assert provider.apply(team, target).status == "applied"
    return team


@pytest.fixture
def search_service(provider: GitHubProvider, target: Target, payments: Resource) -> Resource:
    """The search service, applied: acme/search exists, made from its template."""
    service = search()
    assert provider.apply(service, target).status == "applied"
    return service


def as_alice(world: World) -> Github:
    """PyGithub as alice, who owns acme, to look at what the provider made."""
    return Github(base_url=world.forge.api_url, auth=Auth.Token(world.forge.create_token("alice")), retry=None,
                  seconds_between_requests=None, seconds_between_writes=None)


@contextmanager
def requests_made() -> Iterator[list[Exchange]]:
    """Every REST request the forge answers while the block runs."""
    seen: list[Exchange] = []
    stop = watch(seen.append)
    try:
        yield seen
    finally:
        stop()


def file(world: World, repo: str, path: str) -> str:
    return world.forge.read_file("acme", repo, path).decode()


# -- teams --------------------------------------------------------------------------------------------------

def test_a_team_is_created_with_its_description_and_people(provider: GitHubProvider, target: Target,
                                                           world: World) -> None:
    result = provider.apply(from_catalogue(target, "catalog/teams/payments.yaml", "payments"), target)
    assert result.status == "applied"
    team = as_alice(world).get_organization("acme").get_team_by_slug("payments")
    assert team.description.startswith("Takes card payments for the web shop")
    assert sorted(u.login for u in team.get_members(role="maintainer")) == ["alice", "bob"]
    assert [u.login for u in team.get_members(role="member")] == ["carol"]
    assert result.outputs["team"].endswith("/orgs/acme/teams/payments")


def test_a_team_follows_its_request_when_people_come_and_go(provider: GitHubProvider, target: Target,
                                                            world: World, payments: Resource) -> None:
    changed = request(PAYMENTS.replace("members: [alice, bob, carol]", "members: [alice, bob, dave]")
                      .replace("maintainers: [alice]", "maintainers: [alice, bob]"))
    steps = [s.description for s in provider.apply(changed, target).steps]
    assert steps == ["make bob a maintainer of team payments", "add dave to team payments as member",
                     "remove carol from team payments"]
    team = as_alice(world).get_organization("acme").get_team_by_slug("payments")
    assert sorted(u.login for u in team.get_members()) == ["alice", "bob", "dave"]


def test_a_team_naming_someone_github_does_not_know_fails_and_says_who(provider: GitHubProvider,
                                                                       target: Target) -> None:
    result = provider.apply(from_catalogue(target, "catalog/teams/data.yaml", "data"), target)
    assert result.status == "failed"
    assert result.message == "GitHub has no user dana (named in Team/data)"
    assert [s.description for s in result.steps] == ["create team data in acme"]


# -- services -----------------------------------------------------------------------------------------------

def test_a_service_is_created_from_its_template_with_its_name_rendered_in(world: World,
                                                                         search_service: Resource) -> None:
    assert file(world, "search", "README.md").startswith("# search\n\nFinds products in the shop's catalogue.")
    assert "from search.main import" in file(world, "search", "tests/test_app.py")
    assert "pytest" in file(world, "search", ".github/workflows/ci.yml")
    entry = yaml.safe_load(file(world, "search", "catalog-entry.yaml"))
    assert (entry["metadata"]["name"], entry["spec"]["template"]["parameters"]["port"]) == ("search", "8080")


def test_the_new_repositorys_codeowners_names_the_owning_team(world: World, search_service: Resource) -> None:
    assert "* @acme/payments" in file(world, "search", "CODEOWNERS").splitlines()


def test_the_first_commit_names_the_platform_revision_and_the_request(world: World, target: Target,
                                                                      search_service: Resource) -> None:
    commit = as_alice(world).get_repo("acme/search").get_commits()[0].commit
    assert commit.author.name == "Paved"
    assert target.revision in commit.message
    assert "Service/search" in commit.message and "acme/platform" in commit.message


def test_the_new_repository_is_private_and_maintained_by_its_owning_team(world: World,
                                                                         search_service: Resource) -> None:
    repo = as_alice(world).get_repo("acme/search")
    assert (repo.visibility, repo.description) == ("private", "Finds products in the shop's catalogue.")
    assert {t.slug: t.permission for t in repo.get_teams()} == {"payments": "maintain"}


def test_the_default_branch_needs_an_approving_review_and_the_code_owners(world: World,
                                                                         search_service: Resource) -> None:
    reviews = as_alice(world).get_repo("acme/search").get_branch("main").get_protection() \
        .required_pull_request_reviews
    assert (reviews.required_approving_review_count, reviews.require_code_owner_reviews) == (1, True)


def test_a_new_service_is_planned_step_by_step(provider: GitHubProvider, target: Target, payments: Resource) -> None:
    service = search()
    steps = provider.plan(service, provider.observe(service, target), target)
    assert [(s.verb, s.description) for s in steps] == [
        ("create", "create repository acme/search (private) from template fastapi-service"),
        ("create", "give team payments maintain on acme/search"),
        ("create", "protect branch main of acme/search: 1 approving review, code owners must approve"),
    ]


def test_a_second_apply_is_unchanged_and_writes_nothing(provider: GitHubProvider, target: Target,
                                                        search_service: Resource) -> None:
    assert provider.plan(search_service, provider.observe(search_service, target), target) == []
    with requests_made() as seen:
        result = provider.apply(search_service, target)
    assert (result.status, result.steps) == ("unchanged", ())
    assert seen and {e.method for e in seen} == {"GET"}
    assert result.outputs["repository"].endswith("/acme/search")


def test_a_visibility_change_is_an_update(provider: GitHubProvider, target: Target, world: World,
                                          search_service: Resource) -> None:
    result = provider.apply(search(visibility="internal"), target)
    assert [(s.verb, s.description) for s in result.steps] == [
        ("update", "change the visibility of acme/search from private to internal")]
    assert as_alice(world).get_repo("acme/search").visibility == "internal"


def test_a_service_handed_to_another_team_is_maintained_by_that_team_alone(
        provider: GitHubProvider, target: Target, world: World, search_service: Resource) -> None:
    world.forge.create_team("acme", "growth")
    handed = request(SEARCH.replace("owner: payments", "owner: growth"))
    result = provider.apply(handed, target, previous=search_service)
    assert [s.description for s in result.steps] == ["give team growth maintain on acme/search",
                                                     "remove team payments from acme/search (it no longer owns it)"]
    assert {t.slug: t.permission for t in as_alice(world).get_repo("acme/search").get_teams()} == {
        "growth": "maintain"}


def test_a_template_hook_refusing_the_parameters_is_a_failed_result_with_a_message(
        provider: GitHubProvider, target: Target, world: World, payments: Resource) -> None:
    result = provider.apply(search(port="99999"), target)
    assert result.status == "failed"
    assert result.message == ("template fastapi-service refused Service/search: Hook script failed (exit status: 1); "
                              "check spec.template.parameters")
    assert result.steps == ()
    assert [r.name for r in as_alice(world).get_organization("acme").get_repos()] == ["platform"]


def test_a_service_whose_owning_team_is_missing_fails_and_says_so(provider: GitHubProvider, target: Target) -> None:
    result = provider.apply(search(), target)
    assert result.status == "failed"
    assert result.message == "GitHub has no team payments in acme (apply Team/payments first)"
    assert [s.description for s in result.steps] == [
        "create repository acme/search (private) from template fastapi-service"]


def test_a_service_deleted_from_the_catalogue_archives_its_repository(provider: GitHubProvider, target: Target,
                                                                     world: World, search_service: Resource) -> None:
    steps = provider.plan(None, provider.observe(search_service, target), target, previous=search_service)
    assert [(s.verb, s.destructive) for s in steps] == [("delete", True)]
    result = provider.apply(None, target, previous=search_service)
    assert result.status == "applied"
    repo = as_alice(world).get_repo("acme/search")
    assert repo.archived
    assert file(world, "search", "README.md").startswith("# search")
    assert provider.apply(None, target, previous=search_service).status == "unchanged"


def test_an_archived_service_asked_for_again_is_unarchived(provider: GitHubProvider, target: Target, world: World,
                                                          search_service: Resource) -> None:
    provider.apply(None, target, previous=search_service)
    result = provider.apply(search_service, target)
    assert [s.description for s in result.steps] == ["unarchive repository acme/search"]
    assert not as_alice(world).get_repo("acme/search").archived


# -- renames --------------------------------------------------------------------------------------------------

def finder() -> Resource:
    """The `search` service request renamed `finder`, all else the same (what the plan takes for a rename)."""
    return request(SEARCH.replace("{name: search,", "{name: finder,"))


RENAME = "rename repository acme/search to acme/finder"


def test_a_renamed_service_renames_its_repository_keeping_its_id_and_history(
        provider: GitHubProvider, target: Target, world: World, search_service: Resource) -> None:
    before = as_alice(world).get_repo("acme/search")
    head = before.get_branch("main").commit.sha
    planned = provider.plan(finder(), provider.observe(finder(), target), target, previous=search_service)
    assert [s.description.startswith(RENAME) for s in planned] == [True]
    result = provider.apply(finder(), target, previous=search_service)
    assert (result.status, [s.description.startswith(RENAME) for s in result.steps]) == ("applied", [True])
    after = as_alice(world).get_repo("acme/finder")
    assert (after.id, after.get_branch("main").commit.sha) == (before.id, head)
    assert result.outputs["repository"] == after.html_url
    assert as_alice(world).get_repo("acme/search").full_name == "acme/finder"  # GitHub redirects the old address


def test_a_rename_interrupted_after_the_repository_moved_is_finished_by_the_next_apply(
        provider: GitHubProvider, target: Target, world: World, search_service: Resource) -> None:
    repo = as_alice(world).get_repo("acme/search")
    repo.edit(name="finder")  # the step ran; the process died before the next one
    as_alice(world).get_organization("acme").get_team_by_slug("payments").remove_from_repos(repo)
    result = provider.apply(finder(), target, previous=search_service)
    assert [s.description for s in result.steps] == ["give team payments maintain on acme/finder"]
    assert [t.slug for t in as_alice(world).get_repo("acme/finder").get_teams()] == ["payments"]


def test_a_rename_whose_old_repository_is_gone_creates_the_new_one_and_says_so(
        provider: GitHubProvider, target: Target, world: World, payments: Resource) -> None:
    result = provider.apply(finder(), target, previous=search())
    assert result.status == "applied"
    assert result.steps[0].description == ("create repository acme/finder (private) from template fastapi-service "
                                           "(acme/search, the repository of its old name, is gone: nothing to "
                                           "rename)")
    assert file(world, "finder", "README.md").startswith("# finder")


def test_a_repository_paved_did_not_create_is_never_renamed(
        provider: GitHubProvider, target: Target, world: World, payments: Resource) -> None:
    unmanaged_search(world)
    result = provider.apply(finder(), target, previous=search())
    assert result.status == "applied"
    assert result.steps[0].description.endswith("(acme/search exists without Paved's mark, so Paved does not "
                                                 "rename it)")
    hand_made, made = as_alice(world).get_repo("acme/search"), as_alice(world).get_repo("acme/finder")
    assert (hand_made.full_name, hand_made.description) == ("acme/search", "Hand-made search.")
    assert made.id != hand_made.id


def test_a_service_asked_for_under_a_renamed_repositorys_old_name_gets_a_repository_of_its_own(
        provider: GitHubProvider, target: Target, world: World, search_service: Resource) -> None:
    provider.apply(finder(), target, previous=search_service)
    result = provider.apply(search(), target)
    assert result.steps[0].verb == "create"
    assert as_alice(world).get_repo("acme/search").id != as_alice(world).get_repo("acme/finder").id


# -- access -------------------------------------------------------------------------------------------------

DATA_READS_SEARCH = """
kind: Access
metadata: {name: data-reads-search, owner: payments, description: Data reads search's models.}
spec: {team: data, service: search, permission: pull}
"""


@pytest.fixture
def data_team(world: World) -> None:
    world.forge.create_team("acme", "data", members=["dave"])


def test_access_grants_the_team_its_permission(provider: GitHubProvider, target: Target, world: World,
                                               search_service: Resource, data_team: None) -> None:
    result = provider.apply(request(DATA_READS_SEARCH), target)
    assert [s.description for s in result.steps] == ["grant team data pull on acme/search"]
    assert {t.slug: t.permission for t in as_alice(world).get_repo("acme/search").get_teams()} == {
        "payments": "maintain", "data": "pull"}


def test_a_changed_permission_is_an_update(provider: GitHubProvider, target: Target, search_service: Resource,
                                           data_team: None) -> None:
    provider.apply(request(DATA_READS_SEARCH), target)
    result = provider.apply(request(DATA_READS_SEARCH.replace("pull", "push")), target)
    assert [(s.verb, s.description) for s in result.steps] == [
        ("update", "change team data's permission on acme/search from pull to push")]


def test_access_deleted_from_the_catalogue_is_removed(provider: GitHubProvider, target: Target, world: World,
                                                      search_service: Resource, data_team: None) -> None:
    grant = request(DATA_READS_SEARCH)
    provider.apply(grant, target)
    result = provider.apply(None, target, previous=grant)
    assert [(s.verb, s.description) for s in result.steps] == [
        ("delete", "remove team data's pull access to acme/search")]
    assert [t.slug for t in as_alice(world).get_repo("acme/search").get_teams()] == ["payments"]


def test_access_moved_to_another_team_leaves_the_first_team_without_it(
        provider: GitHubProvider, target: Target, world: World, search_service: Resource, data_team: None) -> None:
    world.forge.create_team("acme", "growth")
    grant = request(DATA_READS_SEARCH)
    provider.apply(grant, target)
    moved = request(DATA_READS_SEARCH.replace("team: data", "team: growth"))
    result = provider.apply(moved, target, previous=grant)
    assert [s.description for s in result.steps] == ["remove team data's pull access to acme/search",
                                                     "grant team growth pull on acme/search"]
    assert {t.slug for t in as_alice(world).get_repo("acme/search").get_teams()} == {"payments", "growth"}


# -- environments -------------------------------------------------------------------------------------------

PRODUCTION = """
kind: Environment
metadata: {name: search-production, owner: payments, description: Production deployments of search.}
spec:
  service: search
  name: production
  requiredReviewers: [payments]
  waitTimer: 10
  deploymentBranches: [main, "release/*"]
"""


def test_an_environment_has_its_reviewers_wait_timer_and_branches(provider: GitHubProvider, target: Target,
                                                                  world: World, search_service: Resource) -> None:
    result = provider.apply(request(PRODUCTION), target)
    assert [s.description for s in result.steps] == [
        "create environment production in acme/search (wait 10 min, reviewers: payments, "
        "deployment branches: main, release/*)"]
    env = as_alice(world).get_repo("acme/search").get_environment("production")
    rules = {rule.type: rule for rule in env.protection_rules}
    assert rules["wait_timer"].wait_timer == 10
    assert [r.reviewer.slug for r in rules["required_reviewers"].reviewers] == ["payments"]
    assert env.deployment_branch_policy.custom_branch_policies
    _, policies = as_alice(world).requester.requestJsonAndCheck(
        "GET", f"{world.forge.api_url}/repos/acme/search/environments/production/deployment-branch-policies")
    assert sorted(p["name"] for p in policies["branch_policies"]) == ["main", "release/*"]
    assert result.outputs["environment"] == env.html_url
    assert provider.apply(request(PRODUCTION), target).status == "unchanged"


def test_an_environment_changes_with_its_request(provider: GitHubProvider, target: Target,
                                                 search_service: Resource) -> None:
    provider.apply(request(PRODUCTION), target)
    relaxed = request(PRODUCTION.replace("waitTimer: 10", "waitTimer: 0").replace(', "release/*"', ""))
    result = provider.apply(relaxed, target)
    assert [s.description for s in result.steps] == [
        "update environment production in acme/search: wait timer 10 → 0 min; "
        "deployment branches main, release/* → main"]
    observed = provider.observe(relaxed, target)
    assert isinstance(observed, ObservedEnvironment) and observed.branches == ("main",)


def test_an_environment_deleted_from_the_catalogue_is_deleted(provider: GitHubProvider, target: Target,
                                                              world: World, search_service: Resource) -> None:
    production = request(PRODUCTION)
    provider.apply(production, target)
    result = provider.apply(None, target, previous=production)
    assert [(s.verb, s.destructive) for s in result.steps] == [("delete", True)]
    assert [e.name for e in as_alice(world).get_repo("acme/search").get_environments()] == []


# -- credentials --------------------------------------------------------------------------------------------

def test_no_token_appears_in_any_error_message(provisioner: Provisioner, target: Target, world: World,
                                               payments: Resource) -> None:
    # A real installation token that may not push: git fails after the repository is created.
    read_only = world.forge.installation_token(provisioner.installation_id, permissions={"metadata": "read"})
    provider = GitHubProvider(provisioner.client, lambda: read_only)
    failures: list[Result] = [
        provider.apply(search(), target),
        provider.apply(search(port="0"), target),
        provider.apply(request(DATA_READS_SEARCH), target),
        provider.apply(from_catalogue(target, "catalog/teams/data.yaml", "data"), target),
    ]
    assert [r.status for r in failures] == ["failed"] * 4
    assert failures[0].message.startswith("git could not push the first commit of acme/search: ")
    secrets = [read_only, provisioner.token()]
    for result in failures:
        shown = " ".join([result.message, *(s.description for s in result.steps), *result.outputs.values()])
        assert not any(secret in shown for secret in secrets), shown
        assert "ghs_" not in shown and "Authorization" not in shown


# -- only what Paved made -------------------------------------------------------------------------------------

def unmanaged_search(world: World) -> None:
    """acme/search made by hand by alice (an owner), as it would be before anyone asked Paved for it."""
    world.forge.create_repo("acme", "search", private=True, description="Hand-made search.", by="alice",
                            auto_init=True)


REFUSED_REPO = "Paved will not touch repository acme/search: it exists and Paved did not create it " \
               "(no paved-managed mark)"


def test_a_repository_paved_creates_is_marked_from_its_creation(world: World, search_service: Resource) -> None:
    assert as_alice(world).get_repo("acme/search").custom_properties == {"paved-managed": "true"}
    mark = as_alice(world).get_organization("acme").get_custom_property("paved-managed")
    assert (mark.value_type, mark.values_editable_by) == ("true_false", "org_actors")


def test_a_team_paved_creates_is_marked_in_its_description_and_the_mark_is_kept(
        provider: GitHubProvider, target: Target, world: World, payments: Resource) -> None:
    team = as_alice(world).get_organization("acme").get_team_by_slug("payments")
    assert team.description == "Takes card payments. [paved-managed]"
    assert provider.plan(payments, provider.observe(payments, target), target) == []
    reworded = request(PAYMENTS.replace("Takes card payments.", "Takes card payments and refunds."))
    result = provider.apply(reworded, target)
    assert [s.description for s in result.steps] == ["update the description of team payments"]
    team = as_alice(world).get_organization("acme").get_team_by_slug("payments")
    assert team.description == "Takes card payments and refunds. [paved-managed]"


def test_a_repository_paved_did_not_create_is_not_archived_and_the_plan_says_why(
        provider: GitHubProvider, target: Target, world: World, payments: Resource) -> None:
    unmanaged_search(world)
    service = search()
    steps = provider.plan(None, provider.observe(service, target), target, previous=service)
    assert [(s.verb, s.description, s.destructive) for s in steps] == [("delete", REFUSED_REPO, False)]
    with requests_made() as seen:
        result = provider.apply(None, target, previous=service)
    assert (result.status, result.message, result.steps) == ("failed", REFUSED_REPO, ())
    assert {e.method for e in seen} == {"GET"}
    assert not as_alice(world).get_repo("acme/search").archived


def test_a_repository_paved_did_not_create_is_not_changed_to_match_a_request(
        provider: GitHubProvider, target: Target, world: World, payments: Resource) -> None:
    unmanaged_search(world)
    service = search(visibility="internal")
    assert [s.description for s in provider.plan(service, provider.observe(service, target), target)] == [
        REFUSED_REPO]
    with requests_made() as seen:
        result = provider.apply(service, target)
    assert (result.status, result.message, result.steps) == ("failed", REFUSED_REPO, ())
    assert {e.method for e in seen} == {"GET"}
    repo = as_alice(world).get_repo("acme/search")
    assert (repo.visibility, repo.description, repo.custom_properties) == ("private", "Hand-made search.", {})
    assert [t.slug for t in repo.get_teams()] == []
    assert not repo.get_branch("main").protected


def test_access_and_environments_leave_a_repository_paved_did_not_create_alone(
        provider: GitHubProvider, target: Target, world: World, payments: Resource, data_team: None) -> None:
    unmanaged_search(world)
    world.forge.add_team_repo("acme", "data", "search", "push")
    grant, production = request(DATA_READS_SEARCH), request(PRODUCTION)
    for resource, previous in ((grant, None), (production, None), (None, grant)):
        subject = resource or previous
        assert subject is not None
        observed = provider.observe(subject, target)
        assert [s.description for s in provider.plan(resource, observed, target, previous=previous)] == [
            REFUSED_REPO]
        result = provider.apply(resource, target, previous=previous)
        assert (result.status, result.message, result.steps) == ("failed", REFUSED_REPO, ())
    repo = as_alice(world).get_repo("acme/search")
    assert {t.slug: t.permission for t in repo.get_teams()} == {"data": "push"}
    assert [e.name for e in repo.get_environments()] == []


def test_a_team_paved_did_not_create_is_neither_deleted_nor_changed(provider: GitHubProvider, target: Target,
                                                                    world: World) -> None:
    world.forge.create_team("acme", "payments", members=["bob"], maintainers=["dave"],
                            description="Made by hand.")
    refused = ("Paved will not touch team acme/payments: it exists and Paved did not create it "
               "(no [paved-managed] mark at the end of its description)")
    team = request(PAYMENTS)
    for desired, previous in ((team, None), (None, team)):
        steps = provider.plan(desired, provider.observe(team, target), target, previous=previous)
        assert [s.description for s in steps] == [refused]
        result = provider.apply(desired, target, previous=previous)
        assert (result.status, result.message, result.steps) == ("failed", refused, ())
    found = as_alice(world).get_organization("acme").get_team_by_slug("payments")
    assert found.description == "Made by hand."
    assert sorted(u.login for u in found.get_members()) == ["bob", "dave"]


def test_a_maintainer_cannot_take_the_mark_off_a_repository_paved_made(world: World,
                                                                       search_service: Resource) -> None:
    world.forge.add_collaborator("acme", "search", "bob", "maintain")
    world.forge.add_collaborator("acme", "search", "carol", "admin")
    for login in ("bob", "carol"):
        repo = Github(base_url=world.forge.api_url, auth=Auth.Token(world.forge.create_token(login)), retry=None,
                      seconds_between_requests=None, seconds_between_writes=None).get_repo("acme/search")
        with pytest.raises(GithubException) as refused:
            repo.update_custom_properties({"paved-managed": None})
        assert refused.value.status == 403
    assert as_alice(world).get_repo("acme/search").custom_properties == {"paved-managed": "true"}


def test_an_owner_hands_an_existing_repository_and_team_to_paved_by_marking_them(
        provider: GitHubProvider, target: Target, world: World) -> None:
    world.forge.create_team("acme", "payments", members=["bob"], description="Made by hand.")
    unmanaged_search(world)
    alice = as_alice(world)
    alice.get_organization("acme").get_team_by_slug("payments").edit("payments",
                                                                     description="Made by hand. [paved-managed]")
    assert provider.apply(request(PAYMENTS), target).status == "applied"
    assert sorted(u.login for u in alice.get_organization("acme").get_team_by_slug("payments").get_members()) == [
        "alice", "bob", "carol"]
    alice.get_organization("acme").create_custom_property(CustomProperty("paved-managed", "true_false"))
    alice.get_repo("acme/search").update_custom_properties({"paved-managed": "true"})
    result = provider.apply(search(), target)
    assert result.status == "applied", result.message
    assert [t.slug for t in alice.get_repo("acme/search").get_teams()] == ["payments"]
    assert provider.apply(None, target, previous=search()).status == "applied"
    assert alice.get_repo("acme/search").archived


def test_a_loosened_definition_of_the_mark_is_put_back_when_paved_next_creates_a_repository(
        provider: GitHubProvider, target: Target, world: World, payments: Resource) -> None:
    as_alice(world).get_organization("acme").create_custom_property(
        CustomProperty("paved-managed", "true_false", values_editable_by="org_and_repo_actors"))
    assert provider.apply(search(), target).status == "applied"
    mark = as_alice(world).get_organization("acme").get_custom_property("paved-managed")
    assert mark.values_editable_by == "org_actors"


def test_without_leave_to_define_its_mark_paved_creates_no_repository(provisioner: Provisioner, target: Target,
                                                                      world: World, payments: Resource) -> None:
    app = world.forge.create_app("acme", "paved-unmarked", permissions={
        "administration": "write", "members": "write", "contents": "write", "metadata": "read"})
    installation = world.forge.install_app(app.id, "acme")
    token = world.forge.installation_token(installation.id)
    client = Github(base_url=world.forge.api_url, auth=Auth.Token(token), retry=None,
                    seconds_between_requests=None, seconds_between_writes=None)
    result = GitHubProvider(client, lambda: token).apply(search(), target)
    assert result.status == "failed"
    assert result.message.startswith("GitHub refused to define the custom property paved-managed of acme, which "
                                     "marks the repositories Paved creates (Paved's App needs "
                                     "organization_custom_properties: admin)")
    assert [r.name for r in as_alice(world).get_organization("acme").get_repos()] == ["platform"]
