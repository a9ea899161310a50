"""Webhook deliveries: verified in constant time, refused closed, read without I/O."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.webhook import WebhookError, parse, signature

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
