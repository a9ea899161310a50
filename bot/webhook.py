"""Verifying and reading GitHub webhook deliveries, without any I/O.

`parse(headers, body, secret)` either returns a `Delivery` or raises `WebhookError` carrying the HTTP
status to answer with. It fails closed both ways: a delivery is refused when Paved has no secret
configured, and when the delivery has no signature or a wrong one. The web route only hands it the
headers and the raw bytes.

`merge_group_of` reads the one payload whose fields Paved fetches by name (a merge queue's branch), checked
for the shapes GitHub gives them.

Before the JSON is parsed its nesting depth is measured on the raw bytes and refused over `MAX_DEPTH`:
Python's parser recurses once per level, so a few kilobytes of `[` would otherwise end in a
RecursionError (a 500) instead of a clear 400.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from bot.errors import PavedError

# GitHub caps payloads at 25 MB; Paved's events are far smaller, and a bound keeps a flood cheap.
MAX_BODY_BYTES = 5 * 1024 * 1024
# GitHub's deepest example payloads nest 6 levels (tests/data/github/webhooks); the parser recurses about a
# thousand levels before it fails. 64 leaves room for any payload GitHub sends and none for that.
MAX_DEPTH = 64

# What measuring the depth keeps of a body: quotes and brackets; then a string literal, quote to quote (an
# unterminated one runs to the end), to be removed; then each bracket as +1 or -1 (a signed byte).
_NOT_QUOTES_OR_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING = re.compile(rb'"[^"]*+"?')
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class WebhookError(PavedError):
    """Raised when a delivery is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified webhook delivery: the headers that matter and the JSON payload.

    `body_sha256` is the hex SHA-256 of the raw body as signed, set by `parse`: the delivery log knows a
    body it has acted on by it, whatever delivery id it arrives under again. None for deliveries that did
    not come over HTTP (a job read back from the queue, an Actions event).
    """

    id: str
    event: str
    payload: dict[str, Any] = field(repr=False)
    body_sha256: str | None = field(default=None, repr=False, compare=False)

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


def nesting_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in the JSON text `body`, measured without parsing it.

    All of it is done by C code over the bytes, never a Python step per byte: escaped backslashes and
    quotes are removed (so every quote left opens or closes a string), then every byte but quotes and
    brackets; two quotes side by side go too (an empty string, or the end of one string and the start of
    the next: either way what lies between other quotes stays inside or outside). One regular expression
    then removes the string literals, and the depth is the highest running sum of +1 per opening and -1
    per closing bracket. About 30 ms for 5 MB of GitHub-like JSON, under a second for the worst 5 MB.
    For text that is not valid JSON the answer holds for what a parser reads before it fails, which is
    what bounds the parser's recursion.
    """
    kept = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_QUOTES_OR_BRACKETS)
    brackets = _STRING.sub(b"", kept.replace(b'""', b""))
    if not brackets:
        return 0
    return max(accumulate(memoryview(brackets.translate(_STEPS)).cast("b"), initial=0))


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
    depth = nesting_depth(body)
    if depth > MAX_DEPTH:
        raise WebhookError(400, f"the payload nests {depth:,} levels deep; Paved reads at most {MAX_DEPTH}")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookError(400, f"the payload is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookError(400, "the payload is not a JSON object")
    return Delivery(delivery_id, event, payload, body_sha256=hashlib.sha256(body).hexdigest())


# A merge group's temporary branch: `gh-readonly-queue/{base}/pr-{number}-{head of that pull request}`. The
# base's name is fetched by, so it is held to what a branch name can be (no `..`, `:`, `*`, spaces, ...).
_QUEUE_REF = re.compile(r"refs/heads/gh-readonly-queue/(?P<base>[A-Za-z0-9_][A-Za-z0-9._/-]*)"
                        r"/pr-(?P<number>[1-9][0-9]{0,9})-[0-9a-f]{40}")
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True, slots=True)
class MergeGroup:
    """A merge queue's group, as a `merge_group` delivery names it: on the temporary branch `head_ref`, the
    commit `head_sha` is `base_sha` (the head of the base branch, or of the group ahead in the queue) with
    the group's pull requests merged in, waiting for its checks before it lands on `base_ref`."""

    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str

    @property
    def branch(self) -> str:
        """The branch the group lands on (`main`)."""
        return self.base_ref.removeprefix("refs/heads/")

    @property
    def pull_request(self) -> int:
        """The pull request the group was made for (the last one in it), as its branch names it."""
        found = _QUEUE_REF.fullmatch(self.head_ref)
        assert found is not None  # `merge_group_of` made sure
        return int(found["number"])


def merge_group_of(delivery: Delivery) -> MergeGroup | None:
    """The merge group of a `merge_group` delivery, if it names one as GitHub's merge queue does (full commit
    ids, a base branch, and the queue's temporary branch for that base as its head); None otherwise, so a
    malformed payload is ignored rather than fetched from."""
    group = delivery.payload.get("merge_group") if delivery.event == "merge_group" else None
    if not isinstance(group, dict):
        return None
    fields = [group.get(k) for k in ("head_sha", "head_ref", "base_sha", "base_ref")]
    if not all(isinstance(v, str) for v in fields):
        return None
    head_sha, head_ref, base_sha, base_ref = (str(v) for v in fields)
    queue = _QUEUE_REF.fullmatch(head_ref)
    if queue is None or ".." in queue["base"] or base_ref != f"refs/heads/{queue['base']}" or not (
            _SHA.fullmatch(head_sha) and _SHA.fullmatch(base_sha)):
        return None
    return MergeGroup(head_sha, head_ref, base_sha, base_ref)


def _app_id(node: Any) -> int | None:
    app = node.get("app") if isinstance(node, dict) else None
    value = app.get("id") if isinstance(app, dict) else None
    return value if isinstance(value, int) else None


def echo_of(delivery: Delivery, app_id: int | None) -> str | None:
    """Why `delivery` only echoes one of Paved's own writes (None when a person or another app caused it).

    GitHub tells an App about what the App itself did: the check runs it creates and completes, the
    check suites they complete, the comments it writes. Acting on those costs a job each and acts on
    nothing new, so they are dropped before they are queued. A person asking to re-run Paved's check
    (`check_run.rerequested`) is not an echo.
    """
    if app_id is None:
        return None
    payload, action = delivery.payload, delivery.action
    if delivery.event in ("check_run", "check_suite") and action in ("created", "completed") and \
            _app_id(payload.get(delivery.event)) == app_id:
        return f"Paved's own {delivery.event.replace('_', ' ')} was {action}"
    if delivery.event == "issue_comment":
        comment = payload.get("comment")
        via = comment.get("performed_via_github_app") if isinstance(comment, dict) else None
        if isinstance(via, dict) and via.get("id") == app_id:
            return f"Paved's own comment was {action}"
    return None

