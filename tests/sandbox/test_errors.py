"""Bad requests get GitHub's answers: status codes and error bodies, never a traceback."""

from __future__ import annotations

import pytest
import requests

from bot.sandbox import Sandbox
from bot.sandbox.github import SandboxGitHub

from .conftest import Cast


def call(forge: Sandbox, method: str, path: str, token: str | None = None, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.request(method, f"{forge.api_url}{path}", headers=headers, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_an_unknown_route_is_not_found(forge: Sandbox, cast: Cast) -> None:
    answer = call(forge, "GET", "/repos/acme/platform/no-such-thing", cast.alice.token)
    assert answer.status_code == 404
    assert answer.json()["message"] == "Not Found"
    assert answer.json()["documentation_url"].startswith("https://docs.github.com")


def test_a_repository_nobody_may_see_is_not_found(forge: Sandbox, cast: Cast) -> None:
    forge.create_repo("acme", "secret", private=True, by="alice")
    stranger = forge.create_user("mallory")
    assert call(forge, "GET", "/repos/acme/secret", stranger.token).status_code == 404
    assert call(forge, "GET", "/repos/acme/secret").status_code == 404


def test_malformed_json_is_a_bad_request(forge: Sandbox, cast: Cast) -> None:
    answer = call(forge, "POST", "/repos/acme/platform/labels", cast.alice.token, data=b"{not json")
    assert answer.status_code == 400
    assert answer.json()["message"] == "Problems parsing JSON"


def test_an_invalid_field_is_unprocessable(forge: Sandbox, cast: Cast) -> None:
    answer = call(forge, "POST", "/repos/acme/platform/labels", cast.alice.token,
                  json={"name": "foo", "color": "invalid"})
    assert answer.status_code == 422
    body = answer.json()
    assert body["message"] == "Validation Failed"
    assert body["errors"] == [{"resource": "Label", "field": "color", "code": "invalid"}]


def test_a_missing_token_is_refused_where_one_is_needed(forge: Sandbox, cast: Cast) -> None:
    answer = call(forge, "GET", "/user")
    assert answer.status_code == 401
    assert answer.json()["message"] == "Requires authentication"


def test_a_wrong_token_is_refused(forge: Sandbox, cast: Cast) -> None:
    answer = call(forge, "GET", "/repos/acme/platform", "ghp_" + "0" * 36)
    assert answer.status_code == 401
    assert answer.json()["message"] == "Bad credentials"


def test_every_answer_carries_rate_limit_headers(forge: Sandbox, cast: Cast) -> None:
    first = call(forge, "GET", "/repos/acme/platform", cast.alice.token)
    second = call(forge, "GET", "/repos/acme/platform", cast.alice.token)
    assert first.headers["X-RateLimit-Limit"] == "5000"
    assert int(second.headers["X-RateLimit-Remaining"]) == int(first.headers["X-RateLimit-Remaining"]) - 1
    assert second.headers["X-RateLimit-Resource"] == "core"
    assert int(second.headers["X-RateLimit-Used"]) == int(first.headers["X-RateLimit-Used"]) + 1


@pytest.mark.sandbox_expects_server_error
def test_a_crash_is_answered_500_without_a_traceback(forge: Sandbox, cast: Cast,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(SandboxGitHub, "create_label", explode)
    answer = call(forge, "POST", "/repos/acme/platform/labels", cast.alice.token, json={"name": "x"})
    assert answer.status_code == 500
    assert answer.json()["message"] == "Server Error"
    assert "secret internals" not in answer.text and "Traceback" not in answer.text
