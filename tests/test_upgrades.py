"""Golden-path upgrades: a template change reaches a service repository Paved made as one pull request,
merged by git, over real HTTP to the sandbox forge, with the real renderer and real git.

Each test scaffolds a service from acme's platform repo as merged (the `worker` template), then changes
the template by a merged platform pull request (or the service's request), and asks Paved to upgrade the
service, then looks at the repository as its team would.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from github import Github

from bot.adapters.upgrade import TemplateHistory, Upgrading, upgrade_service
from bot.golden_paths import RECORD_PATH, UPGRADE_BRANCH, UPGRADE_LABEL, Following
from bot.model import Resource
from bot.provider import Result, Target
from bot.providers.github.provider import GitHubProvider
from tests.conftest import REPO, Provisioner, World
from tests.test_provider_github import as_alice, request, requests_made

TEAM = """
kind: Team
metadata: {name: payments, owner: payments, description: Takes card payments.}
spec: {members: [alice, bob], maintainers: [alice]}
"""
README = "templates/worker/{{cookiecutter.name}}/README.md"
RUN_IT = "## Run it"


def service(name: str = "finder", description: str = "Finds products.", **template: Any) -> Resource:
    return request(f"""
        kind: Service
        metadata: {{name: {name}, owner: payments, description: {json.dumps(description)}}}
        spec:
          template: {json.dumps({"name": "worker", "parameters": {}, **template})}
          tier: production
        """)


@pytest.fixture
def provider(provisioner: Provisioner) -> GitHubProvider:
    provider = GitHubProvider(provisioner.client, provisioner.token)
    assert provider.apply(request(TEAM), provisioner.target).status == "applied"
    return provider


@pytest.fixture
def finder(provider: GitHubProvider, provisioner: Provisioner) -> Resource:
    """acme/finder, scaffolded from the worker template as the platform repo first had it."""
    made = service()
    result = provider.apply(made, provisioner.target)
    assert result.status == "applied", result.message
    return made


def merge_platform_change(world: World, files: dict[str, str | None], *, title: str = "Workers say how to deploy",
                          body: str = "Adds a deployment section.", branch: str = "template") -> tuple[int, str]:
    """A platform pull request changing `files`, approved and merged: its number and merge commit."""
    world.forge.push_files("acme", "platform", branch, files, by="carol")
    number = world.forge.open_pull_request("acme", "platform", head=branch, title=title, by="carol",
                                           body=body).number
    world.forge.approve("acme", "platform", number, by="bob")
    return number, world.forge.merge("acme", "platform", number, by="alice")


def readme_change(world: World, old: str, new: str, **kwargs: Any) -> tuple[int, str]:
    text = world.forge.read_file("acme", "platform", README).decode()
    assert old in text
    return merge_platform_change(world, {README: text.replace(old, new, 1)}, **kwargs)


def head(world: World, provisioner: Provisioner) -> Target:
    """What an apply of the platform repo's head works with."""
    world.ctx.mirror.fetch(REPO, ["main"])
    revision = world.forge.branch_sha("acme", "platform", "main")
    assert revision is not None
    return replace(provisioner.target, tree=world.ctx.mirror.tree(REPO, revision), revision=revision)


def upgrade(world: World, target: Target, resource: Resource, reason: str = "template",
            follows: Following | None = None) -> Result:
    work = Upgrading(world.ctx.forge, world.ctx.mirror, TemplateHistory(world.ctx.forge, world.ctx.mirror, REPO))
    return upgrade_service(work, resource, follows or Following("worker", "auto", None), reason, target)


def pulls(world: World, repo: str = "finder", state: str = "open") -> list[Any]:
    return list(as_alice(world).get_repo(f"acme/{repo}").get_pulls(state=state))


def on_branch(world: World, path: str, repo: str = "finder", branch: str = UPGRADE_BRANCH) -> str:
    return world.forge.read_file("acme", repo, path, ref=branch).decode()


def team_edit(world: World, path: str, old: str, new: str, repo: str = "finder") -> None:
    """The team changes a file of its repository on the default branch."""
    text = world.forge.read_file("acme", repo, path).decode()
    assert old in text
    world.forge.push_files("acme", repo, "main", {path: text.replace(old, new, 1)}, by="alice")


# -- a template change --------------------------------------------------------------------------------------


def test_a_template_change_opens_a_labelled_pull_request_naming_the_platform_pull_request(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    number, merged = readme_change(world, RUN_IT, "## Deploy it\n\nPush to main.\n\n" + RUN_IT)

    result = upgrade(world, head(world, provisioner), finder)

    assert result.status == "applied", result.message
    [pr] = pulls(world)
    assert result.message == f"upgrade pull request #{pr.number} opened on acme/finder"
    assert (pr.title, pr.head.ref, pr.base.ref, pr.draft) == (
        "Upgrade to the latest worker golden path", UPGRADE_BRANCH, "main", False)
    assert [label.name for label in pr.labels] == [UPGRADE_LABEL]
    assert f"acme/platform#{number}: Workers say how to deploy" in pr.body
    assert "Adds a deployment section." in pr.body
    assert "- README.md" in pr.body and "- .paved/scaffold.json" not in pr.body
    assert "## Deploy it\n\nPush to main." in on_branch(world, "README.md")
    assert json.loads(on_branch(world, RECORD_PATH))["commit"] == merged


def test_the_teams_own_changes_stay_and_the_default_branch_is_not_written(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    team_edit(world, "README.md", "## Ownership", "## Who owns it")
    main_before = world.forge.branch_sha("acme", "finder", "main")
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)

    assert upgrade(world, head(world, provisioner), finder).status == "applied"

    readme = on_branch(world, "README.md")
    assert "## Who owns it" in readme and "## Deploy it" in readme
    assert world.forge.branch_sha("acme", "finder", "main") == main_before


def test_a_change_the_team_made_differently_is_a_draft_with_conflict_markers_that_says_so(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    team_edit(world, "README.md", RUN_IT, "## Running it locally")
    readme_change(world, RUN_IT, "## Run it on your machine")

    result = upgrade(world, head(world, provisioner), finder)

    [pr] = pulls(world)
    assert result.status == "applied"
    assert result.message.endswith(", a draft with conflicts in 1 file")
    assert pr.draft
    assert "could not be merged" in pr.body and "- README.md" in pr.body
    readme = on_branch(world, "README.md")
    assert "<<<<<<< main\n## Running it locally\n=======\n## Run it on your machine\n>>>>>>> golden-path/worker" \
        in readme


def test_upgrading_again_pushes_nothing_and_opens_no_second_pull_request(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)
    target = head(world, provisioner)
    first = upgrade(world, target, finder)
    branch = world.forge.branch_sha("acme", "finder", UPGRADE_BRANCH)

    with requests_made() as seen:
        again = upgrade(world, target, finder)

    assert again.status == "unchanged"
    assert again.message == first.message.replace("opened", "is up to date")
    assert world.forge.branch_sha("acme", "finder", UPGRADE_BRANCH) == branch
    assert len(pulls(world)) == 1
    assert [e for e in seen if e.method != "GET"] == []


def test_a_later_template_change_updates_the_open_pull_request(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    first, _ = readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)
    upgrade(world, head(world, provisioner), finder)
    second, _ = readme_change(world, "## Ownership", "## Owners", title="Shorter headings", branch="again")

    result = upgrade(world, head(world, provisioner), finder)

    [pr] = pulls(world)
    assert result.message == f"upgrade pull request #{pr.number} updated on acme/finder"
    assert f"acme/platform#{first}:" in pr.body and f"acme/platform#{second}: Shorter headings" in pr.body
    assert "## Owners" in on_branch(world, "README.md")


def test_a_repository_that_already_has_the_change_gets_none_and_the_stale_pull_request_is_closed(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)
    target = head(world, provisioner)
    upgrade(world, target, finder)
    team_edit(world, "README.md", RUN_IT, "## Deploy it\n\n" + RUN_IT)  # the team did it by hand

    result = upgrade(world, target, finder)

    assert result.status == "unchanged"
    assert "already has what the worker golden path changes; closed upgrade pull request #" in result.message
    assert pulls(world) == []
    [closed] = pulls(world, state="closed")
    assert "already has everything" in list(closed.get_issue_comments())[-1].body


# -- what is refused or skipped -----------------------------------------------------------------------------


def test_a_deleted_repository_is_skipped_with_the_reason(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)
    as_alice(world).get_repo("acme/finder").delete()

    result = upgrade(world, head(world, provisioner), finder)

    assert (result.status, result.message) == (
        "skipped", "upgrade skipped: GitHub has no repository acme/finder (it was deleted)")


def test_a_repository_without_a_record_is_skipped_with_the_reason(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    world.forge.push_files("acme", "finder", "main", {RECORD_PATH: None}, by="alice")
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)

    result = upgrade(world, head(world, provisioner), finder)

    assert result.status == "skipped"
    assert result.message.startswith(f"upgrade skipped: acme/finder has no {RECORD_PATH} on main")


def record_saying(world: World, **changes: Any) -> None:
    """The team rewrites the record of acme/finder."""
    record = json.loads(world.forge.read_file("acme", "finder", RECORD_PATH))
    answers = changes.pop("answers", {})
    record.update(changes)
    record["answers"].update(answers)
    world.forge.push_files("acme", "finder", "main", {RECORD_PATH: json.dumps(record)}, by="alice")


def test_a_record_naming_a_commit_the_platform_repo_never_merged_is_refused(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    hooks = "templates/worker/hooks/pre_gen_project.py"
    unmerged = world.forge.push_files("acme", "platform", "evil", {hooks: "raise SystemExit(3)\n"}, by="carol")
    world.ctx.mirror.fetch(REPO, ["evil"])
    record_saying(world, commit=unmerged)
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)

    result = upgrade(world, head(world, provisioner), finder)

    assert result.status == "skipped"
    assert f"names commit {unmerged[:12]}, which acme/platform never merged" in result.message
    assert pulls(world) == []


def test_private_answers_in_the_record_are_never_used(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    # Taken, these would leave every file unrendered in the base (so every file would conflict), and
    # make cookiecutter import a module of the attacker's choosing.
    record_saying(world, answers={"_copy_without_render": ["*"], "_extensions": ["evil.module"],
                                  "__package": "../../elsewhere"})
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)

    result = upgrade(world, head(world, provisioner), finder)

    assert result.status == "applied", result.message
    assert "conflicts" not in result.message
    [pr] = pulls(world)
    assert not pr.draft


def test_a_record_whose_answers_the_template_does_not_take_is_skipped(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    record_saying(world, answers={"python_version": "2.7"})
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)

    result = upgrade(world, head(world, provisioner), finder)

    assert result.status == "failed"
    assert "parameter `python_version` must be one of 3.12, 3.11, 3.13" in result.message


# -- a request change ---------------------------------------------------------------------------------------


def test_a_request_that_changes_its_answers_gets_an_upgrade_pull_request(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    target = head(world, provisioner)
    changed = service(description="Finds products, and their prices.")

    result = upgrade(world, target, changed, reason="answers")

    assert result.status == "applied", result.message
    [pr] = pulls(world)
    assert "The request `Service/finder` changed what the golden path is rendered with" in pr.body
    assert "Finds products, and their prices." in on_branch(world, "README.md")
    assert json.loads(on_branch(world, RECORD_PATH))["answers"]["description"] == "Finds products, and their prices."


def test_a_pinned_service_is_rendered_at_its_pin(world: World, provisioner: Provisioner, finder: Resource) -> None:
    pin = provisioner.target.revision
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT)
    changed = service(description="Finds products, and their prices.", pin=pin)

    result = upgrade(world, head(world, provisioner), changed, reason="answers",
                     follows=Following("worker", "auto", pin))

    assert result.status == "applied", result.message
    readme = on_branch(world, "README.md")
    assert "Finds products, and their prices." in readme and "## Deploy it" not in readme
    assert json.loads(on_branch(world, RECORD_PATH))["commit"] == pin


def test_hostile_text_of_a_platform_pull_request_is_quoted(
        world: World, provisioner: Provisioner, finder: Resource) -> None:
    hostile = "Hi @alice, see #1\n````\n</details><img src=x onerror=alert(1)>\n@acme/payments"
    readme_change(world, RUN_IT, "## Deploy it\n\n" + RUN_IT, title="Ping @bob <b>now</b>", body=hostile)

    upgrade(world, head(world, provisioner), finder)

    [pr] = pulls(world)
    assert "@bob" not in pr.body and "<b>" not in pr.body
    quoted = pr.body.split("`````text\n", 1)[1].split("\n`````", 1)[0]
    assert quoted == hostile.replace("\r", "")


def github(world: World) -> Github:
    return as_alice(world)
