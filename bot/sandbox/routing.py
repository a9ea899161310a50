"""REST plumbing shared by every endpoint: the request and response values, routes, pagination.

A handler may declare what it needs before it runs as FastAPI's `Depends` does: a parameter whose
default is `Depends(resolve)` gets `resolve(request)`, worked out before the handler's body (so the
repository a route names, checked for the caller's access and answered 404 when missing, is one
dependency in `endpoints/common.py` rather than the opening lines of every route).

Routes are written as in GitHub's REST description (`/repos/{owner}/{repo}/pulls/{pull_number}`);
a parameter written `{path+}` takes the rest of the path, slashes included, because `{ref}` and
`{path}` values (`heads/main`, `dir/file.txt`) contain them. Parameters are percent-decoded after
matching, so a client may also send such a slash encoded.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode

from .auth import Principal
from .errors import ApiError, invalid

T = TypeVar("T")
H = TypeVar("H", bound=Callable[..., "Response"])

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str  # below the API root, still percent-encoded, e.g. /repos/acme/platform/pulls
    query: dict[str, str]
    headers: Message
    raw_body: bytes
    principal: Principal
    base_url: str  # the API root URL, for Link headers
    forge: Any = None  # the SandboxGitHub serving this request (typed Any: routing must not import it)
    params: dict[str, str] = field(default_factory=dict)
    route: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The JSON body (None when empty); 400 as GitHub answers when it does not parse."""
        if not self.raw_body.strip():
            return None
        try:
            return json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Problems parsing JSON") from exc

    def body(self) -> dict[str, Any]:
        """The JSON body as an object ({} when empty)."""
        value = self.json()
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ApiError(400, "Problems parsing JSON")
        return value

    def int_param(self, name: str) -> int:
        try:
            return int(self.params[name])
        except ValueError as exc:
            raise ApiError(404, "Not Found") from exc

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.query.get(name)
        return default if value is None else value.lower() in ("1", "true", "yes")

    def paginate(self, items: Sequence[T], max_total: int | None = None) -> list[T]:
        """One page of `items` per `page`/`per_page` (max 100), with GitHub's `Link` header."""
        try:
            per_page = int(self.query.get("per_page", DEFAULT_PER_PAGE))
            page = int(self.query.get("page", 1))
        except ValueError as exc:
            raise invalid("", "per_page", "invalid") from exc
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = max(page, 1)
        if max_total is not None:
            items = items[:max_total]
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []

        def url(number: int) -> str:
            query = {**self.query, "per_page": str(per_page), "page": str(number)}
            return f"{self.base_url}{self.path}?{urlencode(query)}"

        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links = [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"', *links]
        if links:
            self.response_headers["Link"] = ", ".join(links)
        return list(items[(page - 1) * per_page: page * per_page])


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class _Dependency:
    resolve: Callable[[Request], Any]


def Depends(resolve: Callable[[Request], Any]) -> Any:
    """Mark a handler parameter as resolved from the request before the handler runs (named after
    FastAPI's `Depends`, which it mirrors).

    Typed `Any`, as FastAPI's is, so `repo: Repo = Depends(...)` type-checks as the value it stands for.
    """
    return _Dependency(resolve)


def _with_dependencies(handler: Callable[..., Response]) -> Handler:
    """`handler` as a plain `Handler`: its `Depends` parameters resolved, in order, from the request."""
    needs = [(name, param.default.resolve) for name, param in inspect.signature(handler).parameters.items()
             if isinstance(param.default, _Dependency)]
    if not needs:
        return handler

    def call(request: Request) -> Response:
        return handler(request, **{name: resolve(request) for name, resolve in needs})

    return call


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


class Routes:
    """A list of routes, filled by decorators in each endpoint module."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str) -> Callable[[H], H]:
        def register(handler: H) -> H:
            regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", template)
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
            self.routes.append(Route(method, template.replace("+}", "}"), re.compile(f"^{regex}$"),
                                     _with_dependencies(handler)))
            return handler

        return register

    def get(self, template: str) -> Callable[[H], H]:
        return self.add("GET", template)

    def post(self, template: str) -> Callable[[H], H]:
        return self.add("POST", template)

    def put(self, template: str) -> Callable[[H], H]:
        return self.add("PUT", template)

    def patch(self, template: str) -> Callable[[H], H]:
        return self.add("PATCH", template)

    def delete(self, template: str) -> Callable[[H], H]:
        return self.add("DELETE", template)

    def extend(self, other: Routes) -> None:
        self.routes.extend(other.routes)

    def _ordered(self) -> list[Route]:
        # Fewer parameters first, then longer literal text: `/secrets/public-key` before
        # `/secrets/{secret_name}`, `/commits/{ref}/status` before `/commits/{ref}`.
        return sorted(self.routes, key=lambda r: (r.template.count("{"),
                                                  -len(re.sub(r"\{[^}]+\}", "", r.template))))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        if len(path) > 1:
            path = path.rstrip("/")  # GitHub answers `/contents/` as `/contents`
        # Literal segments win over parameters (`/check-runs/{id}` vs `/check-runs/{id}/rerequest`
        # is decided by anchoring; `public-key` vs `{secret_name}` by trying literal routes first).
        for route in self._ordered():
            if route.method != method and not (method == "HEAD" and route.method == "GET"):
                continue
            found = route.pattern.match(path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None


def parse_query(raw: str) -> dict[str, str]:
    return dict(parse_qsl(raw, keep_blank_values=True))


def no_content() -> Response:
    return Response(204, b"")
