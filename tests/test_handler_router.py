"""Deliveries reach the right use case: real payloads from the sandbox forge's delivery log."""

from __future__ import annotations

import httpx

from bot.handlers.router import route
from bot.webhook import Delivery
from tests.conftest import World, experimental_change


def delivery(world: World, event: str, action: str | None = None) -> Delivery:
    return Delivery("test-delivery", event, world.delivered(event, action))


def open_pr(world: World, *, draft: bool = False) -> int:
    path = "catalog/teams/growth.yaml"
    text = world.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
    return world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol",
                                         draft=draft).number


def test_an_opened_pull_request_is_planned(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    assert route(world.ctx, delivery(world, "pull_request", "opened")).result == "published success"
    assert len(world.plan_comments(number)) == 1


def test_a_pull_request_that_needs_approval_is_published_as_waiting(world: World) -> None:
    open_pr(world)  # a team's budget: the team approves
    assert route(world.ctx, delivery(world, "pull_request", "opened")).result == "published waiting"


def test_a_push_to_the_pull_request_is_planned_again(world: World) -> None:
    number = open_pr(world)
    route(world.ctx, delivery(world, "pull_request", "opened"))
    path = "catalog/teams/growth.yaml"
    text = world.forge.read_file("acme", "platform", path, ref="budget").decode().replace("90", "95")
    world.forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
    assert route(world.ctx, delivery(world, "pull_request", "synchronize")).handler == "plan"
    [comment] = world.plan_comments(number)
    assert "`95`" in comment


def test_an_approving_review_plans_again(world: World) -> None:
    number = open_pr(world)
    world.forge.approve("acme", "platform", number, by="bob")
    assert route(world.ctx, delivery(world, "pull_request_review", "submitted")).handler == "plan"


def test_a_review_that_only_comments_plans_nothing(world: World) -> None:
    number = open_pr(world)
    answer = httpx.post(f"{world.forge.api_url}/repos/acme/platform/pulls/{number}/reviews",
                        headers={"Authorization": f"Bearer {world.forge.create_token('bob')}"},
                        json={"event": "COMMENT", "body": "Looks fine to me."})
    assert answer.status_code == 200, answer.text
    routed = route(world.ctx, delivery(world, "pull_request_review", "submitted"))
    assert routed.handler == "ignored" and world.plan_comments(number) == []


def test_a_review_by_someone_who_may_neither_write_nor_approve_plans_nothing(world: World) -> None:
    number = open_pr(world)
    world.forge.approve("acme", "platform", number, by="erin")  # may only read, and is in no team
    routed = route(world.ctx, delivery(world, "pull_request_review", "submitted"))
    assert routed.handler == "ignored" and "erin" in routed.result
    assert world.plan_comments(number) == []


def test_a_comment_command_is_run(world: World) -> None:
    number = open_pr(world)
    world.forge.comment("acme", "platform", number, "/paved help", by="bob")
    assert route(world.ctx, delivery(world, "issue_comment", "created")).handler == "comment"


def test_events_paved_does_not_act_on_are_ignored(world: World) -> None:
    open_pr(world)
    assert route(world.ctx, delivery(world, "installation", "created")).handler == "ignored"


def test_a_draft_waits_until_it_is_ready_for_review(world: World) -> None:
    number = open_pr(world, draft=True)
    assert route(world.ctx, delivery(world, "pull_request", "opened")).handler == "ignored"
    assert world.plan_comments(number) == []


def test_re_running_the_check_on_github_plans_again(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    route(world.ctx, delivery(world, "pull_request", "opened"))
    head = world.forge.pull_request("acme", "platform", number).head_sha
    [run] = list(world.ctx.forge._repo("acme/platform").get_commit(head).get_check_runs())  # type: ignore[attr-defined]
    world.forge.rerequest_check_run("acme", "platform", run.id, by="bob")
    routed = route(world.ctx, delivery(world, "check_run", "rerequested"))
    assert (routed.handler, routed.result) == ("plan", "published")


def test_a_redelivered_change_to_a_planned_head_costs_no_second_plan(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    route(world.ctx, delivery(world, "pull_request", "opened"))
    again = route(world.ctx, delivery(world, "pull_request", "opened"))
    assert again.handler == "plan" and again.result.startswith("skipped") and "planned already" in again.result
    assert len(world.plan_comments(number)) == 1
