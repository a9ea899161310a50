"""Webhook deliveries: signed as GitHub signs them, logged, and redelivered with the same id."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import requests

from bot.sandbox import Sandbox

from .conftest import Cast, Receiver, github


def test_a_new_hook_is_pinged(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    hook_id = forge.register_webhook("acme", "platform", receiver.url, secret="s")
    forge.wait_for_deliveries()
    [ping] = receiver.received
    assert ping.headers["X-GitHub-Event"] == "ping"
    assert ping.payload["hook_id"] == hook_id


def test_deliveries_are_signed_with_the_hooks_secret(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, secret="It's a Secret to Everybody")
    forge.push_files("acme", "platform", "main", {"a.txt": "a\n"}, by="alice")
    forge.wait_for_deliveries()
    for delivery in receiver.received:
        expected = hmac.new(b"It's a Secret to Everybody", delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["X-Hub-Signature-256"] == f"sha256={expected}"


def test_every_delivery_has_a_fresh_uuid(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url)
    forge.push_files("acme", "platform", "main", {"a.txt": "a\n"}, by="alice")
    forge.push_files("acme", "platform", "main", {"b.txt": "b\n"}, by="alice")
    forge.wait_for_deliveries()
    ids = [r.headers["X-GitHub-Delivery"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 3
    assert all(uuid.UUID(i) for i in ids)


def test_a_redelivery_reuses_the_delivery_id(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url)
    forge.push_files("acme", "platform", "main", {"a.txt": "a\n"}, by="alice")
    forge.wait_for_deliveries()
    [push] = forge.deliveries("push")
    again = forge.redeliver(push.id)
    forge.wait_for_deliveries()
    assert again.guid == push.guid and again.redelivery
    pushes = receiver.events("push")
    assert [r.headers["X-GitHub-Delivery"] for r in pushes] == [push.guid, push.guid]
    assert pushes[0].body == pushes[1].body


def test_the_delivery_log_keeps_the_receivers_answer(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    receiver.status = 500
    forge.register_webhook("acme", "platform", receiver.url)
    forge.wait_for_deliveries()
    [ping] = forge.deliveries("ping")
    assert ping.status_code == 500
    assert ping.duration >= 0
    assert ping.request_headers["X-GitHub-Event"] == "ping"


def test_an_unreachable_hook_is_logged_as_failed(forge: Sandbox, cast: Cast) -> None:
    forge.register_webhook("acme", "platform", "http://127.0.0.1:9/unreachable")
    forge.wait_for_deliveries()
    [ping] = forge.deliveries("ping")
    assert ping.status_code == 0 and "failed" in ping.status


def test_hooks_and_deliveries_are_listed_and_redelivered_over_rest(forge: Sandbox, cast: Cast,
                                                                   receiver: Receiver) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    hook = repo.create_hook("web", {"url": receiver.url, "content_type": "json", "secret": "s"}, ["push"])
    forge.wait_for_deliveries()
    headers = {"Authorization": f"token {cast.alice.token}"}
    listed = requests.get(f"{hook.url}/deliveries", headers=headers, timeout=5).json()
    assert [d["event"] for d in listed] == ["ping"]
    answer = requests.post(f"{hook.url}/deliveries/{listed[0]['id']}/attempts", headers=headers, timeout=5)
    assert answer.status_code == 202
    forge.wait_for_deliveries()
    guids = [r.headers["X-GitHub-Delivery"] for r in receiver.events("ping")]
    assert guids == [listed[0]["guid"]] * 2
    assert [h.config["url"] for h in repo.get_hooks()] == [receiver.url]


def test_a_hook_hears_only_its_events(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, events=["pull_request"])
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    forge.wait_for_deliveries()
    assert [r.event for r in receiver.received] == ["ping", "pull_request"]
