"""What every endpoint module needs to reach the sandbox's GitHub and what a request's path names.

`repository(need)` and `organization` are route dependencies (`routing.Depends`): a route that acts on
`/repos/{owner}/{repo}` or `/orgs/{org}` declares `repo: Repo = Depends(repository(NEED))` or
`org: Account = Depends(organization)`, and gets the repository or organization, found, checked for the
caller's access and answered 404 when missing, before its body runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from ..auth import Need
from ..errors import ApiError, invalid, moved, not_found
from ..github import READ_META, SandboxGitHub
from ..model import StoredAccount, StoredRepo, role_rank
from ..routing import Request


def forge_of(request: Request) -> SandboxGitHub:
    forge: SandboxGitHub = request.forge
    return forge


def repo_of(request: Request, need: Need = READ_META) -> StoredRepo:
    """The `{owner}/{repo}` of the path, if the caller may do `need` on it.

    A name the repository had before it was renamed is answered with GitHub's redirect to the same path
    under `/repositories/ID` (kept with its query), when the caller may see the repository; else 404.
    """
    forge = forge_of(request)
    owner, name = request.params["owner"], request.params["repo"]
    try:
        return forge.repo_for(request.principal, owner, name, need)
    except ApiError as error:
        renamed = forge.moved_repo(owner, name) if error.status == 404 else None
        if renamed is None or not forge.access.can_see(request.principal, renamed):
            raise
        rest = request.path.split("/", 4)[4:]  # what follows /repos/OWNER/NAME
        location = f"{forge.urls.api}/repositories/{renamed.id}" + "".join(f"/{part}" for part in rest)
        if request.query:
            location += f"?{urlencode(request.query)}"
        raise moved(request.method, location) from None


def repository(need: Need = READ_META) -> Callable[[Request], StoredRepo]:
    """For `Depends`: the `{owner}/{repo}` of the path, if the caller may do `need` on it (404 if they may
    not even see it)."""
    return lambda request: repo_of(request, need)


def organization(request: Request) -> StoredAccount:
    """For `Depends`: the `{org}` of the path (404 unless it is an organization)."""
    org = forge_of(request).account(request.params["org"])
    if org is None or org.type != "Organization":
        raise not_found()
    return org


def string_field(body: dict[str, Any], name: str, resource: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(resource, name, "missing_field")
        return None
    if not isinstance(value, str):
        raise invalid(resource, name, "invalid")
    return value


def permissions_json(forge: SandboxGitHub, request: Request, repo: StoredRepo) -> dict[str, bool]:
    """The `permissions` object GitHub adds to a repository for the caller."""
    principal = request.principal
    if principal.kind == "user" and principal.account is not None:
        rank = role_rank(forge.access.role_of(principal.account, repo) or ("read" if not repo.private else None))
    elif principal.kind == "installation":
        rank = 3 if forge.access.permission_level(principal, "contents") >= 2 else 1
    else:
        rank = 1 if not repo.private else 0
    return {"admin": rank >= 5, "maintain": rank >= 4, "push": rank >= 3, "triage": rank >= 2, "pull": rank >= 1}
