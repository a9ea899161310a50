"""The forge's use cases: everything that changes state, with GitHub's rules and webhooks.

REST handlers and the Python handle (`api.py`) both call these methods, so a pull request opened
from a test story and one opened by PyGithub go through the same checks and fire the same
`pull_request opened` delivery. Each public method runs under the store lock as one atomic step;
permission checks name the acting `Principal` and fail with GitHub's status codes.
"""

from __future__ import annotations

import base64
import logging
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from nacl.public import PrivateKey, SealedBox

from . import gitrepo
from .auth import INSTALLATION_TOKEN_LIFETIME, Access, Need, Principal, new_token, now_iso, parse_iso, refused
from .errors import ApiError, invalid, not_found, unprocessable
from .model import (
    Account,
    App,
    CheckRun,
    CheckSuite,
    Collaborator,
    Comment,
    CustomProperty,
    DeploymentBranchPolicy,
    Environment,
    Hook,
    Installation,
    Issue,
    Label,
    Membership,
    Protection,
    PullRequest,
    Reaction,
    Repo,
    Review,
    Role,
    Secret,
    Status,
    Team,
    TeamMember,
    TeamRepo,
    Token,
    role_rank,
)
from .render import REACTIONS, Renderer, Urls, node_id
from .store import Store
from .webhooks import Dispatcher

log = logging.getLogger(__name__)

MAX_BODY = 65536
MAX_ANNOTATIONS_PER_REQUEST = 50
NOREPLY = "users.noreply.sandbox"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
# GitHub's rule for custom property names: letters, digits and `_ - $ #`, at most 75 characters.
_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_$#-]{1,75}$")
VALUE_TYPES = ("string", "single_select", "multi_select", "true_false", "url")
EDITORS = ("org_actors", "org_and_repo_actors")

READ_CODE = Need("contents", "read", "read")
WRITE_CODE = Need("contents", "write", "write")
READ_META = Need("metadata", "read", "read")
ADMIN = Need("administration", "write", "admin")


@dataclass
class PushRules:
    """Refs a pusher may not move at all, may not rewind, and may not delete (from branch protection)."""

    locked: list[str] = field(default_factory=list)
    no_force: list[str] = field(default_factory=list)
    no_delete: list[str] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """For the repositories' pre-receive hook (see `gitrepo.PRE_RECEIVE`)."""
        return {"SANDBOX_LOCKED_REFS": " ".join(self.locked), "SANDBOX_NO_FORCE_REFS": " ".join(self.no_force),
                "SANDBOX_NO_DELETE_REFS": " ".join(self.no_delete)}


@dataclass(frozen=True)
class RefUpdate:
    ref: str
    before: str  # ZERO_SHA when created
    after: str  # ZERO_SHA when deleted


def _key_id(public_key: str) -> str:
    return str(int.from_bytes(base64.b64decode(public_key)[:8], "big") % 10**19)


class Forge:
    def __init__(self, data_dir: Path, urls: Urls) -> None:
        self.data_dir = data_dir
        self.repos_dir = data_dir / "repos"
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(data_dir / "sandbox.sqlite3")
        self.access = Access(self.store)
        self.bound_urls = urls  # where the forge listens; `urls` is where the request being served reached it
        self.render = Renderer(self.store, urls, self.git)
        self.hooks = Dispatcher(self.store)
        self._repo_locks: dict[int, threading.Lock] = {}
        for repo in self.store.all(Repo):
            self.git(repo).install_hooks()  # repositories made by an older sandbox get the current hook

    @property
    def urls(self) -> Urls:
        return self.render.urls

    def close(self) -> None:
        self.hooks.close()
        self.store.close()

    # -- lookups ---------------------------------------------------------------------------------------------

    def git(self, repo: Repo) -> gitrepo.GitRepo:
        owner = self.store.get(Account, repo.owner_id)
        assert owner is not None
        return gitrepo.GitRepo(self.repos_dir / owner.login.lower() / f"{repo.name.lower()}.git")

    @contextmanager
    def repo_lock(self, repo: Repo) -> Iterator[None]:
        """Serializes ref changes of one repository between git pushes and API writes."""
        with self.store.lock:
            lock = self._repo_locks.setdefault(repo.id, threading.Lock())
        with lock:
            yield

    def account(self, login: str) -> Account | None:
        wanted = login.lower()
        return self.store.first(Account, lambda a: a.login.lower() == wanted)

    def account_or_404(self, login: str) -> Account:
        found = self.account(login)
        if found is None or (found.type == "Bot" and not login.endswith("[bot]")):
            raise not_found()
        return found

    def find_repo(self, owner: str, name: str) -> Repo | None:
        account = self.account(owner)
        if account is None:
            return None
        wanted = name.lower().removesuffix(".git")
        return self.store.first(Repo, lambda r: r.owner_id == account.id and r.name.lower() == wanted)

    def repo_for(self, principal: Principal, owner: str, name: str, need: Need = READ_META) -> Repo:
        """The repository, if `principal` may do `need` on it (404 if they may not even see it)."""
        repo = self.find_repo(owner, name)
        if repo is None:
            raise not_found()
        self.access.require(principal, repo, need)
        return repo

    def issue(self, repo: Repo, number: int) -> Issue:
        found = self.store.first(Issue, lambda i: i.repo_id == repo.id and i.number == number)
        if found is None:
            raise not_found()
        return found

    def pull(self, repo: Repo, number: int) -> PullRequest:
        found = self.store.first(PullRequest, lambda p: p.repo_id == repo.id and p.number == number)
        if found is None:
            raise not_found()
        return found

    def actor_account(self, principal: Principal) -> Account:
        if principal.account is None:
            raise ApiError(401, "Requires authentication")
        return principal.account

    # -- people and organizations -------------------------------------------------------------------------

    def create_user(self, login: str, name: str | None = None, email: str | None = None,
                    site_admin: bool = False) -> tuple[Account, Token]:
        with self.store.lock:
            if not _LOGIN.match(login):
                raise invalid("User", "login")
            if self.account(login) is not None:
                raise invalid("User", "login", "already_exists")
            user = self.store.put(Account(self.store.new_id(), login, "User", now_iso(), name=name or login,
                                          email=email or f"{login}@{NOREPLY}", site_admin=site_admin))
            return user, self.create_token(user)

    def create_token(self, user: Account, permissions: dict[str, str] | None = None, note: str = "") -> Token:
        with self.store.lock:
            return self.store.put(Token(self.store.new_id(), new_token("ghp_"), now_iso(), user_id=user.id,
                                        permissions=permissions, note=note))

    def create_org(self, login: str, owners: list[Account] | None = None, name: str | None = None) -> Account:
        with self.store.lock:
            if not _LOGIN.match(login):
                raise invalid("Organization", "login")
            if self.account(login) is not None:
                raise invalid("Organization", "login", "already_exists")
            org = self.store.put(Account(self.store.new_id(), login, "Organization", now_iso(), name=name or login))
            for owner in owners or []:
                self.add_member(org, owner, "admin")
            return org

    def add_member(self, org: Account, user: Account, role: Literal["admin", "member"] = "member") -> None:
        with self.store.lock:
            found = self.store.first(Membership, lambda m: m.org_id == org.id and m.user_id == user.id)
            self.store.put(Membership(found.id if found else self.store.new_id(), org.id, user.id, role))

    def require_org_admin(self, principal: Principal, org: Account) -> None:
        """Refuse unless `principal` may administer `org`'s teams (an owner, or an app with members: write)."""
        if principal.is_site_admin:
            return
        if principal.kind == "installation" and principal.installation is not None:
            if principal.installation.account_id == org.id and self.access.permission_level(principal, "members") >= 2:
                return
            raise refused("members", "write")
        account = self.actor_account(principal)
        member = self.store.first(Membership, lambda m: m.org_id == org.id and m.user_id == account.id)
        if member is None:
            raise not_found()
        if member.role != "admin":
            raise ApiError(403, "You must be an organization owner or team maintainer to do that.")

    def create_team(self, principal: Principal, org: Account, name: str, description: str | None = None,
                    privacy: str = "closed", members: list[Account] | None = None,
                    maintainers: list[Account] | None = None, parent_id: int | None = None) -> Team:
        with self.store.lock:
            self.require_org_admin(principal, org)
            if not name.strip():
                raise invalid("Team", "name", "missing_field")
            slug = _team_slug(name)
            if self.store.first(Team, lambda t: t.org_id == org.id and (t.slug == slug or t.name == name)):
                raise unprocessable("Name must be unique for this org")
            team = self.store.put(Team(self.store.new_id(), org.id, name, slug, now_iso(), description=description,
                                       privacy=privacy, parent_id=parent_id))
            for user in members or []:
                self.store.put(TeamMember(self.store.new_id(), team.id, user.id, "member"))
            for user in maintainers or []:
                self.store.put(TeamMember(self.store.new_id(), team.id, user.id, "maintainer"))
            return team

    def add_team_member(self, team: Team, user: Account, role: Literal["member", "maintainer"] = "member") -> None:
        with self.store.lock:
            found = self.store.first(TeamMember, lambda m: m.team_id == team.id and m.user_id == user.id)
            self.store.put(TeamMember(found.id if found else self.store.new_id(), team.id, user.id, role))

    def _require_team_admin(self, principal: Principal, team: Team) -> None:
        """Organization owners (and apps with `members: write`) manage every team; maintainers their own."""
        account = principal.account if principal.kind == "user" else None
        if account is not None:
            user_id = account.id
            if self.store.first(TeamMember, lambda m: m.team_id == team.id and m.user_id == user_id
                                and m.role == "maintainer"):
                return
        org = self.store.get(Account, team.org_id)
        assert org is not None
        self.require_org_admin(principal, org)

    def update_team(self, principal: Principal, team: Team, fields: dict[str, Any]) -> Team:
        """Rename a team (its slug follows the name) or change its description or privacy."""
        with self.store.lock:
            self._require_team_admin(principal, team)
            name = fields.get("name")
            if name is not None:
                if not isinstance(name, str) or not name.strip():
                    raise invalid("Team", "name")
                slug = _team_slug(name)
                if self.store.first(Team, lambda t: t.org_id == team.org_id and t.id != team.id and (
                        t.slug == slug or t.name == name)):
                    raise unprocessable("Name must be unique for this org")
                team.name, team.slug = name, slug
            if "description" in fields:
                description = fields["description"]
                if description is not None and not isinstance(description, str):
                    raise invalid("Team", "description")
                team.description = description
            privacy = fields.get("privacy")
            if privacy is not None:
                if privacy not in ("secret", "closed"):
                    raise invalid("Team", "privacy")
                team.privacy = privacy
            return self.store.put(team)

    def delete_team(self, principal: Principal, team: Team) -> None:
        """Delete a team with its memberships and repository roles; its child teams lose their parent."""
        with self.store.lock:
            self._require_team_admin(principal, team)
            for record in [*self.store.all(TeamMember, lambda m: m.team_id == team.id),
                           *self.store.all(TeamRepo, lambda r: r.team_id == team.id)]:
                self.store.delete(record)
            for child in self.store.all(Team, lambda t: t.parent_id == team.id):
                child.parent_id = None
                self.store.put(child)
            for env in self.store.all(Environment):
                kept = [r for r in env.reviewers if not (r["type"] == "Team" and r.get("id") == team.id)]
                if kept != env.reviewers:
                    env.reviewers = kept
                    self.store.put(env)
            self.store.delete(team)

    def team_members(self, team: Team, role: str = "all") -> list[tuple[Account, str]]:
        """The team's people with their roles (`member` or `maintainer`), filtered by `role` unless "all"."""
        found: list[tuple[Account, str]] = []
        for member in self.store.all(TeamMember, lambda m: m.team_id == team.id and role in ("all", m.role)):
            account = self.store.get(Account, member.user_id)
            if account is not None:
                found.append((account, member.role))
        return found

    def set_team_membership(self, principal: Principal, team: Team, user: Account,
                            role: Literal["member", "maintainer"] | None) -> None:
        """Add a user to a team or change their role; None removes them (404 if they are not in it).

        GitHub invites a user from outside the organization and adds them once they accept (the
        membership is `pending` until then); the sandbox makes them a member of the organization at
        once, as it does with outside collaborators, so the membership is always `active`.
        """
        with self.store.lock:
            self._require_team_admin(principal, team)
            if user.type != "User":
                raise not_found()
            found = self.store.first(TeamMember, lambda m: m.team_id == team.id and m.user_id == user.id)
            if role is None:
                if found is None:
                    raise not_found()
                self.store.delete(found)
                return
            org = self.store.get(Account, team.org_id)
            assert org is not None
            if self.store.first(Membership, lambda m: m.org_id == org.id and m.user_id == user.id) is None:
                self.add_member(org, user, "member")
            self.add_team_member(team, user, role)

    def set_team_repo(self, principal: Principal, team: Team, repo: Repo, permission: str | None) -> None:
        """Give a team a role on a repository (`pull`, `triage`, `push`, `maintain`, `admin`); None removes it."""
        with self.store.lock:
            self._require_org_admin_or_repo_admin(principal, team, repo)
            found = self.store.first(TeamRepo, lambda r: r.team_id == team.id and r.repo_id == repo.id)
            if permission is None:
                if found is not None:
                    self.store.delete(found)
                return
            role = _role_from_permission(permission)
            if role is None:
                raise invalid("TeamRepository", "permission")
            if repo.owner_id != team.org_id:
                raise unprocessable("Validation Failed")
            self.store.put(TeamRepo(found.id if found else self.store.new_id(), team.id, repo.id, role))

    def _require_org_admin_or_repo_admin(self, principal: Principal, team: Team, repo: Repo) -> None:
        org = self.store.get(Account, team.org_id)
        assert org is not None
        user = principal.account if principal.kind == "user" else None
        if user is not None and self.access.role_of(user, repo) == "admin":
            return
        self.require_org_admin(principal, org)

    def add_collaborator(self, repo: Repo, user: Account, role: Role = "write") -> None:
        with self.store.lock:
            found = self.store.first(Collaborator, lambda c: c.repo_id == repo.id and c.user_id == user.id)
            self.store.put(Collaborator(found.id if found else self.store.new_id(), repo.id, user.id, role))

    # -- apps -----------------------------------------------------------------------------------------------

    def create_app(self, owner: Account, name: str, permissions: dict[str, str] | None = None,
                   events: list[str] | None = None, webhook_url: str | None = None,
                   webhook_secret: str = "") -> tuple[App, str]:
        """A GitHub App with a fresh RSA key; returns the app and its private key (PEM)."""
        with self.store.lock:
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            if self.store.first(App, lambda a: a.slug == slug):
                raise invalid("Integration", "name", "already_exists")
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption()).decode()
            public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            bot = self.store.put(Account(self.store.new_id(), f"{slug}[bot]", "Bot", now_iso(), name=name,
                                         email=f"{slug}[bot]@{NOREPLY}"))
            app = self.store.put(App(
                self.store.new_id(), slug, name, owner.id, bot.id, client_id=f"Iv1.{new_token('')[:16].lower()}",
                public_key_pem=public_pem, created_at=now_iso(),
                permissions=dict(permissions or {"metadata": "read"}),
                events=list(events or ["check_run", "check_suite", "issue_comment", "pull_request",
                                       "pull_request_review", "push"]),
            ))
            if webhook_url:
                self.add_hook(None, webhook_url, webhook_secret, app=app)
            return app, private_pem

    def install_app(self, app: App, account: Account, repositories: list[Repo] | None = None,
                    sender: Account | None = None) -> Installation:
        """Install `app` on an org or user (all repositories, or only `repositories`); fires `installation`."""
        with self.store.lock:
            if self.store.first(Installation, lambda i: i.app_id == app.id and i.account_id == account.id):
                raise unprocessable("The app is already installed on this account")
            installation = self.store.put(Installation(
                self.store.new_id(), app.id, account.id, now_iso(),
                repository_selection="selected" if repositories is not None else "all",
                repository_ids=[r.id for r in repositories or []],
                permissions=dict(app.permissions), events=list(app.events),
            ))
            repos = repositories
            if repos is None:
                repos = self.store.all(Repo, lambda r: r.owner_id == account.id)
            payload: dict[str, Any] = {
                "action": "created",
                "installation": self.render.installation(installation, for_webhook=True),
                "repositories": [{"id": r.id, "node_id": self.render.repo(r)["node_id"], "name": r.name,
                                  "full_name": self.render.repo(r)["full_name"], "private": r.private} for r in repos],
                "sender": self.render.user(sender or self.store.get(Account, app.owner_id)),
            }
            self.hooks.emit("installation", payload, installation=installation)
            return installation

    def installation_token(self, principal: Principal, installation_id: int, repositories: list[str] | None = None,
                           repository_ids: list[int] | None = None,
                           permissions: dict[str, str] | None = None) -> tuple[Token, list[Repo]]:
        with self.store.lock:
            if principal.kind != "app" or principal.app is None:
                raise ApiError(401, "A JSON web token could not be decoded")
            installation = self.store.get(Installation, installation_id)
            if installation is None or installation.app_id != principal.app.id:
                raise not_found()
            covered = self.store.all(Repo, lambda r: r.owner_id == installation.account_id and (
                installation.repository_selection == "all" or r.id in installation.repository_ids))
            chosen: list[Repo] | None = None
            # Empty lists and maps narrow nothing (PyGithub sends `"permissions": {}`).
            if repositories or repository_ids:
                names = {n.lower() for n in repositories or []}
                ids = set(repository_ids or [])
                chosen = [r for r in covered if r.name.lower() in names or r.id in ids]
                if len(chosen) != len(names) + len(ids):
                    raise unprocessable("There is at least one repository that does not exist or is not "
                                        "accessible to the parent installation.")
            permissions = permissions or None
            if permissions is not None:
                for category, level in permissions.items():
                    have = installation.permissions.get(category)
                    rank = {"read": 1, "write": 2, "admin": 3}
                    if have is None or level not in rank or rank[level] > rank.get(have, 0):
                        raise unprocessable("The permissions requested are not granted to this installation.")
            token = self.store.put(Token(
                self.store.new_id(), new_token("ghs_"), now_iso(), installation_id=installation.id,
                expires_at=now_iso(INSTALLATION_TOKEN_LIFETIME),
                permissions=dict(permissions) if permissions is not None else dict(installation.permissions),
                repository_ids=[r.id for r in chosen] if chosen is not None else None,
            ))
            return token, chosen if chosen is not None else covered

    # -- repositories ------------------------------------------------------------------------------------------

    def create_repo(self, principal: Principal, owner: Account, name: str, private: bool = False,
                    description: str | None = None, auto_init: bool = False,
                    default_branch: str = "main", internal: bool = False,
                    custom_properties: dict[str, Any] | None = None) -> Repo:
        """A new repository; `custom_properties` are its first values of the organization's custom
        properties, set in the same step (so the repository never exists without them), each only by
        whoever may set that property (its creator becomes the repository's admin)."""
        with self.store.lock:
            if internal and owner.type != "Organization":
                raise invalid("Repository", "visibility", "custom", "Only organization repositories can be internal")
            if principal.kind == "installation":
                inst = principal.installation
                allowed = self.access.permission_level(principal, "administration") >= 2
                if inst is None or inst.account_id != owner.id or not allowed:
                    raise refused("administration", "write")
            elif not principal.is_site_admin:
                account = self.actor_account(principal)
                if owner.type == "Organization":
                    member = self.store.first(Membership, lambda m: m.org_id == owner.id and m.user_id == account.id)
                    if member is None:
                        raise ApiError(403, "You need admin access to the organization before adding a repository "
                                            "to it.")
                elif owner.id != account.id:
                    raise ApiError(403, "Resource not accessible by personal access token")
            if not name or not _NAME.match(name) or name in (".", ".."):
                raise invalid("Repository", "name", "custom", "name is invalid")
            if self.find_repo(owner.login, name) is not None:
                raise invalid("Repository", "name", "custom", "name already exists on this account")
            values = self._property_values(principal, owner, None, custom_properties or {})
            private_key = PrivateKey.generate()
            now = now_iso()
            # A new repository reports its creation as its last push, as GitHub's do.
            repo = Repo(self.store.new_id(), owner.id, name, now, now, now, private=private or internal,
                        description=description, default_branch=default_branch, internal=internal,
                        secrets_public_key=base64.b64encode(bytes(private_key.public_key)).decode(),
                        secrets_private_key=base64.b64encode(bytes(private_key)).decode(),
                        custom_properties={k: v for k, v in values.items() if v is not None})
            self.git(repo).init(default_branch)
            self.store.put(repo)
            if auto_init:
                git = self.git(repo)
                tree = git.write_tree(None, [gitrepo.TreeChange(
                    "README.md", "100644", git.write_blob(f"# {name}\n\n{description or ''}\n".encode()))])
                who = self.person_of(principal)
                sha = git.write_commit(tree, [], "Initial commit", who, who)
                git.update_ref(f"refs/heads/{default_branch}", sha)
                repo.pushed_at = now_iso()
                self.store.put(repo)
            return repo

    def import_folder(self, repo: Repo, folder: Path, message: str, author: Account) -> str:
        """Commit the files of `folder` on top of the default branch (or as its first commit)."""
        with self.store.lock, self.repo_lock(repo):
            git = self.git(repo)
            branch = f"refs/heads/{repo.default_branch}"
            parent = git.resolve(branch)
            tree = git.import_folder(folder)
            who = self._person_of(author)
            sha = git.write_commit(tree, [parent] if parent else [], message, who, who)
            git.update_ref(branch, sha, parent)
            repo.pushed_at = now_iso()
            self.store.put(repo)
            return sha

    def update_repo(self, principal: Principal, repo: Repo, fields: dict[str, Any]) -> Repo:
        """Change a repository's description, visibility or default branch, or archive or unarchive it.

        An archived repository is read-only: it takes no change but being unarchived. GitHub would also
        send `repository` webhooks (`edited`, `archived`, `privatized`, ...); the sandbox sends none.
        """
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            archived = fields.get("archived")
            if archived is not None and not isinstance(archived, bool):
                raise invalid("Repository", "archived")
            if repo.archived and archived is not False:
                raise ApiError(403, "Repository was archived so is read-only.")
            description = fields.get("description", repo.description)
            if description is not None and not isinstance(description, str):
                raise invalid("Repository", "description")
            visibility = fields.get("visibility")
            if visibility is None and "private" in fields:
                if not isinstance(fields["private"], bool):
                    raise invalid("Repository", "private")
                visibility = "private" if fields["private"] else "public"
            if visibility is not None and visibility not in ("public", "private", "internal"):
                raise invalid("Repository", "visibility")
            owner = self.store.get(Account, repo.owner_id)
            if visibility == "internal" and (owner is None or owner.type != "Organization"):
                raise invalid("Repository", "visibility", "custom", "Only organization repositories can be internal")
            branch = fields.get("default_branch")
            if branch is not None and (not isinstance(branch, str) or
                                       self.git(repo).resolve(f"refs/heads/{branch}") is None):
                raise invalid("Repository", "default_branch", "invalid",
                              f"The branch {branch} was not found. Please push that ref first or create it via "
                              "the Git Data API.")
            repo.description = description
            if visibility is not None:
                repo.private, repo.internal = visibility != "public", visibility == "internal"
            if branch is not None and branch != repo.default_branch:
                self.git(repo).set_head(branch)
                repo.default_branch = branch
            if archived is not None:
                repo.archived = archived
            repo.updated_at = now_iso()
            return self.store.put(repo)

    def delete_repo(self, principal: Principal, repo: Repo) -> None:
        with self.store.lock:
            self.access.require(principal, repo, Need("administration", "write", "admin"))
            shutil.rmtree(self.git(repo).path, ignore_errors=True)
            self.store.delete(repo)

    # -- custom properties ---------------------------------------------------------------------------------

    def custom_property(self, org: Account, name: str) -> CustomProperty | None:
        return self.store.first(CustomProperty, lambda p: p.org_id == org.id and p.name == name)

    def custom_properties(self, principal: Principal, org: Account) -> list[CustomProperty]:
        """The organization's property definitions, which its members (and apps it installed that may read
        organization custom properties) can read."""
        if not principal.is_site_admin:
            if principal.kind == "installation":
                installation = principal.installation
                if installation is None or installation.account_id != org.id or \
                        self.access.permission_level(principal, "organization_custom_properties") < 1:
                    raise refused("organization_custom_properties", "read")
            elif principal.account is None or self._membership(org, principal.account) is None:
                raise not_found()
        return self.store.all(CustomProperty, lambda p: p.org_id == org.id)

    def _membership(self, org: Account, user: Account) -> Membership | None:
        return self.store.first(Membership, lambda m: m.org_id == org.id and m.user_id == user.id)

    def put_custom_property(self, principal: Principal, org: Account, name: str, fields: Any) -> CustomProperty:
        """Define a custom property, or change its definition: organization owners only (and apps with
        `organization_custom_properties: admin`)."""
        with self.store.lock:
            if org.type != "Organization":
                raise not_found()
            if not principal.is_site_admin:
                if principal.kind == "installation":
                    installation = principal.installation
                    if installation is None or installation.account_id != org.id or \
                            self.access.permission_level(principal, "organization_custom_properties") < 3:
                        raise refused("organization_custom_properties", "admin")
                else:
                    member = self._membership(org, self.actor_account(principal))
                    if member is None:
                        raise not_found()
                    if member.role != "admin":
                        raise ApiError(403, "You must be an organization owner to manage custom properties.")
            if not isinstance(fields, dict):
                raise ApiError(400, "Problems parsing JSON")
            if not _PROPERTY_NAME.match(name):
                raise invalid("CustomProperty", "property_name")
            value_type = fields.get("value_type")
            if value_type not in VALUE_TYPES:
                raise invalid("CustomProperty", "value_type", "missing_field" if value_type is None else "invalid")
            allowed = fields.get("allowed_values")
            if value_type in ("single_select", "multi_select"):
                if not isinstance(allowed, list) or not allowed or not all(isinstance(v, str) and v for v in allowed):
                    raise invalid("CustomProperty", "allowed_values", "missing_field" if allowed is None else "invalid")
            elif allowed is not None:
                raise invalid("CustomProperty", "allowed_values", "custom",
                              "Allowed values are only for single_select and multi_select properties")
            editors = fields.get("values_editable_by") or "org_actors"
            if editors not in EDITORS:
                raise invalid("CustomProperty", "values_editable_by")
            required, explicit = fields.get("required", False), fields.get("require_explicit_values", False)
            if not isinstance(required, bool):
                raise invalid("CustomProperty", "required")
            if not isinstance(explicit, bool):
                raise invalid("CustomProperty", "require_explicit_values")
            description = fields.get("description")
            if description is not None and not isinstance(description, str):
                raise invalid("CustomProperty", "description")
            found = self.custom_property(org, name)
            prop = CustomProperty(found.id if found else self.store.new_id(), org.id, name, value_type,
                                  required=required, description=description, allowed_values=allowed,
                                  values_editable_by=editors, require_explicit_values=explicit)
            default = fields.get("default_value")
            if default is not None:
                prop.default_value = _property_value(prop, default)
            elif required:
                raise invalid("CustomProperty", "default_value", "missing_field",
                              "A required property needs a default value")
            return self.store.put(prop)

    def set_repo_properties(self, principal: Principal, repo: Repo, entries: Any) -> Repo:
        """Set (or, with a null value, unset) a repository's values of its organization's custom
        properties: all of them or none, each only by whoever its definition lets set it."""
        with self.store.lock:
            self.access.require(principal, repo, READ_META)
            owner = self.store.get(Account, repo.owner_id)
            if owner is None or owner.type != "Organization":
                raise not_found()
            if not isinstance(entries, list):
                raise invalid("CustomPropertyValue", "properties", "missing_field" if entries is None else "invalid")
            wanted: dict[str, Any] = {}
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("property_name"), str) \
                        or "value" not in entry:
                    raise invalid("CustomPropertyValue", "properties")
                wanted[entry["property_name"]] = entry["value"]
            values = self._property_values(principal, owner, repo, wanted)
            for name, value in values.items():
                if value is None:
                    repo.custom_properties.pop(name, None)
                else:
                    repo.custom_properties[name] = value
            repo.updated_at = now_iso()
            return self.store.put(repo)

    def _property_values(self, principal: Principal, org: Account, repo: Repo | None,
                         wanted: dict[str, Any]) -> dict[str, Any]:
        """`wanted` checked against the organization's definitions and who may set each value (`repo` None:
        one `principal` is creating, whose admin they become)."""
        if not isinstance(wanted, dict):
            raise invalid("Repository", "custom_properties")
        checked: dict[str, Any] = {}
        for name, value in wanted.items():
            prop = self.custom_property(org, name) if org.type == "Organization" else None
            if prop is None:
                raise invalid("CustomPropertyValue", "property_name", "custom",
                              f"Property {name} is not defined for {org.login}")
            checked[name] = _property_value(prop, value)
            if not self._may_set_value(principal, org, prop, repo):
                who = "organization owners" if prop.values_editable_by == "org_actors" else \
                    "organization owners and the repository's admins"
                raise ApiError(403, f"You do not have permission to edit the value of custom property {name}: "
                                    f"only {who} may")
        return checked

    def _may_set_value(self, principal: Principal, org: Account, prop: CustomProperty, repo: Repo | None) -> bool:
        if principal.is_site_admin:
            return True
        repo_actors = prop.values_editable_by == "org_and_repo_actors"
        if principal.kind == "installation":
            installation = principal.installation
            if installation is None or installation.account_id != org.id:
                return False
            if self.access.permission_level(principal, "organization_custom_properties") >= 2:
                return True
            return repo_actors and self.access.permission_level(principal, "repository_custom_properties") >= 2 \
                and (repo is None or self.access.installation_covers(principal, repo))
        account = principal.account
        if principal.kind != "user" or account is None:
            return False
        member = self._membership(org, account)
        if member is not None and member.role == "admin":
            return True
        return repo_actors and (repo is None or self.access.role_of(account, repo) == "admin")

    # -- commits and refs -------------------------------------------------------------------------------------

    def _person_of(self, account: Account) -> gitrepo.Person:
        return gitrepo.Person(account.name or account.login, account.email or f"{account.login}@{NOREPLY}", now_iso())

    def person_of(self, principal: Principal) -> gitrepo.Person:
        """The git identity of whoever acts (an app acts as its bot)."""
        if principal.account is not None:
            return self._person_of(principal.account)
        return gitrepo.Person("GitHub", f"noreply@{NOREPLY}", now_iso())

    def move_ref(self, principal: Principal | None, repo: Repo, ref: str, new: str | None, expected: str | None,
                 force: bool = False, merging: bool = False, refusal_status: int = 422) -> None:
        """Create, move (fast-forward unless `force`) or delete (`new` None) a ref, then fire push events.

        Branch protection applies as to a push (`protection_refusal`), except for the merge of a pull
        request (`merging`), which is how protected branches change; it answers `refusal_status`.
        """
        with self.store.lock:
            if repo.archived:
                raise ApiError(403, "Repository was archived so is read-only.")
            git = self.git(repo)
            with self.repo_lock(repo):
                current = git.refs(ref).get(ref)
                if expected is not None and current != expected:
                    raise ApiError(409, "Reference update failed")
                if not merging and principal is not None:
                    refusal = self.protection_refusal(principal, repo, ref, current, new)
                    if refusal:
                        raise ApiError(refusal_status, refusal)
                if new is None:
                    if current is None:
                        raise unprocessable("Reference does not exist")
                    git.delete_ref(ref)
                else:
                    if current and not force and not git.is_ancestor(current, new):
                        raise unprocessable("Update is not a fast forward")
                    if not git.update_ref(ref, new, current or gitrepo.ZERO_SHA):
                        raise ApiError(409, "Reference update failed")
            self.after_push(repo, [RefUpdate(ref, current or gitrepo.ZERO_SHA, new or gitrepo.ZERO_SHA)],
                            principal.account if principal else None)

    def push_rules(self, principal: Principal, repo: Repo) -> PushRules:
        """What branch protection forbids `principal` to do to each protected branch outside a pull request."""
        rules = PushRules()
        is_admin = principal.kind == "user" and principal.account is not None and \
            self.access.role_of(principal.account, repo) == "admin"
        for protection in self.store.all(Protection, lambda p: p.repo_id == repo.id):
            settings = protection.settings
            if is_admin and not settings.get("enforce_admins"):
                continue
            ref = f"refs/heads/{protection.branch}"
            if not settings.get("allow_deletions"):
                rules.no_delete.append(ref)
            if not settings.get("allow_force_pushes"):
                rules.no_force.append(ref)
            if settings.get("required_pull_request_reviews") or settings.get("required_status_checks") or \
                    settings.get("lock_branch"):
                rules.locked.append(ref)
        return rules

    def protection_refusal(self, principal: Principal, repo: Repo, ref: str, old: str | None,
                           new: str | None) -> str | None:
        """Why branch protection refuses moving `ref` from `old` to `new` (None: delete) outside a pull request."""
        if old is None:
            return None
        rules = self.push_rules(principal, repo)
        if new is None and ref in rules.no_delete:
            return "Cannot delete this protected branch"
        if new is not None and ref in rules.no_force and not self.git(repo).is_ancestor(old, new):
            return "Cannot force-push to this branch"
        if ref in rules.locked:
            return "Changes must be made through a pull request."
        return None

    def commit_files(self, principal: Principal, repo: Repo, branch: str, changes: dict[str, bytes | None],
                     message: str, expected_shas: dict[str, str | None] | None = None) -> str:
        """One commit on `branch` setting (or, with None, deleting) files; returns the new commit sha."""
        with self.store.lock:
            git = self.git(repo)
            ref = f"refs/heads/{branch}"
            parent = git.resolve(ref)
            if parent is None and git.branches():
                raise ApiError(404, f"Branch {branch} not found")
            tree_changes = []
            for path, data in changes.items():
                existing = git.entry(parent, path) if parent else None
                if expected_shas is not None:
                    expected = expected_shas.get(path)
                    if existing is not None and existing.type == "blob" and expected is None:
                        raise invalid("", "sha", "missing_field", "\"sha\" wasn't supplied.")
                    if expected is not None and (existing is None or existing.sha != expected):
                        raise ApiError(409, f"{path} does not match {expected}")
                if data is None:
                    if existing is None:
                        raise not_found()
                    tree_changes.append(gitrepo.TreeChange(path, "100644", None))
                else:
                    tree_changes.append(gitrepo.TreeChange(path, existing.mode if existing else "100644",
                                                           git.write_blob(data)))
            base_tree = git.resolve(parent, "tree") if parent else None
            tree = git.write_tree(base_tree, tree_changes)
            who = self.person_of(principal)
            sha = git.write_commit(tree, [parent] if parent else [], message, who, who)
            self.move_ref(principal, repo, ref, sha, parent, refusal_status=409)
            return sha

    def after_push(self, repo: Repo, updates: list[RefUpdate], pusher: Account | None) -> None:
        """What GitHub does after refs move: `push` deliveries, PR bookkeeping, `synchronize`, check suites."""
        with self.store.lock:
            git = self.git(repo)
            repo.pushed_at = now_iso()
            repo.updated_at = repo.pushed_at
            self.store.put(repo)
            for update in updates:
                self._push_event(repo, git, update, pusher)
                if not update.ref.startswith("refs/heads/"):
                    continue
                branch = update.ref.removeprefix("refs/heads/")
                if update.after == gitrepo.ZERO_SHA:
                    continue
                self._follow_fork_branch(repo, branch, update, pusher)
                # Open pull requests follow their branches; closed ones keep theirs until reopened.
                for pull in self.store.all(PullRequest, lambda p: p.repo_id == repo.id and not p.merged
                                           and p.head_repo_id is None):
                    issue = self.store.get(Issue, pull.issue_id)
                    if issue is None or issue.state != "open":
                        continue
                    if pull.base_ref == branch:
                        pull.base_sha = update.after
                        self.store.put(pull)
                        self.update_pull_refs(repo, pull)
                    if pull.head_ref == branch and pull.head_sha != update.after:
                        before = pull.head_sha
                        pull.head_sha = update.after
                        self.store.put(pull)
                        self.update_pull_refs(repo, pull)
                        issue.updated_at = now_iso()
                        self.store.put(issue)
                        self._pull_event("synchronize", pull, pusher, before=before, after=update.after)
                self._request_check_suites(repo, branch, update)

    def _follow_fork_branch(self, pushed: Repo, branch: str, update: RefUpdate, pusher: Account | None) -> None:
        """Pull requests from a fork follow its branch into the repository they were opened on, as those
        from the same repository do, and follow their base branch there."""
        for pull in self.store.all(PullRequest, lambda p: not p.merged and p.head_repo_id is not None and (
                (p.head_repo_id == pushed.id and p.head_ref == branch)
                or (p.repo_id == pushed.id and p.base_ref == branch))):
            issue = self.store.get(Issue, pull.issue_id)
            target = self.store.get(Repo, pull.repo_id)
            if issue is None or issue.state != "open" or target is None:
                continue
            if pull.repo_id == pushed.id:
                pull.base_sha = update.after
                self.store.put(pull)
                self.update_pull_refs(target, pull)
                continue
            if pull.head_sha == update.after:
                continue
            self._take_fork_head(target, pushed, branch)
            before, pull.head_sha = pull.head_sha, update.after
            self.store.put(pull)
            self.update_pull_refs(target, pull)
            issue.updated_at = now_iso()
            self.store.put(issue)
            self._pull_event("synchronize", pull, pusher, before=before, after=update.after)

    def _push_event(self, repo: Repo, git: gitrepo.GitRepo, update: RefUpdate, pusher: Account | None) -> None:
        # GitHub sends `push` for branches and tags only; notes and other refs move silently.
        if not update.ref.startswith(("refs/heads/", "refs/tags/")):
            return
        created, deleted = update.before == gitrepo.ZERO_SHA, update.after == gitrepo.ZERO_SHA
        commits: list[dict[str, Any]] = []
        if not deleted and git.object_type(update.after) == "commit":
            if created:
                others = [sha for ref, sha in git.refs("refs/heads/").items() if ref != update.ref]
                shas = git.text("rev-list", "--reverse", update.after, *[f"^{s}" for s in others]).split()
            else:
                shas = git.rev_list(update.after, update.before)
            commits = [self._push_commit(repo, git, sha) for sha in shas[-20:]]
        owner = self.store.get(Account, repo.owner_id)
        who = pusher or owner
        assert who is not None
        repo_json = self.render.repo(repo, for_webhook=True)
        # Push payloads carry the repository's timestamps as Unix times, as GitHub's do.
        repo_json["created_at"] = int(_epoch(repo.created_at))
        repo_json["pushed_at"] = int(_epoch(repo.pushed_at or repo.created_at))
        repo_json["stargazers"] = 0
        repo_json["master_branch"] = repo.default_branch
        if owner is not None and owner.type == "Organization":
            repo_json["organization"] = owner.login
        owner_json = self.render.user(owner)
        assert owner_json is not None
        owner_json.update(name=owner.login if owner else None, email=None)
        repo_json["owner"] = owner_json
        payload: dict[str, Any] = {
            "ref": update.ref,
            "before": update.before,
            "after": update.after,
            "repository": repo_json,
            "pusher": {"name": who.login, "email": who.email},
            "sender": self.render.user(who),
            "created": created,
            "deleted": deleted,
            "forced": not created and not deleted and not git.is_ancestor(update.before, update.after),
            "base_ref": None,
            "compare": f"{self.urls.web}/{self.render.repo_path(repo)}/compare/"
                       f"{update.before[:12]}...{update.after[:12]}",
            "commits": commits,
            "head_commit": commits[-1] if commits else None,
        }
        self._add_org(payload, repo)
        self.hooks.emit("push", payload, repo)

    def _push_commit(self, repo: Repo, git: gitrepo.GitRepo, sha: str) -> dict[str, Any]:
        commit = git.commit(sha)
        parent = commit.parents[0] if commit.parents else None
        files = git.diff(parent, sha)

        def person(p: gitrepo.Person) -> dict[str, Any]:
            account = self.render.account_for_email(p.email)
            found = {"name": p.name, "email": p.email, "date": p.date}
            if account is not None:
                found["username"] = account.login
            return found

        return {
            "id": sha,
            "tree_id": commit.tree,
            "distinct": True,
            "message": commit.message.rstrip("\n"),
            "timestamp": commit.committer.date,
            "url": f"{self.urls.web}/{self.render.repo_path(repo)}/commit/{sha}",
            "author": person(commit.author),
            "committer": person(commit.committer),
            "added": [f.filename for f in files if f.status == "added"],
            "removed": [f.filename for f in files if f.status == "removed"],
            "modified": [f.filename for f in files if f.status not in ("added", "removed")],
        }

    def _request_check_suites(self, repo: Repo, branch: str, update: RefUpdate) -> None:
        """A check suite per app with checks access, and `check_suite requested`, for each new head."""
        for installation in self.hooks.installations_of(repo):
            if installation.permissions.get("checks") not in ("read", "write"):
                continue
            app = self.store.get(App, installation.app_id)
            if app is None:
                continue
            suite = self._suite(repo, app, update.after, branch, update.before)
            payload: dict[str, Any] = {
                "action": "requested",
                "check_suite": self.render.check_suite(suite, for_webhook=True),
                "repository": self.render.repo(repo, for_webhook=True),
                "sender": self.render.user(self.store.get(Account, repo.owner_id)),
            }
            self._add_org(payload, repo)
            self.hooks.emit("check_suite", payload, repo, app_only=app)

    def _suite(self, repo: Repo, app: App, sha: str, branch: str | None, before: str | None = None) -> CheckSuite:
        found = self.store.first(CheckSuite, lambda s: (s.repo_id, s.app_id, s.head_sha) == (repo.id, app.id, sha))
        if found is not None:
            return found
        now = now_iso()
        return self.store.put(CheckSuite(self.store.new_id(), repo.id, app.id, sha, branch, now, now,
                                         before=before, after=sha))

    def _add_org(self, payload: dict[str, Any], repo: Repo) -> None:
        owner = self.store.get(Account, repo.owner_id)
        if owner is not None and owner.type == "Organization":
            payload["organization"] = self.render.org_simple(owner)

    # -- pull requests -------------------------------------------------------------------------------------

    def fork_repo(self, principal: Principal, repo: Repo) -> Repo:
        """`repo` forked into the account of whoever acts, with its branches (GitHub shares a network's
        objects; here the fork gets a copy of them)."""
        with self.store.lock:
            self.access.require(principal, repo, Need("contents", "read", "read"))
            account = self.actor_account(principal)
            found = self.find_repo(account.login, repo.name)
            if found is not None and found.fork_of == repo.id:
                return found
            fork = self.create_repo(principal, account, repo.name, repo.private, repo.description,
                                    default_branch=repo.default_branch)
            fork.fork_of = repo.id
            self.store.put(fork)
            self.git(fork).run("fetch", "--quiet", str(self.git(repo).path), "+refs/heads/*:refs/heads/*")
            return fork

    def _head_repo(self, repo: Repo, head: str) -> Repo:
        """The repository holding a pull request's head branch: `repo`, or the fork `owner:branch` names."""
        owner = self.store.get(Account, repo.owner_id)
        assert owner is not None
        login = head.split(":", 1)[0] if ":" in head else owner.login
        if login.lower() == owner.login.lower():
            return repo
        fork = self.find_repo(login, repo.name)
        if fork is None or fork.fork_of != repo.id:
            raise invalid("PullRequest", "head", "invalid")
        return fork

    def _take_fork_head(self, repo: Repo, fork: Repo, branch: str) -> None:
        """Bring a fork's branch's objects into `repo`, as GitHub's shared object store has them."""
        self.git(repo).run("fetch", "--quiet", "--no-tags", str(self.git(fork).path), f"refs/heads/{branch}")

    def open_pull_request(self, principal: Principal, repo: Repo, head: str, base: str, title: str,
                          body: str | None = None, draft: bool = False,
                          maintainer_can_modify: bool = False) -> PullRequest:
        with self.store.lock:
            self.access.require(principal, repo, Need("pull_requests", "write", "read"))
            author = self.actor_account(principal)
            git = self.git(repo)
            head_ref = head.split(":", 1)[1] if ":" in head else head
            head_repo = self._head_repo(repo, head)
            head_sha = self.git(head_repo).resolve(f"refs/heads/{head_ref}")
            base_sha = git.resolve(f"refs/heads/{base}")
            if head_repo is not repo and head_sha is not None:
                self._take_fork_head(repo, head_repo, head_ref)
            if not title or not title.strip():
                raise invalid("PullRequest", "title", "missing_field")
            if head_sha is None:
                raise invalid("PullRequest", "head", "invalid")
            if base_sha is None:
                raise invalid("PullRequest", "base", "invalid")
            if body is not None and len(body) > MAX_BODY:
                raise invalid("PullRequest", "body", "custom", f"body is too long (maximum is {MAX_BODY} characters)")
            owner = self.store.get(Account, repo.owner_id)
            assert owner is not None
            head_repo_id = head_repo.id if head_repo is not repo else None
            for other in self.store.all(PullRequest, lambda p: p.repo_id == repo.id and p.head_ref == head_ref
                                        and p.base_ref == base and p.head_repo_id == head_repo_id):
                other_issue = self.store.get(Issue, other.issue_id)
                if other_issue is not None and other_issue.state == "open":
                    raise invalid("PullRequest", "", "custom",
                                  f"A pull request already exists for {owner.login}:{head_ref}.")
            if not git.rev_list(head_sha, base_sha):
                raise invalid("PullRequest", "", "custom", f"No commits between {base} and {head_ref}")
            now = now_iso()
            number = self._next_number(repo)
            issue = self.store.put(Issue(self.store.new_id(), repo.id, number, title, author.id, now, now, body=body,
                                         is_pull=True, app_id=principal.app.id if principal.app else None))
            pull = self.store.put(PullRequest(self.store.new_id(), repo.id, number, issue.id, head_ref, head_sha, base,
                                              base_sha, draft=draft, maintainer_can_modify=maintainer_can_modify,
                                              head_repo_id=head_repo_id))
            self.update_pull_refs(repo, pull)
            self._pull_event("opened", pull, author)
            return pull

    def complete_workflow_run(self, repo: Repo, pull: PullRequest, workflow: str, path: str, conclusion: str,
                              actor: Account) -> dict[str, Any]:
        """A GitHub Actions run of `workflow` (its file `path`) for `pull`'s head has completed: the
        `workflow_run completed` payload, sent to the hooks that want it and returned.

        As on GitHub, a run for a fork's pull request lists no pull request (`pull_requests` is empty) and
        names the fork as its head repository: whoever acts on it must find the pull request itself.
        """
        with self.store.lock:
            head_repo = self.store.get(Repo, pull.head_repo_id) if pull.head_repo_id is not None else repo
            assert head_repo is not None
            run_id, workflow_id = self.store.new_id(), self.store.new_id()
            now = now_iso()
            api = f"{self.render.urls.api}/repos/{self.render.repo_path(repo)}"
            web = f"{self.render.urls.web}/{self.render.repo_path(repo)}"
            run_url = f"{api}/actions/runs/{run_id}"
            commit = self.git(repo).commit(pull.head_sha)
            who = {"name": commit.author.name, "email": commit.author.email}
            simple_repo = self.render.repo(repo, full=False)
            pull_requests = [] if pull.head_repo_id is not None else [{
                "url": f"{api}/pulls/{pull.number}", "id": pull.id, "number": pull.number,
                "head": {"ref": pull.head_ref, "sha": pull.head_sha,
                         "repo": {"id": repo.id, "url": api, "name": repo.name}},
                "base": {"ref": pull.base_ref, "sha": pull.base_sha,
                         "repo": {"id": repo.id, "url": api, "name": repo.name}},
            }]
            actor_json = self.render.user(actor)
            payload: dict[str, Any] = {
                "action": "completed",
                "workflow": {
                    "badge_url": f"{web}/workflows/{path.rsplit('/', 1)[-1]}/badge.svg", "created_at": now,
                    "html_url": f"{web}/blob/{repo.default_branch}/{path}", "id": workflow_id, "name": workflow,
                    "node_id": node_id("W", workflow_id), "path": path, "state": "active", "updated_at": now,
                    "url": f"{api}/actions/workflows/{workflow_id}",
                },
                "workflow_run": {
                    "actor": actor_json, "triggering_actor": actor_json,
                    "artifacts_url": f"{run_url}/artifacts", "cancel_url": f"{run_url}/cancel",
                    "check_suite_id": run_id, "check_suite_node_id": node_id("CS", run_id),
                    "check_suite_url": f"{api}/check-suites/{run_id}", "conclusion": conclusion,
                    "created_at": now, "updated_at": now, "run_started_at": now, "event": "pull_request",
                    "head_branch": pull.head_ref, "head_sha": pull.head_sha,
                    "head_commit": {"id": pull.head_sha, "tree_id": commit.tree, "message": commit.message,
                                    "timestamp": commit.committer.date, "author": who,
                                    "committer": {"name": commit.committer.name, "email": commit.committer.email}},
                    "head_repository": self.render.repo(head_repo, full=False), "repository": simple_repo,
                    "html_url": f"{web}/actions/runs/{run_id}", "id": run_id, "jobs_url": f"{run_url}/jobs",
                    "logs_url": f"{run_url}/logs", "name": workflow, "node_id": node_id("WFR", run_id),
                    "path": path, "previous_attempt_url": None, "pull_requests": pull_requests,
                    "rerun_url": f"{run_url}/rerun", "run_attempt": 1, "run_number": run_id, "status": "completed",
                    "url": run_url, "workflow_id": workflow_id,
                    "workflow_url": f"{api}/actions/workflows/{workflow_id}",
                    "display_title": self.render.pull(pull)["title"], "referenced_workflows": [],
                },
                "repository": self.render.repo(repo, for_webhook=True),
                "sender": actor_json,
            }
            self._add_org(payload, repo)
            self.hooks.emit("workflow_run", payload, repo)
            return payload

    def update_pull_refs(self, repo: Repo, pull: PullRequest) -> None:
        """GitHub's hidden refs of a pull request: `refs/pull/N/head` (its head) and, while it is open and
        merges cleanly, `refs/pull/N/merge` (the merge a CI would test). Clients fetch these by name."""
        git = self.git(repo)
        git.update_ref(f"refs/pull/{pull.number}/head", pull.head_sha)
        issue = self.store.get(Issue, pull.issue_id)
        tree = None
        if issue is not None and issue.state == "open" and not pull.merged:
            tree = git.merge_tree(pull.base_sha, pull.head_sha)
        if tree is None:
            git.delete_ref(f"refs/pull/{pull.number}/merge")
            return
        github = gitrepo.Person("GitHub", f"noreply@{NOREPLY}", now_iso())
        merge = git.write_commit(tree, [pull.base_sha, pull.head_sha],
                                 f"Merge {pull.head_sha} into {pull.base_sha}\n", github, github)
        git.update_ref(f"refs/pull/{pull.number}/merge", merge)

    def _next_number(self, repo: Repo) -> int:
        return max((i.number for i in self.store.all(Issue, lambda i: i.repo_id == repo.id)), default=0) + 1

    def _pull_event(self, action: str, pull: PullRequest, sender: Account | None, **extra: Any) -> None:
        repo = self.store.get(Repo, pull.repo_id)
        assert repo is not None
        payload: dict[str, Any] = {"action": action, "number": pull.number}
        if action == "synchronize":
            payload["before"] = extra.pop("before")
            payload["after"] = extra.pop("after")
        payload.update(extra)
        payload["pull_request"] = self.render.pull(pull, for_webhook=True)
        payload["repository"] = self.render.repo(repo, for_webhook=True)
        self._add_org(payload, repo)
        payload["sender"] = self.render.user(sender or self.store.get(Account, repo.owner_id))
        self.hooks.emit("pull_request", payload, repo)

    def update_pull_request(self, principal: Principal, repo: Repo, number: int, title: str | None = None,
                            body: str | None = None, state: str | None = None, base: str | None = None) -> PullRequest:
        with self.store.lock:
            pull = self.pull(repo, number)
            issue = self.issue(repo, number)
            actor = self.actor_account(principal)
            if issue.user_id != actor.id:
                self.access.require(principal, repo, Need("pull_requests", "write", "triage"))
            else:
                self.access.require(principal, repo, Need("pull_requests", "write", "read"))
            changes: dict[str, Any] = {}
            if title is not None and title != issue.title:
                if not title.strip():
                    raise invalid("PullRequest", "title", "missing_field")
                changes["title"] = {"from": issue.title}
                issue.title = title
            if body is not None and body != issue.body:
                if len(body) > MAX_BODY:
                    raise invalid("PullRequest", "body", "custom", "body is too long")
                changes["body"] = {"from": issue.body or ""}
                issue.body = body
            if base is not None and base != pull.base_ref:
                base_sha = self.git(repo).resolve(f"refs/heads/{base}")
                if base_sha is None:
                    raise invalid("PullRequest", "base", "invalid")
                changes["base"] = {"ref": {"from": pull.base_ref}, "sha": {"from": pull.base_sha}}
                pull.base_ref, pull.base_sha = base, base_sha
                self.update_pull_refs(repo, pull)
            if state is not None and state not in ("open", "closed"):
                raise invalid("PullRequest", "state", "invalid")
            issue.updated_at = now_iso()
            self.store.put(issue)
            self.store.put(pull)
            if changes:
                self._pull_event("edited", pull, actor, changes=changes)
            if state is not None and state != issue.state and not pull.merged:
                issue.state = state  # type: ignore[assignment]
                issue.closed_at = now_iso() if state == "closed" else None
                issue.closed_by_id = actor.id if state == "closed" else None
                self.store.put(issue)
                if state == "open":
                    git = self.git(repo)
                    pull.head_sha = git.resolve(f"refs/heads/{pull.head_ref}") or pull.head_sha
                    pull.base_sha = git.resolve(f"refs/heads/{pull.base_ref}") or pull.base_sha
                    self.store.put(pull)
                self.update_pull_refs(repo, pull)
                self._pull_event("closed" if state == "closed" else "reopened", pull, actor)
            return pull

    def review(self, principal: Principal, repo: Repo, number: int, event: str, body: str = "",
               commit_id: str | None = None) -> Review:
        with self.store.lock:
            self.access.require(principal, repo, Need("pull_requests", "write", "read"))
            pull = self.pull(repo, number)
            issue = self.issue(repo, number)
            actor = self.actor_account(principal)
            states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
            if event not in states:
                raise unprocessable("Unprocessable Entity")  # pending reviews are not modelled
            if issue.state != "open":
                raise ApiError(422, "Unprocessable Entity", errors=[{"code": "custom", "message":
                               "Can not review a closed pull request"}])
            if event in ("APPROVE", "REQUEST_CHANGES") and issue.user_id == actor.id:
                verb = "approve" if event == "APPROVE" else "request changes on"
                raise ApiError(422, "Unprocessable Entity", errors=[{"code": "custom", "message":
                               f"Review Can not {verb} your own pull request"}])
            if event in ("REQUEST_CHANGES", "COMMENT") and not body:
                raise ApiError(422, "Unprocessable Entity", errors=[{"code": "custom", "message":
                               f"Review Body is required when the event is {event}"}])
            if len(body) > MAX_BODY:
                raise invalid("PullRequestReview", "body", "custom", "body is too long")
            if commit_id is not None and not self.git(repo).exists(commit_id):
                raise unprocessable("Commit not found")
            review = self.store.put(Review(self.store.new_id(), repo.id, number, actor.id, states[event],
                                           commit_id or pull.head_sha, now_iso(), body=body))
            payload: dict[str, Any] = {
                "action": "submitted",
                "review": self.render.review(review, for_webhook=True),
                "pull_request": self.render.pull(pull, full=False, for_webhook=True),
                "repository": self.render.repo(repo, for_webhook=True),
                "sender": self.render.user(actor),
            }
            self._add_org(payload, repo)
            self.hooks.emit("pull_request_review", payload, repo)
            return review

    def merge_blockers(self, repo: Repo, pull: PullRequest) -> list[str]:
        """Why branch protection would refuse to merge `pull` now (empty when it may merge)."""
        protection = self.store.first(Protection, lambda p: p.repo_id == repo.id and p.branch == pull.base_ref)
        if protection is None:
            return []
        reasons = []
        reviews_rule = protection.settings.get("required_pull_request_reviews") or None
        if reviews_rule:
            needed = int(reviews_rule.get("required_approving_review_count", 1))
            latest: dict[int, Review] = {}
            for review in self.store.all(Review, lambda r: r.repo_id == repo.id and r.pull_number == pull.number):
                if review.state != "COMMENTED":
                    latest[review.user_id] = review
            if any(r.state == "CHANGES_REQUESTED" for r in latest.values()):
                reasons.append("Changes must be made through a pull request.")
            approvals = sum(1 for r in latest.values() if r.state == "APPROVED" and self._may_write(r.user_id, repo))
            if approvals < needed:
                reasons.append(f"At least {needed} approving review{'s are' if needed > 1 else ' is'} required "
                               "by reviewers with write access.")
        checks_rule = protection.settings.get("required_status_checks") or None
        if checks_rule:
            # A check required from one app (`checks: [{context, app_id}]`, the "expected source" GitHub
            # shows) is passed only by that app's check runs; one required by its name alone, by any.
            required: dict[str, int | None] = {c: None for c in checks_rule.get("contexts") or []}
            for check in checks_rule.get("checks") or []:
                app_id = check.get("app_id")
                required[check["context"]] = app_id if isinstance(app_id, int) and app_id > 0 else None
            passed = self._passing_contexts(repo, pull.head_sha)
            for context, app_id in required.items():
                if context not in (passed if app_id is None else self._passing_runs(repo, pull.head_sha, app_id)):
                    reasons.append(f"Required status check \"{context}\" is expected.")
        return reasons

    def _may_write(self, account_id: int, repo: Repo) -> bool:
        account = self.store.get(Account, account_id)
        return account is not None and role_rank(self.access.role_of(account, repo)) >= role_rank("write")

    def _passing_contexts(self, repo: Repo, sha: str) -> set[str]:
        passed = set()
        latest: dict[str, Status] = {}
        for status in self.store.all(Status, lambda s: s.repo_id == repo.id and s.sha == sha):
            latest[status.context] = status
        passed |= {context for context, s in latest.items() if s.state == "success"}
        runs: dict[str, CheckRun] = {}
        for run in self.store.all(CheckRun, lambda r: r.repo_id == repo.id and r.head_sha == sha):
            runs[run.name] = run
        passed |= {name for name, r in runs.items() if r.status == "completed" and r.conclusion in
                   ("success", "neutral", "skipped")}
        return passed

    def _passing_runs(self, repo: Repo, sha: str, app_id: int) -> set[str]:
        """The names of `app_id`'s check runs on `sha` whose latest run passed."""
        runs: dict[str, CheckRun] = {}
        for run in self.store.all(CheckRun, lambda r: r.repo_id == repo.id and r.head_sha == sha
                                  and r.app_id == app_id):
            runs[run.name] = run
        return {name for name, r in runs.items() if r.status == "completed" and r.conclusion in
                ("success", "neutral", "skipped")}

    def merge(self, principal: Principal, repo: Repo, number: int, method: str = "merge",
              commit_title: str | None = None, commit_message: str | None = None,
              sha: str | None = None) -> PullRequest:
        with self.store.lock:
            self.access.require(principal, repo, WRITE_CODE)
            pull = self.pull(repo, number)
            issue = self.issue(repo, number)
            actor = self.actor_account(principal)
            if method not in ("merge", "squash", "rebase"):
                raise invalid("PullRequest", "merge_method", "invalid")
            if pull.merged or issue.state != "open":
                raise ApiError(405, "Pull Request is not mergeable")
            if sha is not None and sha != pull.head_sha:
                raise ApiError(409, "Head branch was modified. Review and try the merge again.")
            blockers = self.merge_blockers(repo, pull)
            if blockers:
                raise ApiError(405, "Repository rule violations found\n\n" + "\n".join(blockers))
            git = self.git(repo)
            base_ref = f"refs/heads/{pull.base_ref}"
            base_sha = git.resolve(base_ref)
            if base_sha is None:
                raise ApiError(405, "Pull Request is not mergeable")
            who = self._person_of(actor)
            if method == "rebase":
                new_sha = base_sha
                for sha_ in git.rev_list(pull.head_sha, base_sha):
                    commit = git.commit(sha_)
                    tree = git.merge_tree(new_sha, sha_) if commit.parents else commit.tree
                    if tree is None:
                        raise ApiError(405, "Pull Request is not mergeable")
                    new_sha = git.write_commit(tree, [new_sha], commit.message, commit.author, who)
            else:
                tree = git.merge_tree(base_sha, pull.head_sha)
                if tree is None:
                    raise ApiError(405, "Pull Request is not mergeable")
                if method == "merge":
                    default_title = f"Merge pull request #{number} from {self._owner_login(repo)}/{pull.head_ref}"
                    title = commit_title or default_title
                    message = f"{title}\n\n{commit_message if commit_message is not None else issue.title}\n"
                    new_sha = git.write_commit(tree, [base_sha, pull.head_sha], message, who, who)
                else:
                    title = commit_title or f"{issue.title} (#{number})"
                    commits = [git.commit(c) for c in git.rev_list(pull.head_sha, base_sha)]
                    default = "\n\n".join(f"* {c.message.strip()}" for c in commits)
                    message = f"{title}\n\n{commit_message if commit_message is not None else default}\n"
                    new_sha = git.write_commit(tree, [base_sha], message, who, who)
            now = now_iso()
            pull.merged, pull.merged_at, pull.merged_by_id, pull.merge_commit_sha = True, now, actor.id, new_sha
            issue.state, issue.closed_at, issue.closed_by_id, issue.updated_at = "closed", now, actor.id, now
            self.store.put(pull)
            self.store.put(issue)
            self.move_ref(principal, repo, base_ref, new_sha, base_sha, merging=True)
            pull.base_sha = base_sha  # the PR keeps the base it was merged onto
            self.store.put(pull)
            self.update_pull_refs(repo, pull)
            self._pull_event("closed", pull, actor)
            return pull

    def _owner_login(self, repo: Repo) -> str:
        owner = self.store.get(Account, repo.owner_id)
        return owner.login if owner else ""

    # -- issues and comments ---------------------------------------------------------------------------------

    def create_issue(self, principal: Principal, repo: Repo, title: str, body: str | None = None,
                     labels: list[str] | None = None) -> Issue:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "read"))
            author = self.actor_account(principal)
            if not title or not str(title).strip():
                raise invalid("Issue", "title", "missing_field")
            if body is not None and len(body) > MAX_BODY:
                raise invalid("Issue", "body", "custom", "body is too long (maximum is 65536 characters)")
            now = now_iso()
            issue = Issue(self.store.new_id(), repo.id, self._next_number(repo), title, author.id, now, now,
                          body=body, app_id=principal.app.id if principal.app else None)
            issue.label_ids = [self._label_for(repo, name).id for name in labels or []]
            self.store.put(issue)
            self._issue_event("opened", repo, issue, author)
            return issue

    def update_issue(self, principal: Principal, repo: Repo, number: int, title: str | None = None,
                     body: str | None = None, state: str | None = None, state_reason: str | None = None,
                     labels: list[str] | None = None) -> Issue:
        with self.store.lock:
            issue = self.issue(repo, number)
            if issue.is_pull and (title is not None or body is not None or state is not None):
                self.update_pull_request(principal, repo, number, title=title, body=body, state=state)
                issue = self.issue(repo, number)
                if labels is not None:
                    self.set_labels(principal, repo, number, labels)
                return issue
            actor = self.actor_account(principal)
            need = Need("issues", "write", "read" if issue.user_id == actor.id else "triage")
            self.access.require(principal, repo, need)
            changes: dict[str, Any] = {}
            if title is not None and title != issue.title:
                changes["title"] = {"from": issue.title}
                issue.title = title
            if body is not None and body != issue.body:
                if len(body) > MAX_BODY:
                    raise invalid("Issue", "body", "custom", "body is too long (maximum is 65536 characters)")
                changes["body"] = {"from": issue.body or ""}
                issue.body = body
            if labels is not None:
                issue.label_ids = [self._label_for(repo, name).id for name in labels]
            if state is not None and state not in ("open", "closed"):
                raise invalid("Issue", "state", "invalid")
            issue.updated_at = now_iso()
            self.store.put(issue)
            if changes:
                self._issue_event("edited", repo, issue, actor, changes=changes)
            if state is not None and state != issue.state:
                issue.state = state  # type: ignore[assignment]
                issue.state_reason = (state_reason or "completed") if state == "closed" else "reopened"
                issue.closed_at = now_iso() if state == "closed" else None
                issue.closed_by_id = actor.id if state == "closed" else None
                self.store.put(issue)
                self._issue_event("closed" if state == "closed" else "reopened", repo, issue, actor)
            return issue

    def _issue_event(self, action: str, repo: Repo, issue: Issue, sender: Account, **extra: Any) -> None:
        payload: dict[str, Any] = {"action": action, "issue": self.render.issue(issue, for_webhook=True), **extra,
                                   "repository": self.render.repo(repo, for_webhook=True),
                                   "sender": self.render.user(sender)}
        self._add_org(payload, repo)
        self.hooks.emit("issues", payload, repo)

    def _comment_need(self, issue: Issue) -> Need:
        return Need("pull_requests" if issue.is_pull else "issues", "write", "read")

    def comment(self, principal: Principal, repo: Repo, number: int, body: Any) -> Comment:
        with self.store.lock:
            issue = self.issue(repo, number)
            self._require_comment_write(principal, repo, issue)
            author = self.actor_account(principal)
            _check_body(body, "IssueComment")
            if issue.locked and not self.access.may(principal, repo, Need("issues", "write", "write")):
                raise ApiError(403, "Unable to create comment because issue is locked.")
            now = now_iso()
            comment = self.store.put(Comment(self.store.new_id(), repo.id, number, author.id, body, now, now,
                                             app_id=principal.app.id if principal.app else None))
            issue.updated_at = now
            self.store.put(issue)
            self._comment_event("created", repo, issue, comment, author)
            return comment

    def _require_comment_write(self, principal: Principal, repo: Repo, issue: Issue) -> None:
        # Installation tokens may comment on PRs with either permission, as on GitHub.
        if principal.kind == "installation" and issue.is_pull and self.access.may(
                principal, repo, Need("issues", "write", "read")):
            return
        self.access.require(principal, repo, self._comment_need(issue))

    def _comment_event(self, action: str, repo: Repo, issue: Issue, comment: Comment, sender: Account,
                       **extra: Any) -> None:
        payload: dict[str, Any] = {"action": action, "issue": self.render.issue(issue, for_webhook=True),
                                   "comment": self.render.comment(comment, for_webhook=True), **extra,
                                   "repository": self.render.repo(repo, for_webhook=True),
                                   "sender": self.render.user(sender)}
        self._add_org(payload, repo)
        self.hooks.emit("issue_comment", payload, repo)

    def _own_or_write(self, principal: Principal, repo: Repo, issue: Issue, author_id: int) -> Account:
        actor = self.actor_account(principal)
        if actor.id == author_id:
            self._require_comment_write(principal, repo, issue)
        else:
            self.access.require(principal, repo, Need(self._comment_need(issue).category, "write", "write"))
        return actor

    def edit_comment(self, principal: Principal, repo: Repo, comment_id: int, body: Any) -> Comment:
        with self.store.lock:
            comment = self.get_comment(repo, comment_id)
            issue = self.issue(repo, comment.issue_number)
            actor = self._own_or_write(principal, repo, issue, comment.user_id)
            _check_body(body, "IssueComment")
            before = comment.body
            comment.body = body
            comment.updated_at = now_iso()
            self.store.put(comment)
            self._comment_event("edited", repo, issue, comment, actor, changes={"body": {"from": before}})
            return comment

    def delete_comment(self, principal: Principal, repo: Repo, comment_id: int) -> None:
        with self.store.lock:
            comment = self.get_comment(repo, comment_id)
            issue = self.issue(repo, comment.issue_number)
            actor = self._own_or_write(principal, repo, issue, comment.user_id)
            payload_comment = comment
            for reaction in self.store.all(Reaction, lambda r: r.comment_id == comment.id):
                self.store.delete(reaction)
            self.store.delete(comment)
            self._comment_event("deleted", repo, issue, payload_comment, actor)

    def get_comment(self, repo: Repo, comment_id: int) -> Comment:
        comment = self.store.get(Comment, comment_id)
        if comment is None or comment.repo_id != repo.id:
            raise not_found()
        return comment

    def react(self, principal: Principal, repo: Repo, comment_id: int, content: str) -> tuple[Reaction, bool]:
        """Add a reaction; returns it and whether it is new (GitHub answers 200 for an existing one)."""
        with self.store.lock:
            comment = self.get_comment(repo, comment_id)
            issue = self.issue(repo, comment.issue_number)
            self._require_comment_write(principal, repo, issue)
            actor = self.actor_account(principal)
            if content not in REACTIONS:
                raise invalid("Reaction", "content", "invalid")
            found = self.store.first(Reaction, lambda r: r.comment_id == comment.id and r.user_id == actor.id
                                     and r.content == content)
            if found is not None:
                return found, False
            return self.store.put(Reaction(self.store.new_id(), comment.id, actor.id, content, now_iso())), True

    def unreact(self, principal: Principal, repo: Repo, comment_id: int, reaction_id: int) -> None:
        with self.store.lock:
            comment = self.get_comment(repo, comment_id)
            issue = self.issue(repo, comment.issue_number)
            self._require_comment_write(principal, repo, issue)
            reaction = self.store.get(Reaction, reaction_id)
            if reaction is None or reaction.comment_id != comment.id:
                raise not_found()
            actor = self.actor_account(principal)
            if reaction.user_id != actor.id:
                self.access.require(principal, repo, Need("issues", "write", "write"))
            self.store.delete(reaction)

    # -- labels -----------------------------------------------------------------------------------------------

    def _label_for(self, repo: Repo, name: str) -> Label:
        """The label called `name`, created (grey) if missing, as adding labels does on GitHub."""
        found = self.store.first(Label, lambda lb: lb.repo_id == repo.id and lb.name.lower() == name.lower())
        return found or self.store.put(Label(self.store.new_id(), repo.id, name, "ededed"))

    def find_label(self, repo: Repo, name: str) -> Label:
        found = self.store.first(Label, lambda lb: lb.repo_id == repo.id and lb.name.lower() == name.lower())
        if found is None:
            raise not_found()
        return found

    def create_label(self, principal: Principal, repo: Repo, name: Any, color: Any = None,
                     description: str | None = None) -> Label:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            if not isinstance(name, str) or not name.strip():
                raise invalid("Label", "name", "missing_field")
            color = (color or "ededed").lstrip("#") if isinstance(color, str | None) else ""
            if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
                raise invalid("Label", "color", "invalid")
            if self.store.first(Label, lambda lb: lb.repo_id == repo.id and lb.name.lower() == name.lower()):
                raise invalid("Label", "name", "already_exists")
            return self.store.put(Label(self.store.new_id(), repo.id, name, color.lower(), description))

    def update_label(self, principal: Principal, repo: Repo, name: str, new_name: str | None = None,
                     color: str | None = None, description: str | None = None) -> Label:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            label = self.find_label(repo, name)
            if new_name:
                label.name = new_name
            if color:
                if not re.fullmatch(r"#?[0-9a-fA-F]{6}", color):
                    raise invalid("Label", "color", "invalid")
                label.color = color.lstrip("#").lower()
            if description is not None:
                label.description = description
            return self.store.put(label)

    def delete_label(self, principal: Principal, repo: Repo, name: str) -> None:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            label = self.find_label(repo, name)
            for issue in self.store.all(Issue, lambda i: label.id in i.label_ids):
                issue.label_ids.remove(label.id)
                self.store.put(issue)
            self.store.delete(label)

    def set_labels(self, principal: Principal, repo: Repo, number: int, names: list[str], add: bool = False) -> Issue:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            issue = self.issue(repo, number)
            ids = list(issue.label_ids) if add else []
            for name in names:
                label = self._label_for(repo, name)
                if label.id not in ids:
                    ids.append(label.id)
            issue.label_ids = ids
            issue.updated_at = now_iso()
            return self.store.put(issue)

    def remove_label(self, principal: Principal, repo: Repo, number: int, name: str) -> Issue:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            issue = self.issue(repo, number)
            label = self.find_label(repo, name)
            if label.id not in issue.label_ids:
                raise ApiError(404, "Label does not exist")
            issue.label_ids.remove(label.id)
            return self.store.put(issue)

    # -- checks and statuses ----------------------------------------------------------------------------------

    def _require_app(self, principal: Principal, repo: Repo, level: Literal["read", "write"] = "write") -> App:
        if principal.kind != "installation" or principal.app is None:
            if principal.kind == "anonymous":
                raise ApiError(401, "Requires authentication")
            self.access.require(principal, repo, READ_META)
            raise ApiError(403, "You must authenticate via a GitHub App.")
        self.access.require(principal, repo, Need("checks", level, "read"))
        return principal.app

    def create_check_run(self, principal: Principal, repo: Repo, fields: dict[str, Any]) -> CheckRun:
        with self.store.lock:
            app = self._require_app(principal, repo)
            name, head_sha = fields.get("name"), fields.get("head_sha")
            if not isinstance(name, str) or not name:
                raise invalid("CheckRun", "name", "missing_field")
            git = self.git(repo)
            if not isinstance(head_sha, str) or git.object_type(head_sha) != "commit":
                raise invalid("CheckRun", "head_sha", "invalid", "No commit found for SHA: " + str(head_sha))
            head_sha = git.resolve(head_sha) or head_sha
            branch = next((b for b, sha in git.branches().items() if sha == head_sha), None)
            suite = self._suite(repo, app, head_sha, branch)
            run = CheckRun(self.store.new_id(), repo.id, suite.id, app.id, name, head_sha, "queued", now_iso())
            self._apply_check_fields(run, fields, creating=True)
            self.store.put(run)
            self._check_run_event("created", repo, run, principal)
            if run.status == "completed":
                self._check_run_event("completed", repo, run, principal)
            return run

    def update_check_run(self, principal: Principal, repo: Repo, run_id: int, fields: dict[str, Any]) -> CheckRun:
        with self.store.lock:
            app = self._require_app(principal, repo)
            run = self.store.get(CheckRun, run_id)
            if run is None or run.repo_id != repo.id:
                raise not_found()
            if run.app_id != app.id:
                raise ApiError(403, f"Invalid app_id `{app.id}` - check run can only be modified by the GitHub App "
                                    "that created it.")
            was_completed = run.status == "completed"
            self._apply_check_fields(run, fields, creating=False)
            self.store.put(run)
            if run.status == "completed" and not was_completed:
                self._check_run_event("completed", repo, run, principal)
            return run

    def _apply_check_fields(self, run: CheckRun, fields: dict[str, Any], creating: bool) -> None:
        statuses = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
        conclusions = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")
        if "name" in fields and not creating:
            if not isinstance(fields["name"], str) or not fields["name"]:
                raise invalid("CheckRun", "name", "invalid")
            run.name = fields["name"]
        for key in ("details_url", "external_id"):
            if key in fields:
                setattr(run, key, fields[key])
        status = fields.get("status")
        conclusion = fields.get("conclusion")
        if status is not None and status not in statuses:
            raise invalid("CheckRun", "status", "invalid")
        if conclusion is not None and conclusion not in conclusions:
            raise invalid("CheckRun", "conclusion", "invalid")
        if status == "completed" and conclusion is None and run.conclusion is None:
            raise invalid("CheckRun", "conclusion", "missing_field", "Conclusion is required when status is completed")
        if conclusion is not None:
            run.status, run.conclusion = "completed", conclusion
            run.completed_at = fields.get("completed_at") or now_iso()
        elif status is not None:
            run.status = status
            if status == "completed":
                run.completed_at = fields.get("completed_at") or now_iso()
        if "started_at" in fields:
            run.started_at = fields["started_at"]
        output = fields.get("output")
        if output is not None:
            if not isinstance(output, dict):
                raise invalid("CheckRun", "output", "invalid")
            if "summary" not in output and not run.output.get("summary"):
                raise invalid("CheckRun", "output.summary", "missing_field")
            for key in ("title", "summary", "text"):
                if key in output:
                    if output[key] is not None and len(str(output[key])) > MAX_BODY:
                        raise invalid("CheckRun", f"output.{key}", "custom", f"{key} is too long")
                    run.output[key] = output[key]
            annotations = output.get("annotations") or []
            if len(annotations) > MAX_ANNOTATIONS_PER_REQUEST:
                raise invalid("CheckRun", "output.annotations", "too_long",
                              "Only 50 annotations are allowed per request")
            for index, annotation in enumerate(annotations):
                missing = [k for k in ("path", "start_line", "end_line", "annotation_level", "message")
                           if k not in annotation]
                if missing or annotation.get("annotation_level") not in ("notice", "warning", "failure"):
                    raise invalid("CheckRun", f"output.annotations[{index}]", "invalid")
            run.annotations.extend(dict(a) for a in annotations)
        if "actions" in fields:
            actions = fields["actions"] or []
            if len(actions) > 3:
                raise invalid("CheckRun", "actions", "too_long")
            run.actions = list(actions)

    def _check_run_event(self, action: str, repo: Repo, run: CheckRun, principal: Principal,
                         only_owner: bool = False) -> None:
        payload: dict[str, Any] = {"action": action, "check_run": self.render.check_run(run, for_webhook=True),
                                   "repository": self.render.repo(repo, for_webhook=True),
                                   "sender": self.render.user(principal.account)}
        self._add_org(payload, repo)
        app = self.store.get(App, run.app_id)
        self.hooks.emit("check_run", payload, repo, app_only=app if only_owner else None)

    def rerequest_check_run(self, principal: Principal, repo: Repo, run_id: int) -> CheckRun:
        """A person asks to re-run a check: `check_run rerequested` goes to the app that owns it."""
        with self.store.lock:
            self.access.require(principal, repo, Need("checks", "write", "write"))
            run = self.store.get(CheckRun, run_id)
            if run is None or run.repo_id != repo.id:
                raise not_found()
            if principal.app is not None and principal.app.id != run.app_id:
                raise ApiError(403, "Resource not accessible by integration")
            if run.status != "completed":
                raise ApiError(422, "This check run is not rerequestable")
            self._check_run_event("rerequested", repo, run, principal, only_owner=True)
            return run

    def rerequest_check_suite(self, principal: Principal, repo: Repo, suite_id: int) -> CheckSuite:
        with self.store.lock:
            self.access.require(principal, repo, Need("checks", "write", "write"))
            suite = self.store.get(CheckSuite, suite_id)
            if suite is None or suite.repo_id != repo.id:
                raise not_found()
            payload: dict[str, Any] = {"action": "rerequested",
                                       "check_suite": self.render.check_suite(suite, for_webhook=True),
                                       "repository": self.render.repo(repo, for_webhook=True),
                                       "sender": self.render.user(principal.account)}
            self._add_org(payload, repo)
            self.hooks.emit("check_suite", payload, repo, app_only=self.store.get(App, suite.app_id))
            return suite

    def create_status(self, principal: Principal, repo: Repo, sha: str, state: Any, context: Any = None,
                      description: str | None = None, target_url: str | None = None) -> Status:
        with self.store.lock:
            self.access.require(principal, repo, Need("statuses", "write", "write"))
            git = self.git(repo)
            full = git.resolve(sha)
            if full is None:
                raise unprocessable(f"No commit found for SHA: {sha}")
            if state not in ("error", "failure", "pending", "success"):
                raise invalid("Status", "state", "custom", "State is not included in the list")
            context = context or "default"
            if description is not None and len(description) > 140:
                raise invalid("Status", "description", "custom", "description is too long (maximum is 140 characters)")
            now = now_iso()
            actor = principal.account
            return self.store.put(Status(self.store.new_id(), repo.id, full, state, context,
                                         actor.id if actor else repo.owner_id, now, now, description, target_url))

    # -- repository settings ------------------------------------------------------------------------------------

    def put_environment(self, principal: Principal, repo: Repo, name: str, settings: dict[str, Any]) -> Environment:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            wait_timer = settings.get("wait_timer")
            if wait_timer is not None and (not isinstance(wait_timer, int) or not 0 <= wait_timer <= 43200):
                raise invalid("Environment", "wait_timer", "invalid")
            reviewers = settings.get("reviewers")
            if reviewers is not None and (not isinstance(reviewers, list) or len(reviewers) > 6 or any(
                    not isinstance(r, dict) or r.get("type") not in ("User", "Team") for r in reviewers)):
                raise invalid("Environment", "reviewers", "invalid")
            policy = settings.get("deployment_branch_policy")
            if policy is not None and (not isinstance(policy, dict) or policy.get("protected_branches") == policy.get(
                    "custom_branch_policies") is True):
                raise unprocessable("Both `protected_branches` and `custom_branch_policies` cannot be set to the "
                                    "same value.")
            found = self.store.first(Environment, lambda e: e.repo_id == repo.id and e.name.lower() == name.lower())
            now = now_iso()
            if found is None:
                key = PrivateKey.generate()
                found = Environment(self.store.new_id(), repo.id, name, now, now,
                                    secrets_public_key=base64.b64encode(bytes(key.public_key)).decode(),
                                    secrets_private_key=base64.b64encode(bytes(key)).decode())
            if wait_timer is not None:
                found.wait_timer = wait_timer
            if reviewers is not None:
                found.reviewers = [{"type": r["type"], "id": r.get("id")} for r in reviewers]
            if "prevent_self_review" in settings:
                found.prevent_self_review = bool(settings["prevent_self_review"])
            if "deployment_branch_policy" in settings:
                found.deployment_branch_policy = policy
                if not (policy or {}).get("custom_branch_policies"):
                    # Turning custom policies off drops the name patterns, as on GitHub.
                    for pattern in self.store.all(DeploymentBranchPolicy, lambda b: b.environment_id == found.id):
                        self.store.delete(pattern)
            found.updated_at = now
            return self.store.put(found)

    def environment(self, repo: Repo, name: str) -> Environment:
        found = self.store.first(Environment, lambda e: e.repo_id == repo.id and e.name.lower() == name.lower())
        if found is None:
            raise not_found()
        return found

    def delete_environment(self, principal: Principal, repo: Repo, name: str) -> None:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            env = self.environment(repo, name)
            for secret in self.store.all(Secret, lambda s: s.repo_id == repo.id and s.environment == env.name):
                self.store.delete(secret)
            for pattern in self.store.all(DeploymentBranchPolicy, lambda b: b.environment_id == env.id):
                self.store.delete(pattern)
            self.store.delete(env)

    def branch_policies(self, repo: Repo, environment: str) -> list[DeploymentBranchPolicy]:
        env = self.environment(repo, environment)
        return self.store.all(DeploymentBranchPolicy, lambda b: b.environment_id == env.id)

    def branch_policy(self, repo: Repo, environment: str, policy_id: int) -> DeploymentBranchPolicy:
        found = next((b for b in self.branch_policies(repo, environment) if b.id == policy_id), None)
        if found is None:
            raise not_found()
        return found

    def add_branch_policy(self, principal: Principal, repo: Repo, environment: str, name: Any,
                          kind: Any = "branch") -> tuple[DeploymentBranchPolicy, bool]:
        """A name pattern the environment accepts deployments from; (policy, False) if it already had it."""
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            env = self.environment(repo, environment)
            if not isinstance(name, str) or not name.strip():
                raise invalid("DeploymentBranchPolicy", "name", "missing_field")
            if kind not in ("branch", "tag"):
                raise invalid("DeploymentBranchPolicy", "type")
            if not (env.deployment_branch_policy or {}).get("custom_branch_policies"):
                raise unprocessable("Custom deployment branch and tag policies are not enabled for this environment.")
            existing = self.store.first(DeploymentBranchPolicy, lambda b: b.environment_id == env.id
                                        and b.name == name and b.type == kind)
            if existing is not None:
                return existing, False
            return self.store.put(DeploymentBranchPolicy(self.store.new_id(), repo.id, env.id, name, kind)), True

    def delete_branch_policy(self, principal: Principal, repo: Repo, environment: str, policy_id: int) -> None:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            self.store.delete(self.branch_policy(repo, environment, policy_id))

    def secret_keys(self, repo: Repo, environment: str | None) -> tuple[str, str]:
        """(public key, private key), base64, for the repository or one of its environments."""
        if environment is None:
            return repo.secrets_public_key, repo.secrets_private_key
        env = self.environment(repo, environment)
        return env.secrets_public_key, env.secrets_private_key

    def public_key_id(self, public_key: str) -> str:
        return _key_id(public_key)

    def put_secret(self, principal: Principal, repo: Repo, name: str, encrypted_value: Any, key_id: Any,
                   environment: str | None = None) -> bool:
        """Store a sealed secret; True if it is new. The value must open with the current key."""
        with self.store.lock:
            self.access.require(principal, repo, Need("secrets", "write", "admin"))
            public, private = self.secret_keys(repo, environment)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name.upper().startswith("GITHUB_"):
                raise invalid("Secret", "name", "invalid")
            if not isinstance(encrypted_value, str) or not isinstance(key_id, str):
                raise invalid("Secret", "encrypted_value", "missing_field")
            if key_id != _key_id(public):
                raise invalid("Secret", "key_id", "invalid")
            try:
                SealedBox(PrivateKey(base64.b64decode(private))).decrypt(base64.b64decode(encrypted_value))
            except Exception as exc:  # any failure to open means the client sealed it wrongly
                raise invalid("Secret", "encrypted_value", "invalid") from exc
            name = name.upper()
            found = self.store.first(Secret, lambda s: s.repo_id == repo.id and s.name == name
                                     and s.environment == (environment and self.environment(repo, environment).name))
            now = now_iso()
            if found is None:
                env_name = self.environment(repo, environment).name if environment else None
                self.store.put(Secret(self.store.new_id(), repo.id, name, encrypted_value, key_id, now, now, env_name))
                return True
            found.encrypted_value, found.key_id, found.updated_at = encrypted_value, key_id, now
            self.store.put(found)
            return False

    def find_secret(self, repo: Repo, name: str, environment: str | None = None) -> Secret:
        env_name = self.environment(repo, environment).name if environment else None
        found = self.store.first(Secret, lambda s: s.repo_id == repo.id and s.name == name.upper()
                                 and s.environment == env_name)
        if found is None:
            raise not_found()
        return found

    def reveal_secret(self, repo: Repo, name: str, environment: str | None = None) -> str:
        """The plain value of a stored secret. For tests: GitHub never reveals secrets."""
        with self.store.lock:
            secret = self.find_secret(repo, name, environment)
            _, private = self.secret_keys(repo, environment)
            box = SealedBox(PrivateKey(base64.b64decode(private)))
            return box.decrypt(base64.b64decode(secret.encrypted_value)).decode()

    def put_protection(self, principal: Principal, repo: Repo, branch: str, settings: Any) -> Protection:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            if self.git(repo).resolve(f"refs/heads/{branch}") is None:
                raise ApiError(404, "Branch not found")
            if not isinstance(settings, dict):
                raise invalid("ProtectedBranch", "", "invalid")
            for key in ("required_status_checks", "enforce_admins", "required_pull_request_reviews", "restrictions"):
                if key not in settings:
                    raise ApiError(422, f"Invalid request.\n\n\"{key}\" wasn't supplied.")
            checks = settings.get("required_status_checks")
            if checks is not None and (not isinstance(checks, dict) or "strict" not in checks or (
                    "contexts" not in checks and "checks" not in checks)):
                raise ApiError(422, "Invalid request.\n\nNo subschema in \"anyOf\" matched.")
            found = self.store.first(Protection, lambda p: p.repo_id == repo.id and p.branch == branch)
            found = found or Protection(self.store.new_id(), repo.id, branch)
            found.settings = dict(settings)
            return self.store.put(found)

    def protection(self, repo: Repo, branch: str) -> Protection:
        found = self.store.first(Protection, lambda p: p.repo_id == repo.id and p.branch == branch)
        if found is None:
            raise ApiError(404, "Branch not protected")
        return found

    def delete_protection(self, principal: Principal, repo: Repo, branch: str) -> None:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            self.store.delete(self.protection(repo, branch))

    def update_status_checks(self, principal: Principal, repo: Repo, branch: str, fields: dict[str, Any]) -> Protection:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            protection = self.protection(repo, branch)
            checks = protection.settings.get("required_status_checks")
            if checks is None:
                raise ApiError(404, "Required status checks not enabled")
            checks = dict(checks)
            for key in ("strict", "contexts", "checks"):
                if key in fields:
                    checks[key] = fields[key]
            protection.settings["required_status_checks"] = checks
            return self.store.put(protection)

    # -- webhooks -----------------------------------------------------------------------------------------------

    def add_hook(self, repo: Repo | None, url: str, secret: str = "", events: list[str] | None = None,
                 app: App | None = None, active: bool = True, content_type: str = "json") -> Hook:
        """A repository's webhook (or an app's single hook); GitHub pings a new hook right away."""
        with self.store.lock:
            if not url.startswith(("http://", "https://")):
                raise invalid("Hook", "url", "custom", "url is not supported because it isn't reachable over the "
                                                       "public Internet")
            now = now_iso()
            if app is not None:
                existing = self.store.first(Hook, lambda h: h.app_id == app.id)
                if existing is not None:
                    self.store.delete(existing)
            # A repository hook hears `push` unless told otherwise (GitHub's default); an app's hook everything.
            wanted = list(events or (["push"] if repo else ["*"]))
            hook = self.store.put(Hook(self.store.new_id(), url, secret, now, now, repo_id=repo.id if repo else None,
                                       app_id=app.id if app else None, events=wanted, active=active,
                                       content_type=content_type))
            if active:
                self.ping(hook)
            return hook

    def ping(self, hook: Hook) -> None:
        with self.store.lock:
            repo = self.store.get(Repo, hook.repo_id or 0)
            hook_json = self.render.hook(hook)
            # A ping describes the hook as new (GitHub's ping payloads carry an unused last_response).
            hook_json["last_response"] = {"code": None, "status": "unused", "message": None}
            payload: dict[str, Any] = {"zen": "Keep it logically awesome.", "hook_id": hook.id, "hook": hook_json}
            if repo is not None:
                payload["repository"] = self.render.repo(repo, for_webhook=True)
                payload["sender"] = self.render.user(self.store.get(Account, repo.owner_id))
                self._add_org(payload, repo)
            else:
                app = self.store.get(App, hook.app_id or 0)
                hook_json["app_id"] = hook.app_id
                payload["sender"] = self.render.user(self.store.get(Account, app.owner_id) if app else None)
            self.hooks.ping(hook, payload)


def _property_value(prop: CustomProperty, value: Any) -> Any:
    """`value` if it suits the property's type (None unsets it); else GitHub's 422."""
    if value is None:
        return None
    kind = prop.value_type
    if kind == "multi_select":
        fits = isinstance(value, list) and all(v in (prop.allowed_values or []) for v in value)
    elif not isinstance(value, str):
        fits = False
    elif kind == "single_select":
        fits = value in (prop.allowed_values or [])
    elif kind == "true_false":
        fits = value in ("true", "false")
    elif kind == "url":
        fits = re.match(r"^https?://\S+$", value) is not None
    else:
        fits = len(value) <= 75
    if not fits:
        raise invalid("CustomPropertyValue", "value", "custom", f"{value!r} is not a valid value for {prop.name} "
                                                                f"({kind})")
    return value


def _check_body(body: Any, resource: str) -> None:
    if not isinstance(body, str) or not body.strip():
        raise invalid(resource, "body", "missing_field")
    if len(body) > MAX_BODY:
        raise invalid(resource, "body", "custom", f"body is too long (maximum is {MAX_BODY} characters)")


def _team_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _role_from_permission(permission: str) -> Role | None:
    mapping: dict[str, Role] = {"pull": "read", "read": "read", "triage": "triage", "push": "write", "write": "write",
                                "maintain": "maintain", "admin": "admin"}
    return mapping.get(permission)


def _epoch(value: str) -> float:
    return parse_iso(value)
