"""The sandbox's own administration API (not GitHub's), for the `paved sandbox` CLI.

`POST /_sandbox/call/{operation}` with the operation's keyword arguments as a JSON object runs one
`ForgeHandle` operation (create a user, an org, a repository from a folder, install an app, open a
pull request as someone, ...) and answers its result as JSON. Only the admin token written to the
data folder (`admin-token`) is accepted. A folder to import is read by the server, so the CLI and
the server must share a filesystem (they run on the same machine).

A client tested against the sandbox reads what it spent of GitHub's rate limit here: `rate_limits` (every
caller's hour: `caller`, `limit`, `used`, `remaining`, `reset`, `refused`), `rate_limit` with `{"caller":
"installation:ID"}` (or `user:LOGIN`), `set_rate_limit` with `{"limit": N}` and `reset_rate_limits`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ApiError
from ..handle import ForgeHandle
from ..routing import Request, Response, Routes

routes = Routes()

OPERATIONS = frozenset({
    "create_user", "create_token", "create_org", "add_member", "create_team", "add_team_repo", "create_repo",
    "create_repo_from_folder", "add_collaborator", "branch_sha", "push_files", "create_branch", "create_app",
    "set_app_webhook", "install_app", "installation_token", "register_webhook", "deliveries", "redeliver",
    "open_pull_request", "pull_request", "close_pull_request", "reopen_pull_request", "comment", "edit_comment",
    "delete_comment", "comments", "approve", "request_changes", "merge", "rerequest_check_run",
    "require_merge_queue", "enqueue_pull_request", "merge_queue", "record_workflow_run", "deploy",
    "rate_limits", "rate_limit", "set_rate_limit", "reset_rate_limits",
})


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@routes.post("/_sandbox/call/{operation}")
def call(request: Request) -> Response:
    operation = request.params["operation"]
    if operation not in OPERATIONS:
        raise ApiError(404, f"Unknown operation {operation}")
    arguments = request.body()
    handle = ForgeHandle(request.forge)
    try:
        result = getattr(handle, operation)(**arguments)
    except TypeError as exc:
        raise ApiError(422, f"Bad arguments for {operation}: {exc}") from exc
    return Response(200, {"result": _jsonable(result)})
