"""Commands from PR comments, end to end on the sandbox forge: who may do what, and what they hear."""

from __future__ import annotations

import re

from bot.handlers.issue_comment import on_comment
from tests.conftest import REPO, World, experimental_change


def open_budget_pr(world: World) -> int:
    path = "catalog/teams/growth.yaml"
    text = world.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
    return world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol").number


def say(world: World, number: int, body: str, by: str) -> dict[str, object]:
    world.forge.comment("acme", "platform", number, body, by=by)
    return world.delivered("issue_comment", "created")


def test_plan_from_a_writer_publishes_the_plan(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    outcome = on_comment(world.ctx, say(world, number, "/paved plan", by="bob"), bot_login=world.bot_login)
    assert outcome.status == "ran"
    assert len(world.plan_comments(number)) == 1
    assert world.check(number)[0] == "success"


def test_plan_from_a_reader_gets_a_polite_refusal(world: World) -> None:
    number = open_budget_pr(world)
    outcome = on_comment(world.ctx, say(world, number, "/paved plan", by="erin"), bot_login=world.bot_login)
    assert outcome.status == "refused"
    assert world.plan_comments(number) == []
    # erin is named, not mentioned: a refusal notifies nobody the comment chose.
    assert world.comments(number)[-1].startswith("Sorry @&#8203;erin, `/paved plan` needs **write** permission")


def test_help_is_answered_for_anyone(world: World) -> None:
    number = open_budget_pr(world)
    outcome = on_comment(world.ctx, say(world, number, "/paved help", by="erin"), bot_login=world.bot_login)
    assert outcome.status == "replied"
    assert "/paved explain KIND" in world.comments(number)[-1]


def test_explain_answers_with_the_fields_of_a_kind(world: World) -> None:
    number = open_budget_pr(world)
    on_comment(world.ctx, say(world, number, "/paved explain Database", by="erin"), bot_login=world.bot_login)
    answer = world.comments(number)[-1]
    assert "| `spec.size` |" in answer and "`medium`" in answer


def test_an_unknown_command_suggests_the_right_one(world: World) -> None:
    number = open_budget_pr(world)
    on_comment(world.ctx, say(world, number, "/paved plna", by="bob"), bot_login=world.bot_login)
    assert world.comments(number)[-1].startswith("Unknown command “plna” — did you mean `/paved plan`?")


def test_a_reader_cannot_make_paved_mention_a_team(world: World) -> None:
    number = open_budget_pr(world)
    outcome = on_comment(world.ctx, say(world, number, "/paved @acme/everyone", by="erin"), bot_login=world.bot_login)
    answer = world.comments(number)[-1]
    assert outcome.status == "replied"
    assert answer.startswith("Unknown command “@&#8203;acme/everyone”")
    assert not re.search(r"@[A-Za-z0-9]", answer), answer


def test_explaining_a_kind_that_does_not_exist_repeats_it_neutralised(world: World) -> None:
    number = open_budget_pr(world)
    on_comment(world.ctx, say(world, number, "/paved explain @acme/everyone<b>", by="erin"), bot_login=world.bot_login)
    answer = world.comments(number)[-1]
    assert answer.startswith("There is no kind “@&#8203;acme/everyone\\<b\\>” here; the kinds are `")
    assert not re.search(r"@[A-Za-z0-9]", answer) and "<b>" not in answer
    on_comment(world.ctx, say(world, number, "/paved explain Databse", by="erin"), bot_login=world.bot_login)
    assert world.comments(number)[-1].endswith(". Did you mean `Database`?")


def test_a_comment_paved_is_acknowledged_with_a_reaction(world: World) -> None:
    number = open_budget_pr(world)
    payload = say(world, number, "/paved help", by="bob")
    on_comment(world.ctx, payload, bot_login=world.bot_login)
    comment_id = payload["comment"]["id"]  # type: ignore[index]
    issue = world.ctx.forge._repo(REPO).get_issue(number)  # type: ignore[attr-defined]
    reactions = issue.get_comment(comment_id).get_reactions()
    assert [r.content for r in reactions] == ["eyes"]


def test_comments_not_for_paved_edits_and_bots_are_ignored(world: World) -> None:
    number = open_budget_pr(world)
    chat = say(world, number, "looks good to me", by="bob")
    assert on_comment(world.ctx, chat, bot_login=world.bot_login).status == "ignored"
    edited = {**say(world, number, "/paved plan", by="bob"), "action": "edited"}
    assert on_comment(world.ctx, edited, bot_login=world.bot_login).status == "ignored"
    own = say(world, number, "/paved plan", by="bob")
    own["comment"]["user"]["login"] = world.bot_login  # type: ignore[index]
    assert on_comment(world.ctx, own, bot_login=world.bot_login).status == "ignored"
    assert world.plan_comments(number) == []
