"""Comment commands: every text is exactly one of run, reply or ignore."""

from __future__ import annotations

import pytest

from bot.commands import Command, Ignore, Reply, parse


@pytest.mark.parametrize(("body", "expected"), [
    ("/paved plan", Command("plan")),
    ("  /paved plan  ", Command("plan")),
    ("/paved PLAN", Command("plan")),
    ("Looks good!\n/paved plan\nthanks", Command("plan")),
    ("/paved retry", Command("retry")),
    ("/paved explain Database", Command("explain", "Database")),
])
def test_commands_are_read_from_the_first_line_that_starts_with_paved(body: str, expected: Command) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize("body", [
    "",
    "LGTM",
    "please run /paved plan",
    "> /paved plan\nquoting the earlier comment",
    "```\n/paved plan\n```",
    "/pavedplan",
])
def test_text_that_does_not_address_paved_is_ignored(body: str) -> None:
    assert isinstance(parse(body), Ignore)


@pytest.mark.parametrize("body", ["/paved", "/paved help"])
def test_help_is_a_reply_listing_every_command(body: str) -> None:
    reply = parse(body)
    assert isinstance(reply, Reply)
    for usage in ("/paved plan", "/paved retry", "/paved explain KIND", "/paved help"):
        assert usage in reply.text


def test_an_unknown_command_suggests_the_nearest_one() -> None:
    reply = parse("/paved plna")
    assert isinstance(reply, Reply)
    assert reply.text.startswith("Unknown command `plna` — did you mean `/paved plan`?")


def test_a_command_with_unexpected_arguments_says_so() -> None:
    reply = parse("/paved plan --force")
    assert isinstance(reply, Reply)
    assert "takes no arguments" in reply.text


def test_explain_without_a_kind_says_what_it_needs() -> None:
    reply = parse("/paved explain")
    assert isinstance(reply, Reply)
    assert "needs one kind" in reply.text


def test_only_plan_and_retry_act() -> None:
    assert Command("plan").acts and Command("retry").acts
    assert not Command("explain", "Team").acts
