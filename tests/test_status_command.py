"""`/paved status SERVICE` on a platform repo's pull request, end to end on the sandbox forge: where a service of
the catalogue is deployed, asked by anyone who may comment, and answered without letting what GitHub holds
(logins, descriptions, workflow names, URLs) do anything but show."""

from __future__ import annotations

import re

import pytest

from bot.deployments import Deployment, EnvironmentStatus, LatestRun, ServiceStatus
from bot.handlers.issue_comment import on_comment
from bot.render.markdown import service_status
from tests.conftest import World

# The bundled catalogue's payments-api has a staging and a production environment.
SERVICE = "payments-api"


def open_pr(world: World) -> int:
    world.forge.create_branch("acme", "platform", "docs", by="carol")
    world.forge.push_files("acme", "platform", "docs", {"NOTES.md": "notes\n"}, by="carol")
    return world.forge.open_pull_request("acme", "platform", head="docs", title="Notes", by="carol").number


def ask(world: World, number: int, body: str, by: str = "erin") -> str:
    world.forge.comment("acme", "platform", number, body, by=by)
    on_comment(world.ctx, world.delivered("issue_comment", "created"), bot_login=world.bot_login)
    return world.comments(number)[-1]


def paveds_repository(world: World, name: str = SERVICE) -> None:
    """The service's repository as Paved creates it: carrying the paved-managed mark."""
    world.forge.define_property("acme", "paved-managed", "true_false", by="alice")
    world.forge.create_repo("acme", name, private=True, by="alice", custom_properties={"paved-managed": "true"})
    world.forge.push_files("acme", name, "main", {"README.md": f"# {name}\n"}, by="alice")
    world.forge.add_collaborator("acme", name, "bob", "write")


def test_a_reader_hears_where_each_environment_of_a_service_stands(world: World) -> None:
    paveds_repository(world)
    world.forge.deploy("acme", SERVICE, "staging", by="bob", log_url="https://ci.example/runs/1")
    world.forge.record_workflow_run("acme", SERVICE, by="bob")
    answer = ask(world, open_pr(world), f"/paved status {SERVICE}")
    assert f"**Deployment status of `{SERVICE}`**" in answer
    assert "| `production` | ➖ never deployed |" in answer
    staging = r"\| `staging` \| ✅ deployed \| `[0-9a-f]{7}` \| bob \| .* UTC \| \[log\]\(https://ci\.example/runs/1\)"
    assert re.search(staging, answer), answer
    assert "**Latest run of `main`:** CI — ✅ success, started by bob" in answer


def test_a_name_the_catalogue_has_no_service_of_is_answered_with_the_closest_names(world: World) -> None:
    answer = ask(world, open_pr(world), "/paved status payment-api")
    assert answer.startswith("There is no service “payment-api” in the catalogue at `main`. Did you mean "
                             "`payments-api`")


def test_an_unknown_name_is_repeated_neutralised(world: World) -> None:
    answer = ask(world, open_pr(world), "/paved status @acme/everyone<b>")
    assert answer.startswith("There is no service “@&#8203;acme/everyone\\<b\\>”")
    assert not re.search(r"@[A-Za-z0-9]", answer) and "<b>" not in answer


def test_a_service_whose_repository_is_not_made_yet_says_so(world: World) -> None:
    answer = ask(world, open_pr(world), f"/paved status {SERVICE}")
    assert answer.startswith(f"`{SERVICE}` has no repository `acme/{SERVICE}` yet")


def test_a_repository_paved_did_not_create_is_not_read(world: World) -> None:
    world.forge.create_repo("acme", SERVICE, by="alice")
    world.forge.push_files("acme", SERVICE, "main", {"README.md": "not paved's\n"}, by="alice")
    world.forge.deploy("acme", SERVICE, "staging", by="alice")
    answer = ask(world, open_pr(world), f"/paved status {SERVICE}")
    assert answer.startswith(f"`acme/{SERVICE}` exists, but Paved did not create it") and "staging" not in answer


def test_help_lists_status(world: World) -> None:
    assert "`/paved status SERVICE`" in ask(world, open_pr(world), "/paved help")


# -- what GitHub holds is only ever shown -------------------------------------------------------------------------

HOSTILE = ServiceStatus(
    "acme/search", "main", (EnvironmentStatus("staging", Deployment(
        7, "not-a-sha](https://evil.example)", "main", "@acme/everyone", "2025-01-01T00:00:00Z", "success",
        description="<img src=x onerror=alert(1)> [click](https://evil.example) #12",
        log_url="javascript:alert(1)", environment_url="https://ok.example/a)b [x](https://evil.example")),),
    LatestRun("CI\n| injected | row |", "completed", "success", "@acme/everyone", "2025-01-01T00:00:00Z",
              "https://ci.example/runs/1"),
    html_url="https://forge.example/acme/search")


@pytest.mark.parametrize("pattern", [
    r"@[A-Za-z0-9]",  # a live mention
    r"(?<!\\)<img", r"(?<!\\)\]\(https://evil", r"javascript:",  # markup, a link someone else chose, a script
    r"#1(?!&)2",  # an issue reference
    r"\n\| injected",  # a row of its own
])
def test_text_from_github_shows_and_does_nothing_else(pattern: str) -> None:
    shown = service_status("search", HOSTILE)
    assert not re.search(pattern, shown), shown


def test_a_parenthesis_in_an_address_cannot_end_its_link_early() -> None:
    deployed = Deployment(7, "a" * 40, "main", "bob", "2025-01-01T00:00:00Z", "success",
                          environment_url="https://ok.example/a)b")
    shown = service_status("search", ServiceStatus("acme/search", "main", (EnvironmentStatus("staging", deployed),)))
    assert "[open](https://ok.example/a%29b)" in shown
