"""A route's dependencies (`routing.Depends`) are worked out from the request before its body runs."""

from __future__ import annotations

from email.message import Message

import pytest

from bot.sandbox.auth import ANONYMOUS
from bot.sandbox.errors import ApiError
from bot.sandbox.routing import Depends, Request, Response, Routes


def _request(path: str) -> Request:
    return Request("GET", path, {}, Message(), b"", ANONYMOUS, "http://forge/api/v3")


def _owner(request: Request) -> str:
    if request.params["owner"] == "nobody":
        raise ApiError(404, "Not Found")
    return request.params["owner"].upper()


routes = Routes()
ran: list[str] = []


@routes.get("/repos/{owner}/{repo}")
def get_repo(request: Request, owner: str = Depends(_owner)) -> Response:
    ran.append(owner)
    return Response(200, {"owner": owner, "repo": request.params["repo"]})


def _call(path: str) -> Response:
    found = routes.match("GET", path)
    assert found is not None
    route, params = found
    request = _request(path)
    request.params = params
    return route.handler(request)


def test_a_dependency_is_resolved_from_the_request_and_handed_to_the_route() -> None:
    assert _call("/repos/acme/platform").body == {"owner": "ACME", "repo": "platform"}


def test_a_failing_dependency_answers_before_the_route_runs() -> None:
    ran.clear()
    with pytest.raises(ApiError) as failed:
        _call("/repos/nobody/platform")
    assert failed.value.status == 404
    assert ran == []


def test_the_decorated_function_stays_callable_as_written() -> None:
    request = _request("/repos/a/b")
    request.params = {"owner": "a", "repo": "b"}
    assert get_repo(request, owner="X").body == {"owner": "X", "repo": "b"}
