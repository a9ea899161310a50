"""Webhook deliveries: verified in constant time, refused closed, read without I/O."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.webhook import MAX_BODY_BYTES, MAX_DEPTH, Delivery, WebhookError, echo_of, nesting_depth, parse, signature

EXAMPLES = Path(__file__).parent / "data" / "github" / "webhooks"
SECRET = "s3cret-for-tests"


def headers(body: bytes, event: str = "pull_request", secret: str = SECRET) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": signature(secret, body), "Content-Type": "application/json"}


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.json") if p.name != "index.json")
                         + sorted(f"derived/{p.name}" for p in (EXAMPLES / "derived").glob("*.json")))
def test_every_example_delivery_from_github_is_read(example: str) -> None:
    body = (EXAMPLES / example).read_bytes()
    event = example.split("/")[-1].split(".")[0]
    delivery = parse(headers(body, event), body, SECRET)
    assert delivery.event == event
    assert delivery.payload == json.loads(body)
    assert delivery.kind.startswith(event)


def test_a_merged_pull_request_reads_its_repository_sender_and_action() -> None:
    body = (EXAMPLES / "derived" / "pull_request.closed.merged.1.json").read_bytes()
    delivery = parse(headers(body), body, SECRET)
    payload = json.loads(body)
    assert delivery.kind == "pull_request.closed"
    assert delivery.repository == payload["repository"]["full_name"]
    assert delivery.sender == payload["sender"]["login"]


def test_no_secret_configured_refuses_every_delivery() -> None:
    body = b"{}"
    with pytest.raises(WebhookError) as refused:
        parse(headers(body), body, None)
    assert refused.value.status == 401


def test_a_delivery_without_a_signature_is_refused() -> None:
    body = b"{}"
    sent = headers(body)
    del sent["X-Hub-Signature-256"]
    with pytest.raises(WebhookError) as refused:
        parse(sent, body, SECRET)
    assert refused.value.status == 401


def test_a_delivery_signed_with_another_secret_is_refused() -> None:
    body = b'{"action": "opened"}'
    with pytest.raises(WebhookError) as refused:
        parse(headers(body, secret="not-ours"), body, SECRET)
    assert refused.value.status == 401


def test_a_body_changed_after_signing_is_refused() -> None:
    sent = headers(b'{"action": "opened"}')
    with pytest.raises(WebhookError) as refused:
        parse(sent, b'{"action": "closed"}', SECRET)
    assert refused.value.status == 401


def test_an_oversized_body_is_refused_before_anything_else() -> None:
    body = b"{" + b" " * 100 + b"}"
    with pytest.raises(WebhookError) as refused:
        parse(headers(body), body, SECRET, max_bytes=50)
    assert refused.value.status == 413


def test_a_body_that_is_not_json_is_refused() -> None:
    body = b"payload=%7B%7D"
    sent = {**headers(body), "Content-Type": "application/x-www-form-urlencoded"}
    with pytest.raises(WebhookError) as refused:
        parse(sent, body, SECRET)
    assert refused.value.status == 415


def test_malformed_json_is_a_bad_request() -> None:
    body = b'{"action": '
    with pytest.raises(WebhookError) as refused:
        parse(headers(body), body, SECRET)
    assert refused.value.status == 400


# -- nesting depth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "depth"), [
    (b"{}", 1),
    (b'{"a": [1, {"b": []}]}', 4),
    (b'"just a string"', 0),
    (b"42", 0),
    (b'{"body": "[[[[ {{{{ brackets in text do not nest"}', 1),
    (b'{"body": "a quote \\" then [[[[", "x": [[]]}', 3),
    (b'{"body": "a backslash \\\\", "x": [[]]}', 3),
    (b'{"body": "\\\\\\" still inside [[[["}', 1),
    (b"[[[", 3),  # unfinished: what a parser would read before failing
    (b'["unterminated [[[[', 1),
    (b"]]][[", 0),
])
def test_nesting_depth_counts_brackets_outside_strings(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_every_example_delivery_nests_far_below_the_bound() -> None:
    examples = [p for p in [*EXAMPLES.glob("*.json"), *(EXAMPLES / "derived").glob("*.json")]
                if p.name != "index.json" and not p.name.startswith("openapi")]
    deepest = max(nesting_depth(p.read_bytes()) for p in examples)
    assert deepest == max(_depth(json.loads(p.read_bytes())) for p in examples)
    assert deepest * 4 < MAX_DEPTH


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def test_a_payload_nested_deeper_than_the_bound_is_a_bad_request_not_a_crash() -> None:
    for body in (b"[" * 100_000, b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
                 b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)):
        body = body if body.startswith(b"{") else b'{"x":' + body + b"}"
        with pytest.raises(WebhookError) as refused:
            parse(headers(body), body, SECRET)
        assert refused.value.status == 400
        assert f"Paved reads at most {MAX_DEPTH}" in refused.value.message


def test_a_payload_nested_exactly_to_the_bound_is_read() -> None:
    body = b'{"x":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert nesting_depth(body) == MAX_DEPTH
    payload = parse(headers(body), body, SECRET).payload
    for _ in range(MAX_DEPTH - 1):
        payload = payload[0] if isinstance(payload, list) else payload["x"]
    assert payload == []


def test_measuring_the_depth_of_the_largest_body_takes_well_under_a_second() -> None:
    worst = [b"[" * MAX_BODY_BYTES, b'"\\' * (MAX_BODY_BYTES // 2), b'{"a":"b"},' * (MAX_BODY_BYTES // 10),
             b"[[]" * (MAX_BODY_BYTES // 3), b'"[' * (MAX_BODY_BYTES // 2)]
    for body in worst:
        started = time.perf_counter()
        nesting_depth(body)
        assert time.perf_counter() - started < 2.0


# -- echoes of Paved's own writes ---------------------------------------------------------------------

PAVED_APP = 42


@pytest.mark.parametrize(("event", "payload", "echo"), [
    ("check_run", {"action": "created", "check_run": {"app": {"id": PAVED_APP}}}, True),
    ("check_run", {"action": "completed", "check_run": {"app": {"id": PAVED_APP}}}, True),
    ("check_suite", {"action": "completed", "check_suite": {"app": {"id": PAVED_APP}}}, True),
    ("issue_comment", {"action": "created", "comment": {"performed_via_github_app": {"id": PAVED_APP}}}, True),
    ("issue_comment", {"action": "edited", "comment": {"performed_via_github_app": {"id": PAVED_APP}}}, True),
    # a person asks to run Paved's check again: that is work
    ("check_run", {"action": "rerequested", "check_run": {"app": {"id": PAVED_APP}}}, False),
    # another app's check, a person's comment, another app's comment
    ("check_run", {"action": "completed", "check_run": {"app": {"id": 7}}}, False),
    ("issue_comment", {"action": "created", "comment": {"performed_via_github_app": None}}, False),
    ("issue_comment", {"action": "created", "comment": {"performed_via_github_app": {"id": 7}}}, False),
    ("pull_request", {"action": "opened", "pull_request": {}}, False),
])
def test_only_paveds_own_writes_coming_back_are_echoes(event: str, payload: dict[str, object], echo: bool) -> None:
    assert (echo_of(Delivery("d", event, payload), PAVED_APP) is not None) is echo


def test_without_an_app_nothing_is_taken_for_an_echo() -> None:
    assert echo_of(Delivery("d", "check_run", {"action": "completed", "check_run": {"app": {"id": 1}}}), None) is None
