"""Checks the sandbox's answers and webhook payloads against GitHub's own descriptions.

`RestConformance` validates a recorded REST exchange with openapi-core against GitHub's REST
description (`openapi-subset.json` plus `openapi-extra.json`, both cut from `@octokit/openapi`),
after the adjustments the description needs to be usable for validation (see
`tests/data/github/README.md`). `WebhookConformance` validates a delivery's payload against both
the community schema of its event (draft-07) and GitHub's official webhook schema for its
event and action (OpenAPI 3.1, JSON Schema 2020-12). Each returns a list of problems; empty means
the exchange conforms.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import jsonschema
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from bot.sandbox.recording import Exchange, SentDelivery

DATA = Path(__file__).resolve().parent / "data" / "github"
HOST = "https://api.github.com"

# Sandbox routes GitHub still serves but no longer describes (legacy spellings of described ones).
UNDESCRIBED = {
    ("GET", "/repos/{owner}/{repo}/git/refs"),
    ("GET", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("GET", "/repos/{owner}/{repo}/contents"),
    ("GET", "/repos/{owner}/{repo}/statuses/{ref}"),
}
_TEXT_TYPES = ("application/vnd.github.diff", "application/vnd.github.patch", "application/vnd.github.sha")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def load_rest_description() -> dict[str, Any]:
    """Both REST description files merged, with the known validation adjustments applied in memory."""
    spec = json.loads((DATA / "openapi-subset.json").read_text())
    extra = json.loads((DATA / "openapi-extra.json").read_text())
    for path, item in extra["paths"].items():
        spec["paths"].setdefault(path, {}).update(item)
    for kind, entries in extra["components"].items():
        spec["components"].setdefault(kind, {}).update(entries)
    for node in _walk(spec):
        # A `discriminator` whose mapping points at a list schema: openapi-core rejects every
        # directory listing until it is dropped.
        if "oneOf" in node and "discriminator" in node:
            del node["discriminator"]
        # `nullable: true` with an enum lacking null (e.g. check-run.conclusion).
        if node.get("nullable") is True and isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        # `nullable: true` beside `oneOf`/`anyOf` (e.g. commit.author): the validator only honours
        # `nullable` next to a `type`, so null gets a branch of its own.
        for keyword in ("oneOf", "anyOf"):
            if node.get("nullable") is True and isinstance(node.get(keyword), list) and "type" not in node:
                node[keyword] = [*node[keyword], {"type": "object", "nullable": True, "enum": [None]}]
    return spec


class RestConformance:
    def __init__(self) -> None:
        self.spec = load_rest_description()
        text = {media: (lambda raw: raw.decode() if isinstance(raw, bytes) else raw) for media in _TEXT_TYPES}
        config = Config(extra_media_type_deserializers={
            "application/vnd.github.object": json.loads,
            "application/vnd.github.v3.repository+json": json.loads,
            **text,
        })
        self.openapi = OpenAPI.from_dict(self.spec, config=config)
        self.described = {(method.upper(), path): op for path, item in self.spec["paths"].items()
                          for method, op in item.items() if isinstance(op, dict) and "operationId" in op}

    def operation_id(self, exchange: Exchange) -> str | None:
        op = self.described.get((exchange.method, exchange.route))
        return op["operationId"] if op else None

    def check(self, exchange: Exchange, allow_server_error: bool = False) -> list[str]:
        """Problems with one exchange; a 5xx is one unless `allow_server_error` or served on purpose as a fault
        (its body must still conform either way)."""
        if exchange.fault == "drop":
            return []  # excluded: the call was done and the connection closed unanswered, so no answer to check
        allow_server_error = allow_server_error or exchange.fault in ("500", "502")
        problems = self._check_headers(exchange)
        content_type = exchange.response_headers.get("Content-Type", "").split(";")[0].strip()
        if exchange.status >= 400 or not exchange.route:
            return problems + self._check_error(exchange, content_type, allow_server_error)
        if exchange.status == 304:
            problems += self._check_not_modified(exchange)
        key = (exchange.method, exchange.route)
        operation = self.described.get(key)
        if operation is None:
            if key in UNDESCRIBED:
                return problems
            return [*problems, f"{exchange.method} {exchange.route} is not in GitHub's description"]
        if content_type == "application/vnd.github.raw":
            return problems  # file bytes: GitHub's description has no schema for them
        if exchange.status == 304 and "304" not in operation["responses"]:
            # GitHub answers a conditional GET with 304 on every operation that sends an ETag (its REST guide,
            # "Use conditional requests if appropriate"), while its description lists 304 for only some GETs
            # (`pulls/get`, `issues/get`, ...; not `repos/get`). Such a 304 is held to what a 304 must be
            # (`_check_not_modified`, above); without a body, there is nothing else to check it against.
            return problems
        if exchange.status in (301, 307) and str(exchange.status) not in operation["responses"]:
            # GitHub redirects every operation on a renamed repository's old name (its REST guide, "Follow
            # redirects"), while its description lists 301 or 307 for only some (`repos/get`, `repos/update`,
            # ...). Such an answer is held to what GitHub's redirects are (`_check_redirect`).
            return problems + self._check_redirect(exchange)
        if str(exchange.status) not in operation["responses"]:
            return [*problems, f"status {exchange.status} is not one GitHub documents for {operation['operationId']}"]
        path = exchange.route
        for name, value in exchange.params.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        request = MockRequest(HOST, exchange.method, path, args=dict(parse_qsl(exchange.query)),
                              data=exchange.request_body or None,
                              headers={k.lower(): v for k, v in exchange.request_headers.items()})
        response = MockResponse(exchange.response_body, status_code=exchange.status,
                                headers=exchange.response_headers, content_type=content_type or "application/json")
        try:
            self.openapi.validate_response(request, response)
        except Exception as error:  # openapi-core raises a tree of validation errors
            return [*problems, f"{operation['operationId']}: {_describe(error)}"]
        return problems

    @staticmethod
    def _check_headers(exchange: Exchange) -> list[str]:
        wanted = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used",
                  "X-RateLimit-Resource", "X-GitHub-Request-Id")
        missing = [h for h in wanted if h not in exchange.response_headers]
        if exchange.method == "GET" and exchange.status in (200, 304) and "ETag" not in exchange.response_headers:
            missing.append("ETag")
        return [f"missing headers {missing}"] if missing else []

    @staticmethod
    def _check_not_modified(exchange: Exchange) -> list[str]:
        """A 304 answers a GET whose `If-None-Match` names the answer's ETag, and has no body."""
        problems = []
        if exchange.method not in ("GET", "HEAD"):
            problems.append(f"304 answered to {exchange.method}")
        asked = next((v for k, v in exchange.request_headers.items() if k.lower() == "if-none-match"), "")
        etag = exchange.response_headers.get("ETag", "").removeprefix("W/")
        named = {tag.strip().removeprefix("W/") for tag in asked.split(",")}
        if not etag or not ("*" in named or etag in named):
            problems.append(f"304 with ETag {etag!r} to If-None-Match {asked!r}")
        if exchange.response_body:
            problems.append("304 with a body")
        return problems

    def _check_redirect(self, exchange: Exchange) -> list[str]:
        """A redirect names where to go (`Location`, a repository by id) and says so in a basic-error body."""
        problems = []
        location = exchange.response_headers.get("Location", "")
        if "/repositories/" not in location:
            problems.append(f"redirect {exchange.status} to {location!r}, not to a repository by id")
        try:
            body = json.loads(exchange.response_body)
        except ValueError:
            return [*problems, f"redirect {exchange.status} without a JSON body"]
        schema = self.spec["components"]["schemas"]["basic-error"]
        problems += [f"redirect body: {e.message}" for e in jsonschema.Draft4Validator(schema).iter_errors(body)]
        if not isinstance(body, dict) or body.get("url") != location:
            problems.append(f"redirect body does not name its location: {body!r}")
        return problems

    def _check_error(self, exchange: Exchange, content_type: str, allow_server_error: bool) -> list[str]:
        if exchange.status >= 500 and not allow_server_error:
            return [f"server error {exchange.status}: {exchange.response_body[:300]!r}"]
        try:
            body = json.loads(exchange.response_body)
        except ValueError:
            return [f"error {exchange.status} without a JSON body"]
        schema = self.spec["components"]["schemas"]["validation-error" if exchange.status == 422 else "basic-error"]
        problems = [f"error body: {e.message}" for e in jsonschema.Draft4Validator(schema).iter_errors(body)]
        if not isinstance(body, dict) or not isinstance(body.get("message"), str) or "documentation_url" not in body:
            problems.append(f"error body lacks message/documentation_url: {body!r}")
        if content_type != "application/json":
            problems.append(f"error answered as {content_type}")
        return problems


def _describe(error: BaseException) -> str:
    """The few schema errors that say what is wrong (openapi-core nests them under its own)."""
    nested = list(getattr(error, "schema_errors", None) or [])
    if error.__cause__ is not None:
        nested += list(getattr(error.__cause__, "schema_errors", None) or [])
    if not nested:
        return f"{type(error).__name__}: {str(error.__cause__ or error)[:500]}"
    return "; ".join(f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message[:200]}"
                     for e in nested[:8])


class WebhookConformance:
    def __init__(self) -> None:
        webhooks = DATA / "webhooks"
        self.community = {path.name.removesuffix(".schema.json"): json.loads(path.read_text())
                          for path in sorted((webhooks / "schemas").glob("*.schema.json"))}
        self._community: dict[str, jsonschema.Draft7Validator] = {}
        official = json.loads((webhooks / "openapi-webhooks-subset.json").read_text())
        extra = json.loads((webhooks / "openapi-webhooks-extra.json").read_text())
        components = copy.deepcopy(official["components"])
        for kind, entries in extra["components"].items():
            components.setdefault(kind, {}).update(entries)
        self.official_components = components
        self._official: dict[str, jsonschema.Draft202012Validator] = {}

    def _community_validator(self, event: str, action: str | None) -> jsonschema.Draft7Validator | None:
        """The community schema of one event, narrowed to its action's variant for precise errors."""
        schema = self.community.get(event)
        if schema is None:
            return None
        key = f"{event}${action}"
        if key not in self._community:
            if action and key in schema["definitions"]:
                schema = {"$ref": f"#/definitions/{key}", "definitions": schema["definitions"]}
            self._community[key] = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
        return self._community[key]

    def official_name(self, event: str, action: str | None) -> str:
        name = f"webhook-{event.replace('_', '-')}"
        return f"{name}-{action.replace('_', '-')}" if action else name

    def check(self, delivery: SentDelivery) -> list[str]:
        problems = []
        headers = delivery.headers
        for header in ("X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID"):
            if header not in headers:
                problems.append(f"missing header {header}")
        if headers.get("X-GitHub-Event") != delivery.event:
            problems.append("X-GitHub-Event does not name the event")
        payload = json.loads(delivery.body)
        label = f"{delivery.event}.{delivery.action}" if delivery.action else delivery.event
        community = self._community_validator(delivery.event, delivery.action)
        if community is not None:
            problems += [f"{label} (community schema) {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                         for e in community.iter_errors(payload)]
        name = self.official_name(delivery.event, delivery.action)
        if name not in self.official_components["schemas"]:
            return [*problems, f"{label}: GitHub's webhook descriptions have no {name}"]
        if name not in self._official:
            self._official[name] = jsonschema.Draft202012Validator(
                {"$ref": f"#/components/schemas/{name}", "components": self.official_components},
                format_checker=jsonschema.FormatChecker())
        problems += [f"{label} ({name}) {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                     for e in self._official[name].iter_errors(payload)]
        return problems
