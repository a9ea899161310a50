"""The sandbox's one exception: an answer GitHub would give, as data.

Every failure a client can cause is raised as `ApiError` somewhere below the HTTP layer and turned
into GitHub's error body (`message`, `errors`, `documentation_url`) by the server; anything else is a
bug, logged and answered with a GitHub-shaped 500.
"""

from __future__ import annotations

from typing import Any

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    """Raised when a request must be refused with a GitHub status code and error body."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        documentation_url: str = DOCS,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = errors
        self.documentation_url = documentation_url
        self.headers = headers or {}
        self.url = url  # where a redirect leads (GitHub's redirect bodies name it)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        if self.url is not None:
            body["url"] = self.url
        body["documentation_url"] = self.documentation_url
        body["status"] = str(self.status)
        return body


def not_found() -> ApiError:
    """GitHub's answer for anything the caller may not see, whether or not it exists."""
    return ApiError(404, "Not Found")


REDIRECTS_DOCS = "https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#follow-redirects"


def moved(method: str, location: str) -> ApiError:
    """GitHub's answer for a repository asked for by a name it had before it was renamed: `301 Moved
    Permanently` for a read, `307 Temporary Redirect` for anything else (a client repeats the request at
    `location`, which names the repository by id)."""
    status, message = (301, "Moved Permanently") if method in ("GET", "HEAD") else (307, "Temporary Redirect")
    return ApiError(status, message, documentation_url=REDIRECTS_DOCS, headers={"Location": location}, url=location)


def invalid(resource: str, field: str, code: str = "invalid", message: str | None = None) -> ApiError:
    """A 422 "Validation Failed" naming the offending field, as GitHub reports it."""
    error: dict[str, Any] = {"resource": resource, "field": field, "code": code}
    if message:
        error["message"] = message
    return ApiError(422, "Validation Failed", errors=[error])


def unprocessable(message: str) -> ApiError:
    """A 422 with a plain message (GitHub uses these where no single field is at fault)."""
    return ApiError(422, message)
