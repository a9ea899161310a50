"""Verifying and reading GitHub webhook deliveries, without any I/O.

`parse(headers, body, secret)` either returns a `Delivery` or raises `WebhookError` carrying the HTTP
status to answer with. It fails closed both ways: a delivery is refused when Paved has no secret
configured, and when the delivery has no signature or a wrong one. The web route only hands it the
headers and the raw bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import PavedError

# GitHub caps payloads at 25 MB; Paved's events are far smaller, and a bound keeps a flood cheap.
MAX_BODY_BYTES = 5 * 1024 * 1024


class WebhookError(PavedError):
    """Raised when a delivery is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified webhook delivery: the headers that matter and the JSON payload."""

    id: str
    event: str
    payload: dict[str, Any] = field(repr=False)

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def repository(self) -> str | None:
        repo = self.payload.get("repository")
        return repo.get("full_name") if isinstance(repo, dict) else None

    @property
    def installation_id(self) -> int | None:
        installation = self.payload.get("installation")
        return installation.get("id") if isinstance(installation, dict) else None

    @property
    def sender(self) -> str | None:
        sender = self.payload.get("sender")
        return sender.get("login") if isinstance(sender, dict) else None

    @property
    def kind(self) -> str:
        """`event.action`, or the event alone when it has no action (`push`, `ping`)."""
        return f"{self.event}.{self.action}" if self.action else self.event


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse(headers: Mapping[str, str], body: bytes, secret: str | None, *,
          max_bytes: int = MAX_BODY_BYTES) -> Delivery:
    """Verify a delivery and read it; raise `WebhookError` with the status to answer otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    if len(body) > max_bytes:
        raise WebhookError(413, f"payload of {len(body):,} bytes is over the limit of {max_bytes:,}")
    if not secret:
        raise WebhookError(401, "no webhook secret is configured, so no delivery can be trusted")
    sent = lower.get("x-hub-signature-256")
    if not sent:
        raise WebhookError(401, "the delivery has no X-Hub-Signature-256")
    if not hmac.compare_digest(sent.encode(), signature(secret, body).encode()):
        raise WebhookError(401, "the signature does not match the payload")
    content_type = lower.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise WebhookError(415, f"expected application/json, got {content_type or 'no content type'}")
    event = lower.get("x-github-event")
    if not event:
        raise WebhookError(400, "the delivery has no X-GitHub-Event")
    delivery_id = lower.get("x-github-delivery")
    if not delivery_id:
        raise WebhookError(400, "the delivery has no X-GitHub-Delivery")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookError(400, f"the payload is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookError(400, "the payload is not a JSON object")
    return Delivery(delivery_id, event, payload)
