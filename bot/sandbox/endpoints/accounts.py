"""Users, organizations, GitHub Apps and installations, teams."""

from __future__ import annotations

from typing import Any

from ..auth import Principal, refused
from ..errors import ApiError, invalid, not_found
from ..model import (
    StoredAccount,
    StoredInstallation,
    StoredMembership,
    StoredRepo,
    StoredTeam,
    StoredTeamRepo,
    role_rank,
)
from ..routing import Depends, Request, Response, Routes, no_content
from .common import forge_of, organization, permissions_json, repository, string_field

routes = Routes()

_TEAM_PERMISSION = {"read": "pull", "triage": "triage", "write": "push", "maintain": "maintain", "admin": "admin"}


# -- users and organizations ------------------------------------------------------------------------------

@routes.get("/user")
def get_authenticated_user(request: Request) -> Response:
    principal = request.principal
    if principal.kind == "anonymous":
        raise ApiError(401, "Requires authentication")
    if principal.kind != "user" or principal.account is None:
        raise ApiError(403, "Resource not accessible by integration")
    return Response(200, forge_of(request).render.user_full(principal.account, private=True))


@routes.get("/users/{username}")
def get_user(request: Request) -> Response:
    forge = forge_of(request)
    account = forge.account_or_404(request.params["username"])
    if account.type == "Organization":
        body = forge.render.user_full(account)
        body["type"] = "Organization"
        return Response(200, body)
    return Response(200, forge.render.user_full(account))


@routes.get("/orgs/{org}")
def get_org(request: Request) -> Response:
    forge = forge_of(request)
    org = forge.account_or_404(request.params["org"])
    if org.type != "Organization":
        raise not_found()
    return Response(200, forge.render.org_full(org, for_owner=_is_org_owner(request, org)))


def _is_org_owner(request: Request, org: StoredAccount) -> bool:
    account = request.principal.account
    if request.principal.kind != "user" or account is None:
        return False
    return account.site_admin or forge_of(request).store.first(
        StoredMembership, lambda m: m.org_id == org.id and m.user_id == account.id and m.role == "admin") is not None


@routes.get("/orgs/{org}/repos")
def list_org_repos(request: Request, org: StoredAccount = Depends(organization)) -> Response:
    forge = forge_of(request)
    repos = [r for r in forge.store.all(StoredRepo, lambda r: r.owner_id == org.id)
             if forge.access.can_see(request.principal, r)]
    kind = request.query.get("type", "all")
    if kind in ("public", "private"):
        repos = [r for r in repos if r.private == (kind == "private")]
    return Response(200, [forge.render.repo(r, permissions_json(forge, request, r), full=False)
                          for r in request.paginate(repos)])


def _create_repo(request: Request, owner: StoredAccount) -> Response:
    forge = forge_of(request)
    # GitHub asks what the token may do before it reads the body, so an app without the permission is
    # refused as such (and told which one), whatever it sent.
    if request.principal.kind == "installation" and \
            forge.access.permission_level(request.principal, "administration") < 2:
        raise refused("administration", "write")
    body = request.body()
    name = string_field(body, "name", "Repository", required=True)
    assert name is not None
    visibility = body.get("visibility")
    if visibility is not None and visibility not in ("public", "private", "internal"):
        raise invalid("Repository", "visibility", "invalid")
    private = body.get("private", visibility in ("private", "internal"))
    if not isinstance(private, bool):
        raise invalid("Repository", "private", "invalid")
    properties = body.get("custom_properties")
    if properties is not None and not isinstance(properties, dict):
        raise invalid("Repository", "custom_properties", "invalid")
    repo = forge.create_repo(request.principal, owner, name, private=private,
                             description=string_field(body, "description", "Repository"),
                             auto_init=bool(body.get("auto_init", False)), internal=visibility == "internal",
                             custom_properties=properties)
    return Response(201, forge.render.repo(repo, permissions_json(forge, request, repo)))


@routes.post("/orgs/{org}/repos")
def create_org_repo(request: Request, org: StoredAccount = Depends(organization)) -> Response:
    return _create_repo(request, org)


@routes.post("/user/repos")
def create_user_repo(request: Request) -> Response:
    principal = request.principal
    if principal.kind == "anonymous":
        raise ApiError(401, "Requires authentication")
    if principal.kind != "user" or principal.account is None:
        raise ApiError(403, "Resource not accessible by integration")
    return _create_repo(request, principal.account)


@routes.get("/rate_limit")
def rate_limit(request: Request) -> Response:
    # The server fills the same numbers into the headers; read them back from there.
    limit = int(request.response_headers.get("X-RateLimit-Limit", "5000"))
    remaining = int(request.response_headers.get("X-RateLimit-Remaining", str(limit)))
    reset = int(request.response_headers.get("X-RateLimit-Reset", "0"))
    core = {"limit": limit, "remaining": remaining, "reset": reset, "used": limit - remaining}
    other = {"limit": limit, "remaining": limit, "reset": reset, "used": 0}
    return Response(200, {"resources": {"core": core, "search": other, "graphql": other}, "rate": core})


# -- apps and installations ---------------------------------------------------------------------------------

def _require_jwt(principal: Principal) -> None:
    if principal.kind != "app" or principal.app is None:
        raise ApiError(401, "A JSON web token could not be decoded")


@routes.get("/app")
def get_app(request: Request) -> Response:
    principal = request.principal
    if principal.kind == "installation" and principal.app is not None:
        return Response(200, forge_of(request).render.app(principal.app))
    _require_jwt(principal)
    forge = forge_of(request)
    body = forge.render.app(principal.app)
    assert body is not None
    body["installations_count"] = len(forge.store.all(StoredInstallation, lambda i: i.app_id == principal.app.id))  # type: ignore[union-attr]
    return Response(200, body)


@routes.get("/app/installations")
def list_installations(request: Request) -> Response:
    _require_jwt(request.principal)
    forge = forge_of(request)
    app = request.principal.app
    assert app is not None
    found = forge.store.all(StoredInstallation, lambda i: i.app_id == app.id)
    return Response(200, [forge.render.installation(i) for i in request.paginate(found)])


def _installation(request: Request) -> StoredInstallation:
    _require_jwt(request.principal)
    forge = forge_of(request)
    installation = forge.store.get(StoredInstallation, request.int_param("installation_id"))
    app = request.principal.app
    if installation is None or app is None or installation.app_id != app.id:
        raise not_found()
    return installation


@routes.get("/app/installations/{installation_id}")
def get_installation(request: Request) -> Response:
    return Response(200, forge_of(request).render.installation(_installation(request)))


@routes.post("/app/installations/{installation_id}/access_tokens")
def create_installation_token(request: Request) -> Response:
    forge = forge_of(request)
    installation = _installation(request)
    body = request.body()
    for key, kind in (("repositories", list), ("repository_ids", list), ("permissions", dict)):
        if key in body and not isinstance(body[key], kind):
            raise invalid("InstallationToken", key, "invalid")
    token, repos = forge.installation_token(request.principal, installation.id, body.get("repositories"),
                                            body.get("repository_ids"), body.get("permissions"))
    answer: dict[str, Any] = {
        "token": token.token,
        "expires_at": token.expires_at,
        "permissions": token.permissions,
        "repository_selection": "selected" if token.repository_ids is not None else installation.repository_selection,
    }
    if token.repository_ids is not None or installation.repository_selection == "selected":
        answer["repositories"] = [forge.render.repo(r, full=False) for r in repos]
    return Response(201, answer)


@routes.get("/repos/{owner}/{repo}/installation")
def get_repo_installation(request: Request) -> Response:
    _require_jwt(request.principal)
    forge = forge_of(request)
    repo = forge.find_repo(request.params["owner"], request.params["repo"])
    app = request.principal.app
    assert app is not None
    if repo is None:
        raise not_found()
    installation = forge.store.first(StoredInstallation, lambda i: i.app_id == app.id and i.account_id == repo.owner_id
                                     and (i.repository_selection == "all" or repo.id in i.repository_ids))
    if installation is None:
        raise not_found()
    return Response(200, forge.render.installation(installation))


@routes.get("/installation/repositories")
def list_installation_repos(request: Request) -> Response:
    principal = request.principal
    if principal.kind != "installation" or principal.installation is None:
        raise ApiError(403, "This endpoint can only be accessed with an installation access token")
    forge = forge_of(request)
    repos = [r for r in forge.store.all(StoredRepo) if forge.access.installation_covers(principal, r)]
    page = request.paginate(repos)
    return Response(200, {
        "total_count": len(repos),
        "repository_selection": principal.installation.repository_selection,
        "repositories": [forge.render.repo(r, permissions_json(forge, request, r), full=False) for r in page],
    })


# -- teams ---------------------------------------------------------------------------------------------------

def _team_by_slug(request: Request) -> StoredTeam:
    forge = forge_of(request)
    org = organization(request)
    slug = request.params["team_slug"].lower()
    team = forge.store.first(StoredTeam, lambda t: t.org_id == org.id and t.slug == slug)
    if team is None or not _may_see_org(request, org):
        raise not_found()
    return team


def _team_by_id(request: Request) -> StoredTeam:
    forge = forge_of(request)
    team = forge.store.get(StoredTeam, request.int_param("team_id"))
    if team is None:
        raise not_found()
    org = forge.store.get(StoredAccount, team.org_id)
    if org is None or not _may_see_org(request, org):
        raise not_found()
    return team


def _may_see_org(request: Request, org: StoredAccount) -> bool:
    principal = request.principal
    if principal.is_site_admin:
        return True
    if principal.kind == "installation":
        return principal.installation is not None and principal.installation.account_id == org.id
    account = principal.account
    if account is None:
        return False
    return forge_of(request).store.first(StoredMembership,
                                         lambda m: m.org_id == org.id and m.user_id == account.id) is not None


@routes.get("/orgs/{org}/teams")
def list_teams(request: Request, org: StoredAccount = Depends(organization)) -> Response:
    forge = forge_of(request)
    if not _may_see_org(request, org):
        raise ApiError(403, "You must be a member of this organization to list its teams.")
    teams = forge.store.all(StoredTeam, lambda t: t.org_id == org.id)
    return Response(200, [forge.render.team(t) for t in request.paginate(teams)])


@routes.post("/orgs/{org}/teams")
def create_team(request: Request, org: StoredAccount = Depends(organization)) -> Response:
    forge = forge_of(request)
    if request.principal.kind == "installation":
        forge.require_org_admin(request.principal, org)  # before the body, as GitHub asks
    body = request.body()
    name = string_field(body, "name", "Team", required=True)
    assert name is not None
    members = []
    for login in body.get("maintainers") or []:
        account = forge.account(str(login))
        if account is None:
            raise invalid("Team", "maintainers", "invalid")
        members.append(account)
    privacy = body.get("privacy") or "closed"
    if privacy not in ("secret", "closed"):
        raise invalid("Team", "privacy", "invalid")
    team = forge.create_team(request.principal, org, name, string_field(body, "description", "Team"), privacy,
                             maintainers=members, parent_id=body.get("parent_team_id"))
    if isinstance(body.get("permission"), str) and body["permission"] in ("pull", "push"):
        team.permission = body["permission"]
        forge.store.put(team)
    return Response(201, forge.render.team(team, full=True))


@routes.get("/orgs/{org}/teams/{team_slug}")
def get_team(request: Request) -> Response:
    return Response(200, forge_of(request).render.team(_team_by_slug(request), full=True))


@routes.get("/teams/{team_id}")
def get_team_legacy(request: Request) -> Response:
    return Response(200, forge_of(request).render.team(_team_by_id(request), full=True))


@routes.patch("/orgs/{org}/teams/{team_slug}")
def update_team(request: Request) -> Response:
    return _update_team(request, _team_by_slug(request))


@routes.patch("/teams/{team_id}")
def update_team_legacy(request: Request) -> Response:
    return _update_team(request, _team_by_id(request))


def _update_team(request: Request, team: StoredTeam) -> Response:
    forge = forge_of(request)
    return Response(200, forge.render.team(forge.update_team(request.principal, team, request.body()), full=True))


@routes.delete("/orgs/{org}/teams/{team_slug}")
def delete_team(request: Request) -> Response:
    forge_of(request).delete_team(request.principal, _team_by_slug(request))
    return no_content()


@routes.delete("/teams/{team_id}")
def delete_team_legacy(request: Request) -> Response:
    forge_of(request).delete_team(request.principal, _team_by_id(request))
    return no_content()


# -- team members ----------------------------------------------------------------------------------------------

def _list_members(request: Request, team: StoredTeam) -> Response:
    forge = forge_of(request)
    role = request.query.get("role", "all")
    if role not in ("all", "member", "maintainer"):
        raise invalid("Team", "role")
    people = forge.team_members(team, role)
    return Response(200, [forge.render.user(account) for account, _ in request.paginate(people)])


@routes.get("/orgs/{org}/teams/{team_slug}/members")
def list_team_members(request: Request) -> Response:
    return _list_members(request, _team_by_slug(request))


@routes.get("/teams/{team_id}/members")
def list_team_members_legacy(request: Request) -> Response:
    return _list_members(request, _team_by_id(request))


def _membership(request: Request, team: StoredTeam) -> Response:
    forge = forge_of(request)
    user = forge.account_or_404(request.params["username"])
    role = next((role for account, role in forge.team_members(team) if account.id == user.id), None)
    if role is None:
        raise not_found()
    return Response(200, forge.render.team_membership(team, user, role))


def _set_membership(request: Request, team: StoredTeam) -> Response:
    forge = forge_of(request)
    user = forge.account_or_404(request.params["username"])
    role = request.body().get("role", "member")
    if role not in ("member", "maintainer"):
        raise invalid("TeamMember", "role")
    forge.set_team_membership(request.principal, team, user, role)
    return Response(200, forge.render.team_membership(team, user, role))


def _remove_membership(request: Request, team: StoredTeam) -> Response:
    forge = forge_of(request)
    forge.set_team_membership(request.principal, team, forge.account_or_404(request.params["username"]), None)
    return no_content()


@routes.get("/orgs/{org}/teams/{team_slug}/memberships/{username}")
def get_team_membership(request: Request) -> Response:
    return _membership(request, _team_by_slug(request))


@routes.get("/teams/{team_id}/memberships/{username}")
def get_team_membership_legacy(request: Request) -> Response:
    return _membership(request, _team_by_id(request))


@routes.put("/orgs/{org}/teams/{team_slug}/memberships/{username}")
def put_team_membership(request: Request) -> Response:
    return _set_membership(request, _team_by_slug(request))


@routes.put("/teams/{team_id}/memberships/{username}")
def put_team_membership_legacy(request: Request) -> Response:
    return _set_membership(request, _team_by_id(request))


@routes.delete("/orgs/{org}/teams/{team_slug}/memberships/{username}")
def delete_team_membership(request: Request) -> Response:
    return _remove_membership(request, _team_by_slug(request))


@routes.delete("/teams/{team_id}/memberships/{username}")
def delete_team_membership_legacy(request: Request) -> Response:
    return _remove_membership(request, _team_by_id(request))


# -- team repositories -----------------------------------------------------------------------------------------

@routes.get("/orgs/{org}/teams/{team_slug}/repos")
def list_team_repos(request: Request) -> Response:
    return _list_team_repos(request, _team_by_slug(request))


@routes.get("/teams/{team_id}/repos")
def list_team_repos_legacy(request: Request) -> Response:
    return _list_team_repos(request, _team_by_id(request))


def _list_team_repos(request: Request, team: StoredTeam) -> Response:
    forge = forge_of(request)
    links = forge.store.all(StoredTeamRepo, lambda r: r.team_id == team.id)
    page = request.paginate(links)
    answer = []
    for link in page:
        repo = forge.store.get(StoredRepo, link.repo_id)
        if repo is not None:
            answer.append(_team_repo_json(request, repo, link))
    return Response(200, answer)


def _team_repo_json(request: Request, repo: StoredRepo, link: StoredTeamRepo) -> dict[str, Any]:
    forge = forge_of(request)
    body = forge.render.repo(repo, full=False)
    rank = role_rank(link.role)
    body["permissions"] = {"admin": rank >= 5, "maintain": rank >= 4, "push": rank >= 3, "triage": rank >= 2,
                           "pull": rank >= 1}
    body["role_name"] = link.role
    body["allow_forking"] = True
    return body


def _check_team_repo(request: Request, team: StoredTeam) -> Response:
    forge = forge_of(request)
    repo = forge.find_repo(request.params["owner"], request.params["repo"])
    link = forge.store.first(StoredTeamRepo,
                             lambda r: repo is not None and r.team_id == team.id and r.repo_id == repo.id)
    if repo is None or link is None:
        raise not_found()
    if "application/vnd.github.v3.repository+json" in (request.headers.get("Accept") or ""):
        # Asked for with a vendor media type, answered as plain JSON (as GitHub describes it).
        return Response(200, _team_repo_json(request, repo, link))
    return no_content()


def _set_team_repo(request: Request, team: StoredTeam, remove: bool = False) -> Response:
    forge = forge_of(request)
    repo = forge.find_repo(request.params["owner"], request.params["repo"])
    if repo is None:
        raise not_found()
    permission = None
    if not remove:
        body = request.body()
        permission = body.get("permission", team.permission)
        if not isinstance(permission, str):
            raise invalid("TeamRepository", "permission", "invalid")
    forge.set_team_repo(request.principal, team, repo, permission)
    return no_content()


@routes.get("/orgs/{org}/teams/{team_slug}/repos/{owner}/{repo}")
def check_team_repo(request: Request) -> Response:
    return _check_team_repo(request, _team_by_slug(request))


@routes.put("/orgs/{org}/teams/{team_slug}/repos/{owner}/{repo}")
def put_team_repo(request: Request) -> Response:
    return _set_team_repo(request, _team_by_slug(request))


@routes.delete("/orgs/{org}/teams/{team_slug}/repos/{owner}/{repo}")
def delete_team_repo(request: Request) -> Response:
    return _set_team_repo(request, _team_by_slug(request), remove=True)


@routes.get("/teams/{team_id}/repos/{owner}/{repo}")
def check_team_repo_legacy(request: Request) -> Response:
    return _check_team_repo(request, _team_by_id(request))


@routes.put("/teams/{team_id}/repos/{owner}/{repo}")
def put_team_repo_legacy(request: Request) -> Response:
    return _set_team_repo(request, _team_by_id(request))


@routes.delete("/teams/{team_id}/repos/{owner}/{repo}")
def delete_team_repo_legacy(request: Request) -> Response:
    return _set_team_repo(request, _team_by_id(request), remove=True)


@routes.get("/repos/{owner}/{repo}/teams")
def list_repo_teams(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    links = forge.store.all(StoredTeamRepo, lambda r: r.repo_id == repo.id)
    answer = []
    for link in request.paginate(links):
        team = forge.store.get(StoredTeam, link.team_id)
        if team is not None:
            body = forge.render.team(team)
            body["permission"] = _TEAM_PERMISSION[link.role]
            answer.append(body)
    return Response(200, answer)
