"""Comment commands: every text is exactly one of run, reply or ignore."""

from __future__ import annotations

import re

import pytest

from bot.commands import Command, Ignore, Reply, parse
from bot.render.markdown import ECHO_LIMIT, echo


@pytest.mark.parametrize(("body", "expected"), [
    ("/paved plan", Command("plan")),
    ("  /paved plan  ", Command("plan")),
    ("/paved PLAN", Command("plan")),
    ("Looks good!\n/paved plan\nthanks", Command("plan")),
    ("/paved retry", Command("retry")),
    ("/paved explain Database", Command("explain", "Database")),
    ("/paved status payments-api", Command("status", "payments-api")),
    ("/paved feedback the plan was clear", Command("feedback", "the plan was clear")),
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
    for usage in ("/paved plan", "/paved retry", "/paved explain KIND", "/paved status SERVICE", "/paved feedback TEXT",
                  "/paved help"):
        assert usage in reply.text


def test_an_unknown_command_suggests_the_nearest_one() -> None:
    reply = parse("/paved plna")
    assert isinstance(reply, Reply)
    assert reply.text.startswith("Unknown command “plna” — did you mean `/paved plan`?")


def test_a_command_with_unexpected_arguments_says_so() -> None:
    reply = parse("/paved plan --force")
    assert isinstance(reply, Reply)
    assert "takes no arguments" in reply.text


def test_explain_without_a_kind_says_what_it_needs() -> None:
    reply = parse("/paved explain")
    assert isinstance(reply, Reply)
    assert "needs one kind" in reply.text


@pytest.mark.parametrize("body", ["/paved status", "/paved status payments-api search"])
def test_status_without_exactly_one_service_says_what_it_needs(body: str) -> None:
    reply = parse(body)
    assert isinstance(reply, Reply)
    assert "needs one service" in reply.text


def test_only_plan_and_retry_act() -> None:
    assert Command("plan").acts and Command("retry").acts
    assert not Command("explain", "Team").acts
    assert not Command("status", "payments-api").acts


# -- what a reply repeats of a comment ------------------------------------------------------------------------

LIVE_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")


@pytest.mark.parametrize(("written", "shown"), [
    ("plna", "plna"),
    ("@org/everyone", "@&#8203;org/everyone"),
    ("cc @alice and @bob", "cc @&#8203;alice and @&#8203;bob"),
    ("mail@example.com", "mail@&#8203;example.com"),
    ("fixes #12", "fixes #&#8203;12"),
    ("`code` ``x``", "code x"),
    ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
    ("</details><!-- paved:plan -->", "\\</details\\>\\<!-- paved:plan --\\>"),
    ("[click](https://evil.example)", "\\[click\\](https://evil.example)"),
    ("**bold** _it_ ~~s~~", "\\*\\*bold\\*\\* \\_it\\_ \\~\\~s\\~\\~"),
    ("a | b", "a \\| b"),
    ("&lt;tag&gt;", "\\&lt;tag\\&gt;"),
    ("back\\slash", "back\\\\slash"),
    ("two\nlines\r\n\n# heading", "two lines # heading"),
    ("nul\x00 esc\x1b[31m bell\x07", "nul esc\\[31m bell"),
    ("rtl\u202eoverride zero\u200bwidth\u2066", "rtloverride zerowidth"),
    ("  spaced\t out  ", "spaced out"),
    ("é 日本 🙂", "é 日本 🙂"),
])
def test_echoed_text_mentions_nobody_and_cannot_change_the_markdown(written: str, shown: str) -> None:
    assert echo(written) == shown


def test_echoed_text_is_cut_to_its_limit_before_it_is_escaped() -> None:
    assert echo("x" * 500) == "x" * (ECHO_LIMIT - 1) + "…"
    assert echo("*" * 500) == "\\*" * (ECHO_LIMIT - 1) + "…"
    assert echo("@" + "a" * 500, limit=10) == "@&#8203;" + "a" * 8 + "…"


@pytest.mark.parametrize("body", [
    "/paved @org/everyone",
    "/paved plan @org/everyone",
    "/paved <b>@alice</b>",
    "/paved [`@alice`](https://evil.example)",
    "/paved retry \"@alice @bob\" #1",
    "/paved pl\u202ean @alice\x00",
])
def test_a_reply_never_carries_a_live_mention_or_markup_from_the_comment(body: str) -> None:
    reply = parse(body)
    assert isinstance(reply, Reply)
    assert not LIVE_MENTION.search(reply.text), reply.text
    assert "<b>" not in reply.text and not re.search(r"(?<!\\)\]\(", reply.text) and "\x00" not in reply.text
    assert "#1" not in reply.text.replace("#&#8203;1", "")


def test_an_unknown_command_is_repeated_neutralised() -> None:
    reply = parse("/paved @org/everyone")
    assert isinstance(reply, Reply)
    assert reply.text.startswith("Unknown command “@&#8203;org/everyone”\n\n")


def test_feedback_takes_its_words_as_written_with_the_lines_after_it() -> None:
    assert parse("/paved Feedback it's \"quoted\" and *odd*\nsecond line\n\n") == Command(
        "feedback", "it's \"quoted\" and *odd*\nsecond line")


def test_feedback_without_words_says_what_it_needs() -> None:
    reply = parse("/paved feedback   ")
    assert isinstance(reply, Reply)
    assert "needs your words" in reply.text
