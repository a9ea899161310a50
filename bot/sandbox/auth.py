"""Who is calling and what they may do: tokens, GitHub App JWTs and repository permissions.

Callers are identified the ways GitHub accepts: `Authorization: token|Bearer X`, or HTTP basic with
the token as password (git, and `x-access-token:<token>`). A token is a personal access token (acts
as its user, optionally narrowed to fine-grained permissions), an installation token (acts as the
app's bot, limited to the installation's repositories and permissions, expires after an hour), a
user access token issued by an app's web flow (`oauth.py`: acts as the user, within the app's
permissions and installations), or an app JWT (RS256, signed with the app's private key, good only
for the `/app` endpoints).

Repository access follows GitHub's model: a user's role on a repository (read, triage, write,
maintain, admin) is the best of ownership, organization ownership, the organization's base
permission, direct collaboration and teams; a token may then narrow it per permission category
(`contents`, `issues`, `pull_requests`, `checks`, `statuses`, `administration`, `secrets`, ...).
Whatever a caller may not read answers 404, as on GitHub, so private repositories do not leak.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import jwt

from .errors import ApiError, not_found
from .model import (
    Role,
    StoredAccount,
    StoredApp,
    StoredCollaborator,
    StoredInstallation,
    StoredMembership,
    StoredRepo,
    StoredTeam,
    StoredTeamMember,
    StoredTeamRepo,
    StoredToken,
    best_role,
    role_rank,
)
from .store import Store

Level = Literal["read", "write", "admin"]
_LEVELS = {"read": 1, "write": 2, "admin": 3}

INSTALLATION_TOKEN_LIFETIME = 3600
JWT_MAX_LIFETIME = 600
_CLOCK_SKEW = 1


def now_iso(offset: float = 0) -> str:
    return datetime.fromtimestamp(time.time() + offset, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def new_token(prefix: str) -> str:
    """A token shaped like GitHub's (`ghp_…` personal, `ghs_…` installation): prefix + 36 characters."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(36))


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    kind: Literal["anonymous", "user", "installation", "app"]
    account: StoredAccount | None = None  # the user, or the app's bot user for installations
    token: StoredToken | None = None
    installation: StoredInstallation | None = None
    app: StoredApp | None = None

    @property
    def login(self) -> str:
        return self.account.login if self.account else ""

    @property
    def is_site_admin(self) -> bool:
        return self.kind == "user" and self.account is not None and self.account.site_admin


ANONYMOUS = Principal("anonymous")


@dataclass(frozen=True)
class Need:
    """What an operation requires: a token permission at a level, and (for users) a repository role."""

    category: str
    level: Level
    role: Role


class AccessRules:
    """Answers "who is this" and "may they" against the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- identifying the caller --------------------------------------------------------------------------

    def identify(self, authorization: str | None) -> Principal:
        """The principal an `Authorization` header names; anonymous without one; 401 for a bad one."""
        if not authorization:
            return ANONYMOUS
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credentials).decode()
            except ValueError as exc:
                raise bad_credentials() from exc
            user, _, password = decoded.partition(":")
            credentials = password or user
        elif scheme not in ("token", "bearer"):
            raise bad_credentials()
        if credentials.count(".") == 2 and credentials.startswith("eyJ"):
            return self._app_from_jwt(credentials)
        return self._from_token(credentials)

    def _from_token(self, value: str) -> Principal:
        token = self.store.first(StoredToken, lambda t: secrets.compare_digest(t.token, value))
        if token is None:
            raise bad_credentials()
        if token.expires_at and parse_iso(token.expires_at) <= time.time():
            raise bad_credentials()
        if token.installation_id is not None:
            installation = self.store.get(StoredInstallation, token.installation_id)
            app = self.store.get(StoredApp, installation.app_id) if installation else None
            if installation is None or app is None:
                raise bad_credentials()
            return Principal("installation", self.store.get(StoredAccount, app.bot_id), token, installation, app)
        account = self.store.get(StoredAccount, token.user_id or 0)
        if account is None:
            raise bad_credentials()
        return Principal("user", account, token)

    def _app_from_jwt(self, value: str) -> Principal:
        try:
            claims = jwt.decode(value, options={"verify_signature": False})
            issuer = str(claims.get("iss", ""))
        except jwt.PyJWTError as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        app = self.store.first(StoredApp, lambda a: str(a.id) == issuer or a.client_id == issuer)
        if app is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                value, app.public_key_pem, algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "require": ["iat", "exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        now = time.time()
        issued, expires = claims["iat"], claims["exp"]
        if not isinstance(issued, int | float) or issued > now + _CLOCK_SKEW:
            raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing the time "
                                "that the assertion was issued.")
        if not isinstance(expires, int | float) or expires <= now:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing the "
                                "future time at which the assertion expires.")
        if expires > now + JWT_MAX_LIFETIME + _CLOCK_SKEW:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future.")
        return Principal("app", app=app)

    # -- roles and permissions -----------------------------------------------------------------------------

    def role_of(self, account: StoredAccount, repo: StoredRepo) -> Role | None:
        """A user's effective role on a repository; None if they have no access of their own."""
        if account.site_admin or account.id == repo.owner_id:
            return "admin"
        roles: list[str | None] = []
        membership = self.store.first(StoredMembership, lambda m: m.org_id == repo.owner_id and m.user_id == account.id)
        if membership is not None:
            roles.append("admin" if membership.role == "admin" else "read")
        collaborator = self.store.first(StoredCollaborator, lambda c: c.repo_id == repo.id and c.user_id == account.id)
        if collaborator is not None:
            roles.append(collaborator.role)
        team_ids = {m.team_id for m in self.store.all(StoredTeamMember, lambda m: m.user_id == account.id)}
        team_ids = {t.id for t in self.store.all(StoredTeam, lambda t: t.id in team_ids and t.org_id == repo.owner_id)}
        links = self.store.all(StoredTeamRepo, lambda tr: tr.repo_id == repo.id and tr.team_id in team_ids)
        roles += [link.role for link in links]
        return best_role(*roles)

    def installation_covers(self, principal: Principal, repo: StoredRepo) -> bool:
        installation = principal.installation
        if installation is None or installation.account_id != repo.owner_id:
            return False
        if installation.repository_selection == "selected" and repo.id not in installation.repository_ids:
            return False
        narrowed = principal.token.repository_ids if principal.token else None
        return narrowed is None or repo.id in narrowed

    def permission_level(self, principal: Principal, category: str) -> int:
        """A token's level (0 none, 1 read, 2 write, 3 admin) in a permission category; 3 if unrestricted."""
        permissions = None
        if principal.token is not None and principal.token.permissions is not None:
            permissions = principal.token.permissions
        elif principal.installation is not None:
            permissions = principal.installation.permissions
        if permissions is None:
            return 3
        level = _LEVELS.get(permissions.get(category, ""), 0)
        if category == "metadata":
            level = max(level, 1)  # every token may read metadata of what it can reach
        return level

    def can_see(self, principal: Principal, repo: StoredRepo) -> bool:
        if not repo.private:
            return True
        if principal.kind == "installation":
            return self.installation_covers(principal, repo)
        if principal.kind == "user" and principal.account is not None:
            return self.role_of(principal.account, repo) is not None and self.app_reaches(principal, repo)
        return False

    def app_reaches(self, principal: Principal, repo: StoredRepo) -> bool:
        """Whether a user access token reaches `repo` through the GitHub App that issued it (True for other tokens).

        GitHub limits such a token to what both the user and the app can reach, so the app must be installed
        on the repository's owner, with that repository among those it was given.
        """
        app_id = principal.token.app_id if principal.token is not None else None
        if app_id is None:
            return True
        installation = self.store.first(StoredInstallation,
                                        lambda i: i.app_id == app_id and i.account_id == repo.owner_id)
        return installation is not None and (installation.repository_selection == "all"
                                             or repo.id in installation.repository_ids)

    def require(self, principal: Principal, repo: StoredRepo, need: Need) -> None:
        """Refuse with GitHub's answer unless `principal` may do what `need` says on `repo`."""
        if principal.kind == "app":
            raise ApiError(403, "Resource not accessible by integration")
        if not self.can_see(principal, repo):
            raise not_found()
        if principal.kind == "anonymous":
            if need.level == "read" and need.role == "read":
                return
            raise ApiError(401, "Requires authentication")
        if principal.kind == "installation":
            if not self.installation_covers(principal, repo) and need.level != "read":
                raise ApiError(403, "Resource not accessible by integration")
            if self.permission_level(principal, need.category) < _LEVELS[need.level]:
                raise refused(need.category, need.level)
            return
        assert principal.account is not None
        through_app = principal.token is not None and principal.token.app_id is not None
        if through_app and not self.app_reaches(principal, repo) and not (need.level == "read" and need.role == "read"):
            raise ApiError(403, "Resource not accessible by integration")
        role = self.role_of(principal.account, repo) or ("read" if not repo.private else None)
        if role_rank(role) < role_rank(need.role):
            raise ApiError(403, _role_message(need.role))
        if self.permission_level(principal, need.category) < _LEVELS[need.level]:
            if through_app:
                raise refused(need.category, need.level)
            raise ApiError(403, "Resource not accessible by personal access token",
                           headers={"X-Accepted-GitHub-Permissions": f"{need.category}={need.level}"})

    def may(self, principal: Principal, repo: StoredRepo, need: Need) -> bool:
        try:
            self.require(principal, repo, need)
        except ApiError:
            return False
        return True


def _role_message(role: str) -> str:
    if role == "admin":
        return "Must have admin rights to Repository."
    if role in ("write", "maintain"):
        return "Must have push access to repository"
    return "Must have triage access to repository"


def refused(category: str, level: str) -> ApiError:
    """GitHub's 403 for an app's token that lacks a permission. The `X-Accepted-GitHub-Permissions`
    header names what the endpoint accepts (`members=write`), which is how a client learns which
    permission its token is missing."""
    return ApiError(403, "Resource not accessible by integration",
                    headers={"X-Accepted-GitHub-Permissions": f"{category}={level}"})


def bad_credentials() -> ApiError:
    return ApiError(401, "Bad credentials")
