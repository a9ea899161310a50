"""Repository settings: collaborators, environments, Actions secrets, branch protection, webhooks."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..auth import Need
from ..errors import ApiError, invalid, not_found
from ..github import ADMIN, SandboxGitHub
from ..model import StoredDelivery, StoredEnvironment, StoredHook, StoredProtection, StoredRepo, StoredSecret, role_rank
from ..routing import Depends, Request, Response, Routes, no_content
from .common import forge_of, repo_of, repository

routes = Routes()

READ_SECRETS = Need("secrets", "read", "admin")
READ_ENVIRONMENTS = Need("actions", "read", "read")


# -- collaborators -----------------------------------------------------------------------------------------

_LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}


@routes.get("/repos/{owner}/{repo}/collaborators/{username}/permission")
def collaborator_permission(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    user = forge.account(request.params["username"])
    if user is None:
        raise not_found()
    role = forge.access.role_of(user, repo)
    if role is None and not repo.private:
        role = "read"
    body = forge.render.user(user)
    assert body is not None
    rank = role_rank(role)
    body["permissions"] = {"admin": rank >= 5, "maintain": rank >= 4, "push": rank >= 3, "triage": rank >= 2,
                           "pull": rank >= 1}
    body["role_name"] = role or "none"
    return Response(200, {"permission": _LEGACY_PERMISSION.get(role or "", "none"), "role_name": role or "none",
                          "user": body})


@routes.get("/repos/{owner}/{repo}/collaborators/{username}")
def check_collaborator(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    user = forge.account(request.params["username"])
    if user is None or forge.access.role_of(user, repo) is None:
        raise not_found()
    return no_content()


@routes.put("/repos/{owner}/{repo}/collaborators/{username}")
def add_collaborator(request: Request, repo: StoredRepo = Depends(repository(ADMIN))) -> Response:
    # GitHub invites outside collaborators; the sandbox adds them at once (as for org members) and
    # answers 204, GitHub's answer when no invitation is needed.
    forge = forge_of(request)
    user = forge.account(request.params["username"])
    if user is None:
        raise not_found()
    permission = request.body().get("permission", "push")
    role = {"pull": "read", "push": "write"}.get(permission, permission)
    if role not in ("read", "triage", "write", "maintain", "admin"):
        raise invalid("Collaborator", "permission", "invalid")
    forge.add_collaborator(repo, user, role)
    return no_content()


# -- environments ----------------------------------------------------------------------------------------------

@routes.get("/repos/{owner}/{repo}/environments")
def list_environments(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    envs = forge.store.all(StoredEnvironment, lambda e: e.repo_id == repo.id)
    page = request.paginate(envs)
    return Response(200, {"total_count": len(envs), "environments": [forge.render.environment(e) for e in page]})


@routes.get("/repos/{owner}/{repo}/environments/{environment_name}")
def get_environment(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    return Response(200, forge.render.environment(forge.environment(repo, request.params["environment_name"])))


@routes.put("/repos/{owner}/{repo}/environments/{environment_name}")
def put_environment(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    env = forge.put_environment(request.principal, repo, request.params["environment_name"], request.body())
    return Response(200, forge.render.environment(env))


@routes.delete("/repos/{owner}/{repo}/environments/{environment_name}")
def delete_environment(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.delete_environment(request.principal, repo, request.params["environment_name"])
    return no_content()


# -- deployment branch policies (an environment's custom branch and tag name patterns) ---------------------

_POLICIES = "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies"


@routes.get(_POLICIES)
def list_branch_policies(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    found = forge.branch_policies(repo, request.params["environment_name"])
    return Response(200, {"total_count": len(found),
                          "branch_policies": [forge.render.branch_policy(b) for b in request.paginate(found)]})


@routes.post(_POLICIES)
def create_branch_policy(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    environment = request.params["environment_name"]
    policy, created = forge.add_branch_policy(request.principal, repo, environment, body.get("name"),
                                              body.get("type", "branch"))
    if not created:
        # GitHub's answer when the pattern exists already: a redirect to it.
        location = (f"{forge.urls.api}/repos/{forge.render.repo_path(repo)}/environments/"
                    f"{quote(environment, safe='')}/deployment-branch-policies/{policy.id}")
        return Response(303, b"", headers={"Location": location})
    return Response(200, forge.render.branch_policy(policy))


@routes.get(_POLICIES + "/{branch_policy_id}")
def get_branch_policy(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    policy = forge.branch_policy(repo, request.params["environment_name"],
                                 request.int_param("branch_policy_id"))
    return Response(200, forge.render.branch_policy(policy))


@routes.delete(_POLICIES + "/{branch_policy_id}")
def delete_branch_policy(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.delete_branch_policy(request.principal, repo, request.params["environment_name"],
                               request.int_param("branch_policy_id"))
    return no_content()


# -- Actions secrets -----------------------------------------------------------------------------------------

def _public_key(forge: SandboxGitHub, repo: StoredRepo, environment: str | None) -> dict[str, Any]:
    public, _ = forge.secret_keys(repo, environment)
    return {"key_id": forge.public_key_id(public), "key": public}


def _list_secrets(request: Request, environment: str | None) -> Response:
    forge = forge_of(request)
    repo = repo_of(request, READ_SECRETS)
    env_name = forge.environment(repo, environment).name if environment else None
    found = forge.store.all(StoredSecret, lambda s: s.repo_id == repo.id and s.environment == env_name)
    page = request.paginate(found)
    return Response(200, {"total_count": len(found), "secrets": [forge.render.secret(s) for s in page]})


def _put_secret(request: Request, environment: str | None) -> Response:
    forge = forge_of(request)
    repo = repo_of(request)
    body = request.body()
    created = forge.put_secret(request.principal, repo, request.params["secret_name"], body.get("encrypted_value"),
                               body.get("key_id"), environment)
    return Response(201, {}) if created else no_content()


def _delete_secret(request: Request, environment: str | None) -> Response:
    forge = forge_of(request)
    repo = repo_of(request, Need("secrets", "write", "admin"))
    with forge.store.lock:
        forge.store.delete(forge.find_secret(repo, request.params["secret_name"], environment))
    return no_content()


@routes.get("/repos/{owner}/{repo}/actions/secrets/public-key")
def repo_public_key(request: Request, repo: StoredRepo = Depends(repository(READ_SECRETS))) -> Response:
    return Response(200, _public_key(forge_of(request), repo, None))


@routes.get("/repos/{owner}/{repo}/actions/secrets")
def list_repo_secrets(request: Request) -> Response:
    return _list_secrets(request, None)


@routes.get("/repos/{owner}/{repo}/actions/secrets/{secret_name}")
def get_repo_secret(request: Request, repo: StoredRepo = Depends(repository(READ_SECRETS))) -> Response:
    forge = forge_of(request)
    return Response(200, forge.render.secret(forge.find_secret(repo, request.params["secret_name"])))


@routes.put("/repos/{owner}/{repo}/actions/secrets/{secret_name}")
def put_repo_secret(request: Request) -> Response:
    return _put_secret(request, None)


@routes.delete("/repos/{owner}/{repo}/actions/secrets/{secret_name}")
def delete_repo_secret(request: Request) -> Response:
    return _delete_secret(request, None)


@routes.get("/repos/{owner}/{repo}/environments/{environment_name}/secrets/public-key")
def env_public_key(request: Request, repo: StoredRepo = Depends(repository(READ_SECRETS))) -> Response:
    forge = forge_of(request)
    return Response(200, _public_key(forge, repo, request.params["environment_name"]))


@routes.get("/repos/{owner}/{repo}/environments/{environment_name}/secrets")
def list_env_secrets(request: Request) -> Response:
    return _list_secrets(request, request.params["environment_name"])


@routes.get("/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}")
def get_env_secret(request: Request, repo: StoredRepo = Depends(repository(READ_SECRETS))) -> Response:
    forge = forge_of(request)
    secret = forge.find_secret(repo, request.params["secret_name"], request.params["environment_name"])
    return Response(200, forge.render.secret(secret))


@routes.put("/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}")
def put_env_secret(request: Request) -> Response:
    return _put_secret(request, request.params["environment_name"])


@routes.delete("/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}")
def delete_env_secret(request: Request) -> Response:
    return _delete_secret(request, request.params["environment_name"])


# -- branch protection -----------------------------------------------------------------------------------------

def _protection_json(forge: SandboxGitHub, repo: StoredRepo, protection: StoredProtection) -> dict[str, Any]:
    base = f"{forge.urls.api}/repos/{forge.render.repo_path(repo)}/branches/{protection.branch}/protection"
    settings = protection.settings
    body: dict[str, Any] = {"url": base}
    checks = settings.get("required_status_checks")
    if checks:
        body["required_status_checks"] = _checks_json(base, checks)
    reviews = settings.get("required_pull_request_reviews")
    if reviews:
        body["required_pull_request_reviews"] = {
            "url": f"{base}/required_pull_request_reviews",
            "dismiss_stale_reviews": bool(reviews.get("dismiss_stale_reviews", False)),
            "require_code_owner_reviews": bool(reviews.get("require_code_owner_reviews", False)),
            "required_approving_review_count": int(reviews.get("required_approving_review_count", 1)),
            "require_last_push_approval": bool(reviews.get("require_last_push_approval", False)),
        }
        restrictions = reviews.get("dismissal_restrictions")
        if isinstance(restrictions, dict):
            body["required_pull_request_reviews"]["dismissal_restrictions"] = {
                "url": f"{base}/dismissal_restrictions", "users_url": f"{base}/dismissal_restrictions/users",
                "teams_url": f"{base}/dismissal_restrictions/teams",
                "users": [forge.render.user(forge.account(login)) for login in restrictions.get("users") or []
                          if forge.account(login)],
                "teams": [], "apps": [],
            }
    body["required_signatures"] = {"url": f"{base}/required_signatures", "enabled": False}
    body["enforce_admins"] = {"url": f"{base}/enforce_admins", "enabled": bool(settings.get("enforce_admins"))}
    for key in ("required_linear_history", "allow_force_pushes", "allow_deletions", "block_creations",
                "required_conversation_resolution", "lock_branch", "allow_fork_syncing"):
        body[key] = {"enabled": bool(settings.get(key, False))}
    if settings.get("restrictions"):
        restrictions = settings["restrictions"]
        body["restrictions"] = {
            "url": f"{base}/restrictions", "users_url": f"{base}/restrictions/users",
            "teams_url": f"{base}/restrictions/teams", "apps_url": f"{base}/restrictions/apps",
            "users": [forge.render.user(forge.account(login)) for login in restrictions.get("users", [])
                      if forge.account(login)],
            "teams": [], "apps": [],
        }
    return body


def _checks_json(base: str, checks: dict[str, Any]) -> dict[str, Any]:
    contexts = list(checks.get("contexts") or [])
    listed = [{"context": c["context"], "app_id": c.get("app_id")} for c in checks.get("checks") or []]
    contexts += [c["context"] for c in listed if c["context"] not in contexts]
    if not listed:
        listed = [{"context": c, "app_id": None} for c in contexts]
    return {"url": f"{base}/required_status_checks", "strict": bool(checks.get("strict")), "contexts": contexts,
            "checks": listed, "contexts_url": f"{base}/required_status_checks/contexts"}


@routes.get("/repos/{owner}/{repo}/branches/{branch+}/protection")
def get_protection(request: Request, repo: StoredRepo = Depends(repository(ADMIN))) -> Response:
    forge = forge_of(request)
    return Response(200, _protection_json(forge, repo, forge.protection(repo, request.params["branch"])))


@routes.put("/repos/{owner}/{repo}/branches/{branch+}/protection")
def put_protection(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    protection = forge.put_protection(request.principal, repo, request.params["branch"], request.json())
    return Response(200, _protection_json(forge, repo, protection))


@routes.delete("/repos/{owner}/{repo}/branches/{branch+}/protection")
def delete_protection(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.delete_protection(request.principal, repo, request.params["branch"])
    return no_content()


@routes.get("/repos/{owner}/{repo}/branches/{branch+}/protection/required_status_checks")
def get_status_checks(request: Request, repo: StoredRepo = Depends(repository(ADMIN))) -> Response:
    forge = forge_of(request)
    protection = forge.protection(repo, request.params["branch"])
    checks = protection.settings.get("required_status_checks")
    if not checks:
        raise ApiError(404, "Required status checks not enabled")
    base = f"{forge.urls.api}/repos/{forge.render.repo_path(repo)}/branches/{protection.branch}/protection"
    return Response(200, _checks_json(base, checks))


@routes.patch("/repos/{owner}/{repo}/branches/{branch+}/protection/required_status_checks")
def update_status_checks(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    protection = forge.update_status_checks(request.principal, repo, request.params["branch"], request.body())
    base = f"{forge.urls.api}/repos/{forge.render.repo_path(repo)}/branches/{protection.branch}/protection"
    return Response(200, _checks_json(base, protection.settings["required_status_checks"]))


# -- webhooks ----------------------------------------------------------------------------------------------------

def _hook(request: Request) -> tuple[StoredRepo, StoredHook]:
    forge = forge_of(request)
    repo = repo_of(request, ADMIN)
    hook = forge.store.get(StoredHook, request.int_param("hook_id"))
    if hook is None or hook.repo_id != repo.id:
        raise not_found()
    return repo, hook


@routes.get("/repos/{owner}/{repo}/hooks")
def list_hooks(request: Request, repo: StoredRepo = Depends(repository(ADMIN))) -> Response:
    forge = forge_of(request)
    hooks = forge.store.all(StoredHook, lambda h: h.repo_id == repo.id)
    return Response(200, [forge.render.hook(h) for h in request.paginate(hooks)])


@routes.post("/repos/{owner}/{repo}/hooks")
def create_hook(request: Request, repo: StoredRepo = Depends(repository(ADMIN))) -> Response:
    forge = forge_of(request)
    body = request.body()
    config = body.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("url"), str):
        raise invalid("Hook", "config", "missing_field")
    events = body.get("events", ["push"])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise invalid("Hook", "events", "invalid")
    hook = forge.add_hook(repo, config["url"], str(config.get("secret") or ""), events,
                          active=bool(body.get("active", True)), content_type=str(config.get("content_type", "json")))
    return Response(201, forge.render.hook(hook))


@routes.get("/repos/{owner}/{repo}/hooks/{hook_id}")
def get_hook(request: Request) -> Response:
    _, hook = _hook(request)
    return Response(200, forge_of(request).render.hook(hook))


@routes.delete("/repos/{owner}/{repo}/hooks/{hook_id}")
def delete_hook(request: Request) -> Response:
    forge = forge_of(request)
    _, hook = _hook(request)
    forge.store.delete(hook)
    return no_content()


@routes.post("/repos/{owner}/{repo}/hooks/{hook_id}/pings")
def ping_hook(request: Request) -> Response:
    forge = forge_of(request)
    _, hook = _hook(request)
    forge.ping(hook)
    return no_content()


@routes.get("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries")
def list_deliveries(request: Request) -> Response:
    forge = forge_of(request)
    _, hook = _hook(request)
    found = list(reversed(forge.store.all(StoredDelivery, lambda d: d.hook_id == hook.id)))
    return Response(200, [forge.render.delivery(d) for d in request.paginate(found)])


def _delivery(request: Request) -> StoredDelivery:
    forge = forge_of(request)
    _, hook = _hook(request)
    delivery = forge.store.get(StoredDelivery, request.int_param("delivery_id"))
    if delivery is None or delivery.hook_id != hook.id:
        raise not_found()
    return delivery


@routes.get("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}")
def get_delivery(request: Request) -> Response:
    return Response(200, forge_of(request).render.delivery(_delivery(request), full=True))


@routes.post("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts")
def redeliver(request: Request) -> Response:
    forge = forge_of(request)
    forge.hooks.redeliver(_delivery(request).id)
    return Response(202, {})


