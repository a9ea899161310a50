"""Apply after merge, end to end on the sandbox forge: what merged is applied once, recorded in git,
reported on the commit and the pull request, and applied again only when asked."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.apply import APPLIED_REF, NOTES_REF, read_records
from bot.handlers.push import CHECK_NAME, applied_marker
from bot.handlers.router import route
from bot.plan import validate_tree
from bot.webhook import Delivery
from tests.conftest import REPO, DiesAt, Killed, World


def merge_budget_change(world: World) -> tuple[int, str]:
    path = "catalog/teams/growth.yaml"
    text = world.forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol").number
    world.forge.approve("acme", "platform", number, by="bob")
    return number, world.forge.merge("acme", "platform", number, by="alice")


def pushed(world: World) -> Delivery:
    return Delivery("push-delivery", "push", world.delivered("push"))


def notes_of(world: World, sha: str) -> list[dict[str, object]]:
    world.ctx.mirror.fetch_if_present(REPO, NOTES_REF)  # type: ignore[attr-defined]
    note = world.ctx.mirror.note(REPO, NOTES_REF, sha)  # type: ignore[attr-defined]
    return [json.loads(r.to_json()) for r in read_records(note)]


def test_a_merge_is_applied_and_recorded_as_a_note_on_the_merge_commit(world: World) -> None:
    number, merged = merge_budget_change(world)
    routed = route(world.ctx, pushed(world))
    assert routed.handler == "apply" and routed.result.startswith("applied")
    [record] = notes_of(world, merged)
    assert (record["revision"], record["pull_request"], record["requested_by"], record["merged_by"]) == (
        merged, number, "carol", "alice")
    assert record["approved_by"] == ["bob"]
    assert record["trigger"] == "merge"
    assert world.ctx.mirror.resolve(REPO, APPLIED_REF) == merged  # type: ignore[attr-defined]
    assert world.comments(number)[-1].startswith(f"{applied_marker(merged)}\n### Paved applied {merged[:12]}")


def test_the_first_apply_covers_the_whole_catalogue(world: World) -> None:
    _, merged = merge_budget_change(world)
    route(world.ctx, pushed(world))
    [record] = notes_of(world, merged)
    assert record["previous"] is None
    with world.ctx.mirror.tree(REPO, merged) as tree:
        catalogue = validate_tree(tree, store=world.ctx.store)  # type: ignore[attr-defined]
    assert len(record["results"]) == catalogue.resources  # type: ignore[arg-type]


def test_applying_an_applied_head_again_changes_nothing(world: World) -> None:
    _, merged = merge_budget_change(world)
    route(world.ctx, pushed(world))
    again = route(world.ctx, pushed(world))
    assert again.result == f"up to date {merged[:12]}"
    assert len(notes_of(world, merged)) == 1


def test_pushes_to_other_branches_are_not_applied(world: World) -> None:
    world.forge.push_files("acme", "platform", "wip", {"catalog/notes.md": "x"}, by="carol")
    assert route(world.ctx, pushed(world)).handler == "ignored"


# -- a Paved killed while reporting an apply finishes it on restart ------------------------------------------


def killed_at(world: World, method: str) -> None:
    with pytest.raises(Killed):
        route(replace(world.ctx, forge=DiesAt(world.ctx.forge, method)), pushed(world))


def apply_checks(world: World, sha: str) -> list[Any]:
    return list(world.ctx.forge._repo(REPO).get_commit(sha).get_check_runs(  # type: ignore[attr-defined]
        check_name=CHECK_NAME))


def applied_comments(world: World, number: int, sha: str) -> list[str]:
    return [c for c in world.comments(number) if c.startswith(applied_marker(sha))]


def test_an_apply_killed_before_its_check_is_reported_on_restart_and_not_applied_again(world: World) -> None:
    number, merged = merge_budget_change(world)
    killed_at(world, "publish_check")
    assert world.ctx.mirror.resolve(REPO, APPLIED_REF) is None  # type: ignore[attr-defined]

    again = route(world.ctx, pushed(world))

    assert again.result.startswith(f"applied {merged[:12]}")
    [record] = notes_of(world, merged)  # the providers did not run a second time
    assert record["succeeded"] is True
    [check] = apply_checks(world, merged)
    assert check.conclusion == "success"
    assert world.ctx.mirror.resolve(REPO, APPLIED_REF) == merged  # type: ignore[attr-defined]
    assert len(applied_comments(world, number, merged)) == 1


def test_an_apply_killed_before_its_comment_gets_the_comment_on_the_next_push(world: World) -> None:
    number, merged = merge_budget_change(world)
    killed_at(world, "upsert_comment")
    assert world.ctx.mirror.resolve(REPO, APPLIED_REF) == merged  # type: ignore[attr-defined]
    assert applied_comments(world, number, merged) == []

    assert route(world.ctx, pushed(world)).result == f"up to date {merged[:12]}"

    assert len(applied_comments(world, number, merged)) == 1
    assert len(notes_of(world, merged)) == 1 and len(apply_checks(world, merged)) == 1


def test_a_head_applied_and_pushed_again_keeps_one_comment_and_one_check(world: World) -> None:
    number, merged = merge_budget_change(world)
    for _ in range(3):
        route(world.ctx, pushed(world))
    assert len(applied_comments(world, number, merged)) == 1
    assert len(apply_checks(world, merged)) == 1


def test_a_merge_left_unreported_is_reported_before_the_next_merge_is_applied_from_it(world: World) -> None:
    first, unreported = merge_budget_change(world)
    killed_at(world, "publish_check")
    path = "catalog/teams/growth.yaml"
    text = world.forge.read_file("acme", "platform", path).decode().replace("monthly: 90", "monthly: 95")
    world.forge.push_files("acme", "platform", "budget-2", {path: text}, by="carol")
    second = world.forge.open_pull_request("acme", "platform", head="budget-2", title="Yet more", by="carol").number
    world.forge.approve("acme", "platform", second, by="bob")
    merged = world.forge.merge("acme", "platform", second, by="alice")

    route(world.ctx, pushed(world))

    assert [c.conclusion for c in apply_checks(world, unreported)] == ["success"]
    assert len(applied_comments(world, first, unreported)) == 1
    [record] = notes_of(world, merged)
    assert record["previous"] == unreported  # the second apply started where the first one ended
    assert world.ctx.mirror.resolve(REPO, APPLIED_REF) == merged  # type: ignore[attr-defined]
    assert len(applied_comments(world, second, merged)) == 1
