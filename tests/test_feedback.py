"""Asking developers how it went, end to end on the sandbox forge and real git: the invitation on the apply
comment (once a week a person), the author's reaction read back as a rating, and `/paved feedback`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from github import Auth, Github

from bot.handlers.drift import reconcile_repo
from bot.handlers.feedback import read_ratings
from bot.handlers.issue_comment import on_comment
from bot.handlers.push import applied_marker
from bot.handlers.router import route
from bot.sandbox.recording import Exchange, watch
from bot.satisfaction import (
    FEEDBACK_LIMIT,
    FEEDBACK_REF,
    Asked,
    Feedback,
    FeedbackRecord,
    Invited,
    Rating,
    current_ratings,
    feedback_records,
    to_json,
)
from bot.webhook import Delivery
from tests.conftest import REPO, World

INVITATION = "**How was asking Paved for this?**"


def merge_budget(world: World, monthly: int, by: str = "carol") -> tuple[int, str]:
    """A pull request by `by` that changes growth's budget, approved and merged, then applied by Paved."""
    path = "catalog/teams/growth.yaml"
    before = world.forge.read_file("acme", "platform", path).decode()
    text = re.sub(r"monthly: \d+", f"monthly: {monthly}", before)
    branch = f"budget-{monthly}"
    world.forge.push_files("acme", "platform", branch, {path: text}, by=by)
    number = world.forge.open_pull_request("acme", "platform", head=branch, title="Budget", by=by).number
    world.forge.approve("acme", "platform", number, by="bob" if by != "bob" else "dave")
    merged = world.forge.merge("acme", "platform", number, by="alice")
    route(world.ctx, Delivery(f"push-{monthly}", "push", world.delivered("push")))
    return number, merged


def applied_comment(world: World, number: int, merged: str) -> tuple[int, str]:
    [found] = [c for c in world.forge.comments("acme", "platform", number) if c.body.startswith(applied_marker(merged))]
    return found.id, found.body


def records(world: World) -> list[FeedbackRecord]:
    world.ctx.mirror.fetch_if_present(REPO, FEEDBACK_REF)
    return feedback_records(world.ctx.mirror.notes(REPO, FEEDBACK_REF))


def note_count(world: World) -> int:
    world.ctx.mirror.fetch_if_present(REPO, FEEDBACK_REF)
    return sum(len(n.splitlines()) for n in world.ctx.mirror.notes(REPO, FEEDBACK_REF).values())


def react(world: World, number: int, comment: int, content: str, by: str) -> int:
    client = Github(base_url=world.forge.api_url, auth=Auth.Token(world.forge.create_token(by)))
    return int(client.get_repo(REPO).get_issue(number).get_comment(comment).create_reaction(content).id)


def unreact(world: World, number: int, comment: int, reaction: int, by: str) -> None:
    client = Github(base_url=world.forge.api_url, auth=Auth.Token(world.forge.create_token(by)))
    client.get_repo(REPO).get_issue(number).get_comment(comment).delete_reaction(reaction)


# -- the invitation ------------------------------------------------------------------------------------------


def test_the_apply_comment_invites_its_author_to_rate_it(world: World) -> None:
    number, merged = merge_budget(world, 90)
    comment, body = applied_comment(world, number, merged)
    assert INVITATION in body and "/paved feedback" in body
    assert not re.search(r"@[A-Za-z0-9]", body)  # it asks without notifying anyone
    found = records(world)
    assert [(r.login, r.pull_request, r.revision) for r in found if isinstance(r, Asked)] == [("carol", number, merged)]
    assert [r.comment for r in found if isinstance(r, Invited)] == [comment]


def test_a_person_is_invited_once_a_week_not_twice(world: World) -> None:
    merge_budget(world, 90)
    number, merged = merge_budget(world, 95)
    assert INVITATION not in applied_comment(world, number, merged)[1]
    assert len([r for r in records(world) if isinstance(r, Asked)]) == 1


def test_another_person_is_invited_the_same_week(world: World) -> None:
    merge_budget(world, 90, by="carol")
    number, merged = merge_budget(world, 95, by="dave")
    assert INVITATION in applied_comment(world, number, merged)[1]


def test_a_person_asked_more_than_a_week_ago_is_invited_again(world: World) -> None:
    mirror = world.ctx.mirror
    mirror.fetch(REPO, ["main"])
    root = mirror.first_parents(REPO, None, mirror.resolve(REPO, "refs/heads/main") or "", 1)[0]
    long_ago = (datetime.now(UTC) - timedelta(days=8)).isoformat(timespec="seconds")
    mirror.append_note(REPO, FEEDBACK_REF, root, to_json(Asked("carol", 1, root, long_ago)))
    mirror.push(REPO, [FEEDBACK_REF])
    number, merged = merge_budget(world, 90)
    assert INVITATION in applied_comment(world, number, merged)[1]


def test_reporting_an_apply_again_keeps_its_invitation_and_asks_nobody_new(world: World) -> None:
    number, merged = merge_budget(world, 90)
    route(world.ctx, Delivery("push-again", "push", world.delivered("push")))
    assert INVITATION in applied_comment(world, number, merged)[1]
    assert len([r for r in records(world) if isinstance(r, (Asked, Invited))]) == 2


# -- reading the reactions back ---------------------------------------------------------------------------------


def test_a_thumbs_up_by_the_author_is_read_back_as_a_rating_by_reconcile(world: World) -> None:
    number, merged = merge_budget(world, 90)
    comment, _ = applied_comment(world, number, merged)
    react(world, number, comment, "+1", by="carol")
    reconcile_repo(world.ctx, REPO)
    [rating] = current_ratings(records(world)).values()
    assert (rating.login, rating.pull_request, rating.comment, rating.content, rating.score) == (
        "carol", number, comment, "+1", 3)


def test_a_reaction_by_someone_else_is_no_rating(world: World) -> None:
    number, merged = merge_budget(world, 90)
    comment, _ = applied_comment(world, number, merged)
    react(world, number, comment, "-1", by="bob")
    read_ratings(world.ctx, REPO, datetime.now(UTC))
    assert not [r for r in records(world) if isinstance(r, Rating)]


def test_reading_the_reactions_again_records_nothing_twice(world: World) -> None:
    number, merged = merge_budget(world, 90)
    comment, _ = applied_comment(world, number, merged)
    react(world, number, comment, "+1", by="carol")
    first = read_ratings(world.ctx, REPO, datetime.now(UTC))
    lines = note_count(world)
    again = read_ratings(world.ctx, REPO, datetime.now(UTC))
    assert (first.noted, again.noted, again.comments) == (1, 0, 1)
    assert note_count(world) == lines


def test_reactions_unchanged_since_the_last_read_cost_nothing(world: World) -> None:
    number, merged = merge_budget(world, 90)
    comment, _ = applied_comment(world, number, merged)
    react(world, number, comment, "+1", by="carol")
    read_ratings(world.ctx, REPO, datetime.now(UTC))
    seen: list[int] = []

    def record(exchange: Exchange) -> None:
        if exchange.path.endswith(f"/issues/comments/{comment}/reactions"):
            seen.append(exchange.status)

    stop = watch(on_exchange=record)
    try:
        read_ratings(world.ctx, REPO, datetime.now(UTC))
    finally:
        stop()
    assert seen == [304]


def test_a_changed_reaction_replaces_the_rating(world: World) -> None:
    number, merged = merge_budget(world, 90)
    comment, _ = applied_comment(world, number, merged)
    liked = react(world, number, comment, "+1", by="carol")
    read_ratings(world.ctx, REPO, datetime.now(UTC))
    unreact(world, number, comment, liked, by="carol")
    react(world, number, comment, "confused", by="carol")
    read_ratings(world.ctx, REPO, datetime.now(UTC))
    [rating] = current_ratings(records(world)).values()
    assert (rating.content, rating.score) == ("confused", 2)


def test_a_withdrawn_reaction_withdraws_the_rating(world: World) -> None:
    number, merged = merge_budget(world, 90)
    comment, _ = applied_comment(world, number, merged)
    liked = react(world, number, comment, "+1", by="carol")
    read_ratings(world.ctx, REPO, datetime.now(UTC))
    unreact(world, number, comment, liked, by="carol")
    read_ratings(world.ctx, REPO, datetime.now(UTC))
    assert current_ratings(records(world)) == {}


def test_invitations_older_than_the_read_back_window_are_not_read(world: World) -> None:
    number, merged = merge_budget(world, 90)
    comment, _ = applied_comment(world, number, merged)
    react(world, number, comment, "+1", by="carol")
    read = read_ratings(world.ctx, REPO, datetime.now(UTC) + timedelta(weeks=5))
    assert (read.comments, read.noted) == (0, 0)


# -- /paved feedback -----------------------------------------------------------------------------------------


def say(world: World, number: int, body: str, by: str) -> dict[str, object]:
    world.forge.comment("acme", "platform", number, body, by=by)
    return world.delivered("issue_comment", "created")


def test_feedback_is_kept_with_who_when_and_which_pull_request(world: World) -> None:
    number, _ = merge_budget(world, 90)
    payload = say(world, number, "/paved feedback the plan was clear,\nbut which size?", by="erin")
    outcome = on_comment(world.ctx, payload, bot_login=world.bot_login)
    assert outcome.status == "ran"
    [kept] = [r for r in records(world) if isinstance(r, Feedback)]
    comment = payload["comment"]
    assert isinstance(comment, dict)
    assert (kept.login, kept.pull_request, kept.comment, kept.at, kept.text, kept.truncated) == (
        "erin", number, comment["id"], comment["created_at"], "the plan was clear,\nbut which size?", False)


def test_hostile_feedback_is_kept_capped_and_repeated_nowhere(world: World) -> None:
    number, _ = merge_budget(world, 90)
    before = world.comments(number)
    hostile = "@acme/everyone **[click](https://evil.example)** <img src=x onerror=alert(1)> " + "x" * 10_000
    payload = say(world, number, f"/paved feedback {hostile}", by="erin")
    on_comment(world.ctx, payload, bot_login=world.bot_login)
    [kept] = [r for r in records(world) if isinstance(r, Feedback)]
    assert len(kept.text) == FEEDBACK_LIMIT and kept.truncated and kept.text == hostile[:FEEDBACK_LIMIT]
    assert world.comments(number) == [*before, f"/paved feedback {hostile}"]  # acknowledged, not answered


def test_feedback_is_acknowledged_with_a_reaction(world: World) -> None:
    number, _ = merge_budget(world, 90)
    payload = say(world, number, "/paved feedback thanks", by="carol")
    on_comment(world.ctx, payload, bot_login=world.bot_login)
    comment = payload["comment"]
    assert isinstance(comment, dict)
    client = Github(base_url=world.forge.api_url, auth=Auth.Token(world.forge.create_token("carol")))
    reactions = client.get_repo(REPO).get_issue(number).get_comment(int(comment["id"])).get_reactions()
    assert {r.content for r in reactions} == {"eyes", "heart"}


def test_feedback_delivered_twice_is_kept_once(world: World) -> None:
    number, _ = merge_budget(world, 90)
    payload = say(world, number, "/paved feedback thanks", by="carol")
    on_comment(world.ctx, payload, bot_login=world.bot_login)
    again = on_comment(world.ctx, payload, bot_login=world.bot_login)
    assert again.detail == "feedback noted already"
    assert len([r for r in records(world) if isinstance(r, Feedback)]) == 1


def test_feedback_on_an_open_pull_request_is_kept_too(world: World) -> None:
    world.forge.push_files("acme", "platform", "wip", {"catalog/notes.md": "x"}, by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="wip", title="Notes", by="carol").number
    on_comment(world.ctx, say(world, number, "/paved feedback where do notes go?", by="carol"),
               bot_login=world.bot_login)
    assert [(r.pull_request, r.text) for r in records(world) if isinstance(r, Feedback)] == [
        (number, "where do notes go?")]
