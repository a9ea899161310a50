"""Abusing Paved's service from outside: hostile webhook bodies, replayed deliveries, comments that
try to make Paved mention people.

Everything goes through the real service (`paved serve`'s app, its queue consumers, the real handlers)
receiving the sandbox forge's webhooks, as in production.
"""

from __future__ import annotations

import json
import re

import httpx

from bot.webhook import MAX_DEPTH, signature
from tests.security.conftest import ORG, REPO, SECRET, Platform

LIVE_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")


def post(platform: Platform, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(platform.service.url + "/webhooks/github", content=body, headers=headers, timeout=30)


def signed(body: bytes, delivery_id: str, event: str) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id, "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(SECRET, body), "User-Agent": "GitHub-Hookshot/attacker"}


def bot_comments(platform: Platform, number: int) -> list[str]:
    return [c.body for c in platform.forge.comments(ORG, REPO, number) if c.user == platform.bot_login]


def test_a_deeply_nested_signed_body_is_refused_with_400_and_the_service_carries_on(platform: Platform) -> None:
    # Whoever holds the webhook secret (or a leaked copy of it) can send a body that would crash the parser.
    for body in (b"[" * 100_000, b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)):
        answer = post(platform, body, signed(body, f"deep-{len(body)}", "issue_comment"))
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/json" and "Traceback" not in answer.text
        assert answer.json() == {"message": answer.json()["message"]}
        assert f"Paved reads at most {MAX_DEPTH}" in answer.json()["message"]
    assert httpx.get(platform.service.url + "/healthz", timeout=10).status_code == 200
    # And it still does its work: a pull request is planned as ever.
    number = platform.open_pr({"catalog/README.md": "Requests live here, reviewed.\n"}, by="bob", branch="readme")
    assert platform.plan_of(number).status == "completed"


def test_a_signed_delivery_replayed_under_a_new_id_is_not_acted_on_twice(platform: Platform) -> None:
    number = platform.open_pr({"catalog/README.md": "Requests live here, replayed.\n"}, by="bob", branch="replay")
    platform.settle()
    platform.comment(number, "/paved help", by="bob")
    platform.settle()
    assert len([c for c in bot_comments(platform, number) if "**Paved commands**" in c]) == 1

    # What an eavesdropper kept of that delivery: its headers and body, byte for byte as GitHub signed them.
    captured = next(d for d in reversed(platform.forge.deliveries("issue_comment", "created")) if d.status_code == 202)
    body = json.dumps(captured.payload, separators=(",", ":")).encode()
    headers = {k: v for k, v in captured.request_headers.items() if k.lower() != "content-length"}
    assert headers["X-Hub-Signature-256"] == signature(SECRET, body)  # exactly what GitHub sent

    answers = [post(platform, body, {**headers, "X-GitHub-Delivery": f"replayed-{n}"}) for n in range(3)]
    platform.settle()

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.json()["replay_of"] for a in answers} == {captured.guid}
    assert all(platform.service.deliveries.get(f"replayed-{n}") is None for n in range(3))  # no job for any
    assert len([c for c in bot_comments(platform, number) if "**Paved commands**" in c]) == 1
    # GitHub's own redelivery (same id) is still recognised as such.
    again = post(platform, body, headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True and "replay_of" not in again.json()


def test_a_reader_cannot_make_paved_mention_anyone(platform: Platform) -> None:
    number = platform.open_pr({"catalog/README.md": "Requests live here, mentioned.\n"}, by="bob", branch="mention")
    platform.settle()
    before = len(bot_comments(platform, number))
    for body in ("/paved @acme/payments", "/paved explain @alice", "/paved plan @acme/data <b>now</b>", "/paved plan"):
        platform.comment(number, body, by="rita")
    platform.settle()

    replies = bot_comments(platform, number)[before:]
    assert len(replies) == 4, replies
    for reply in replies:
        assert not LIVE_MENTION.search(reply), reply
        assert "<b>" not in reply
    # Two consumers answer, so in either order.
    for start in ("Unknown command “@&#8203;acme/payments”", "There is no kind “@&#8203;alice” here",
                  "`/paved plan` takes no arguments; got “@&#8203;acme/data \\<b\\>now\\</b\\>”",
                  "Sorry @&#8203;rita, `/paved plan` needs"):
        assert sum(reply.startswith(start) for reply in replies) == 1, (start, replies)
