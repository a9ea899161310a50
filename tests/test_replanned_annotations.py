"""A pull request's head carries one set of annotations, however often it is planned again.

GitHub appends the annotations of every update of a check run to those it has; these tests plan the same
head again (as `/paved plan` and reviews do) against the sandbox forge, which keeps annotations the same way.
"""

from __future__ import annotations

from bot.handlers.pull_request import CHECK_NAME, plan_pull_request
from tests.conftest import REPO, World

GROWTH = "catalog/teams/growth.yaml"


def open_typo(world: World) -> int:
    text = world.forge.read_file("acme", "platform", GROWTH).decode().replace("monthly: 80", "montly: 80")
    world.forge.push_files("acme", "platform", "typo", {GROWTH: text}, by="carol")
    return world.forge.open_pull_request("acme", "platform", head="typo", title="Typo", by="carol").number


def runs_on_head(world: World, number: int) -> int:
    head = world.forge.pull_request("acme", "platform", number).head_sha
    commit = world.ctx.forge._repo(REPO).get_commit(head)  # type: ignore[attr-defined]
    return commit.get_check_runs(check_name=CHECK_NAME, filter="all").totalCount


def test_planning_a_head_three_times_leaves_one_set_of_annotations(world: World) -> None:
    number = open_typo(world)
    plan_pull_request(world.ctx, REPO, number)
    _, _, once = world.check(number)

    for _ in range(3):
        plan_pull_request(world.ctx, REPO, number)

    assert once > 0
    assert world.check(number) == ("failure", world.check(number)[1], once)
    assert runs_on_head(world, number) == 1
