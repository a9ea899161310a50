"""The conformance checks themselves: they accept GitHub's own examples and reject broken answers.

Without these, a checker that accepts everything would let the whole suite pass.
"""

from __future__ import annotations

import json

import pytest

from bot.sandbox.recording import Exchange, SentDelivery
from tests.conformance import DATA, RestConformance, WebhookConformance

INDEX = json.loads((DATA / "webhooks" / "index.json").read_text())["examples"]
VALID_EXAMPLES = [e for e in INDEX if all(e["valid_against"].values())]
HEADERS = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "0",
           "X-RateLimit-Used": "1", "X-RateLimit-Resource": "core", "X-GitHub-Request-Id": "1",
           "Content-Type": "application/json; charset=utf-8", "ETag": 'W/"1"'}


@pytest.fixture(scope="module")
def rest() -> RestConformance:
    return RestConformance()


@pytest.fixture(scope="module")
def webhooks() -> WebhookConformance:
    return WebhookConformance()


def delivery_of(example: dict[str, str]) -> SentDelivery:
    body = (DATA / "webhooks" / example["file"]).read_bytes()
    headers = {"X-GitHub-Event": example["event"], "X-GitHub-Delivery": "0", "X-GitHub-Hook-ID": "1"}
    return SentDelivery(example["event"], example["action"], headers, body, "http://127.0.0.1/")


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda e: e["file"])
def test_githubs_own_valid_payloads_pass_the_webhook_check(webhooks: WebhookConformance,
                                                           example: dict[str, str]) -> None:
    assert webhooks.check(delivery_of(example)) == []


def test_a_payload_missing_a_required_field_fails_the_webhook_check(webhooks: WebhookConformance) -> None:
    example = next(e for e in VALID_EXAMPLES if e["event"] == "pull_request" and e["action"] == "opened")
    payload = json.loads((DATA / "webhooks" / example["file"]).read_text())
    del payload["pull_request"]["head"]
    broken = SentDelivery("pull_request", "opened", delivery_of(example).headers, json.dumps(payload).encode(), "")
    assert any("head" in problem for problem in webhooks.check(broken))


def test_an_event_no_description_covers_fails_the_webhook_check(webhooks: WebhookConformance) -> None:
    made_up = SentDelivery("deployment", "created", {"X-GitHub-Event": "deployment", "X-GitHub-Delivery": "0",
                                                     "X-GitHub-Hook-ID": "1"}, b"{}", "")
    assert webhooks.check(made_up)


def exchange(route: str, params: dict[str, str], body: object, status: int = 200, method: str = "GET") -> Exchange:
    path = route
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    return Exchange(method, path, "", route, params, {}, b"", status, HEADERS, json.dumps(body).encode(), 0.0)


def test_a_repository_missing_required_fields_fails_the_rest_check(rest: RestConformance) -> None:
    problems = rest.check(exchange("/repos/{owner}/{repo}", {"owner": "acme", "repo": "platform"},
                                   {"id": 1, "name": "platform"}))
    assert problems and "is a required property" in problems[0]


def test_a_recorded_github_answer_passes_the_rest_check(rest: RestConformance) -> None:
    recorded = json.loads((DATA / "rest-fixtures" / "create-status.json").read_text())[0]
    sha = "0" * 39 + "1"
    created = exchange("/repos/{owner}/{repo}/statuses/{sha}", {"owner": "o", "repo": "r", "sha": sha},
                       recorded["response"], status=201, method="POST")
    assert rest.check(created) == []


def test_an_undocumented_success_status_fails_the_rest_check(rest: RestConformance) -> None:
    recorded = json.loads((DATA / "rest-fixtures" / "create-status.json").read_text())[0]
    wrong = exchange("/repos/{owner}/{repo}/statuses/{sha}", {"owner": "o", "repo": "r", "sha": "0" * 40},
                     recorded["response"], status=200, method="POST")
    assert any("status 200" in problem for problem in rest.check(wrong))


def test_an_error_without_githubs_body_fails_the_rest_check(rest: RestConformance) -> None:
    bare = exchange("/repos/{owner}/{repo}", {"owner": "a", "repo": "b"}, {"error": "nope"}, status=404)
    assert rest.check(bare)


def test_missing_rate_limit_headers_fail_the_rest_check(rest: RestConformance) -> None:
    answer = Exchange("GET", "/nope", "", "", {}, {}, b"", 404, {"Content-Type": "application/json"},
                      b'{"message": "Not Found", "documentation_url": "x"}', 0.0)
    assert any("X-RateLimit-Limit" in problem for problem in rest.check(answer))


def not_modified(if_none_match: str, etag: str = 'W/"1"', body: bytes = b"") -> Exchange:
    headers = {k: v for k, v in HEADERS.items() if k != "Content-Type"} | {"ETag": etag}
    return Exchange("GET", "/repos/acme/platform", "", "/repos/{owner}/{repo}", {"owner": "acme", "repo": "platform"},
                    {"If-None-Match": if_none_match}, b"", 304, headers, body, 0.0)


def test_a_304_answering_the_etag_asked_for_passes_the_rest_check(rest: RestConformance) -> None:
    assert rest.check(not_modified('W/"1"')) == []


def test_a_304_to_an_etag_not_asked_for_fails_the_rest_check(rest: RestConformance) -> None:
    assert any("If-None-Match" in problem for problem in rest.check(not_modified('W/"2"')))


def test_a_304_with_a_body_fails_the_rest_check(rest: RestConformance) -> None:
    assert "304 with a body" in rest.check(not_modified('W/"1"', body=b"{}"))


def test_a_get_answered_without_an_etag_fails_the_rest_check(rest: RestConformance) -> None:
    recorded = json.loads((DATA / "rest-fixtures" / "get-repository.json").read_text())[0]["response"]
    answer = exchange("/repos/{owner}/{repo}", {"owner": "o", "repo": "r"}, recorded)
    untagged = Exchange(answer.method, answer.path, "", answer.route, answer.params, {}, b"", 200,
                        {k: v for k, v in HEADERS.items() if k != "ETag"}, answer.response_body, 0.0)
    assert any("ETag" in problem for problem in rest.check(untagged))
