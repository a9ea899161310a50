"""Apply after merge, end to end on the sandbox forge: what merged is applied once, recorded in git,
reported on the commit and the pull request, and applied again only when asked."""

from __future__ import annotations

import json

from bot.apply import APPLIED_REF, NOTES_REF, read_records
from bot.handlers.router import route
from bot.plan import validate_tree
from bot.webhook import Delivery
from tests.conftest import REPO, World


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
    assert world.comments(number)[-1].startswith(f"### Paved applied {merged[:12]}")


def test_the_first_apply_covers_the_whole_catalogue(world: World) -> None:
    _, merged = merge_budget_change(world)
    route(world.ctx, pushed(world))
    [record] = notes_of(world, merged)
    assert record["previous"] is None
    catalogue = validate_tree(world.ctx.mirror.tree(REPO, merged))  # type: ignore[attr-defined]
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
