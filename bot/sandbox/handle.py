"""The story-level operations on the sandbox's GitHub: people, orgs and repositories named by login and
name, results as small frozen values (`User`, `RepoRef`, `PullRef`, ...).

`ForgeHandle` is what `api.Sandbox` offers besides starting and stopping the server, and what the
administration endpoint (`endpoints/admin.py`, behind `paved sandbox`) calls; it lives apart from
`api.py` so that endpoint can import it while `api.py` imports the endpoints to serve them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .auth import Principal
from .errors import ApiError, not_found
from .github import WRITE_CODE, SandboxGitHub
from .model import (
    Role,
    StoredAccount,
    StoredApp,
    StoredCheckRun,
    StoredComment,
    StoredDelivery,
    StoredInstallation,
    StoredRepo,
    StoredTeam,
)
from .oauth import OAuth
from .ratelimits import RateLimitUsage

ADMIN_LOGIN = "sandbox-admin"


@dataclass(frozen=True)
class User:
    login: str
    id: int
    token: str


@dataclass(frozen=True)
class Org:
    login: str
    id: int


@dataclass(frozen=True)
class RepoRef:
    owner: str
    name: str
    id: int
    full_name: str
    default_branch: str
    clone_url: str
    private: bool


@dataclass(frozen=True)
class TeamRef:
    id: int
    slug: str
    name: str


@dataclass(frozen=True)
class AppCredentials:
    """A GitHub App: what an app's configuration needs (id and private key) plus its names."""

    id: int
    slug: str
    client_id: str
    private_key: str  # PEM
    bot_login: str


@dataclass(frozen=True)
class InstallationRef:
    id: int
    app_id: int
    account: str


@dataclass(frozen=True)
class PullRef:
    number: int
    head: str
    base: str
    head_sha: str
    url: str
    state: str
    merged: bool
    merge_commit_sha: str | None


@dataclass(frozen=True)
class MergeGroupRef:
    """A pull request in a merge queue and its merge group: the temporary branch `head_ref`, whose head
    `head_sha` is `base_sha` (the base branch, or the group ahead) with the pull request merged in."""

    number: int
    head_ref: str
    head_sha: str
    base_sha: str


@dataclass(frozen=True)
class WorkflowRunRef:
    """A recorded workflow run, as `GET /repos/{owner}/{repo}/actions/runs/{id}` lists it."""

    id: int
    run_number: int
    head_sha: str
    html_url: str


@dataclass(frozen=True)
class DeploymentRef:
    """A deployment and the state of its latest status (None: it has none)."""

    id: int
    environment: str
    sha: str
    state: str | None


@dataclass(frozen=True)
class CommentRef:
    id: int
    body: str
    url: str
    user: str = ""  # the author's login (an app's bot as `name[bot]`)


@dataclass(frozen=True)
class DeliveryInfo:
    """One webhook delivery from the log, with the request as sent and the receiver's answer."""

    id: int
    guid: str
    event: str
    action: str | None
    hook_id: int
    redelivery: bool
    status_code: int
    status: str
    duration: float
    request_headers: dict[str, str] = field(repr=False)
    payload: dict[str, Any] = field(repr=False)
    response_body: str = field(repr=False, default="")


def _delivery_info(delivery: StoredDelivery) -> DeliveryInfo:
    return DeliveryInfo(delivery.id, delivery.guid, delivery.event, delivery.action, delivery.hook_id,
                        delivery.redelivery, delivery.status_code, delivery.status, delivery.duration,
                        dict(delivery.request_headers), json.loads(delivery.request_body), delivery.response_body)


class ForgeHandle:
    """Story-level operations on a forge; people, orgs and repositories are named by login/name."""

    def __init__(self, forge: SandboxGitHub) -> None:
        self.forge = forge

    # -- naming things -----------------------------------------------------------------------------------

    def _account(self, login: str) -> StoredAccount:
        account = self.forge.account(login)
        if account is None:
            raise ApiError(404, f"No user or organization called {login}")
        return account

    def _as(self, login: str | None, token: str | None = None) -> Principal:
        """The principal acting: a user by login, or whoever a token belongs to."""
        if token:
            return self.forge.access.identify(f"token {token}")
        if login is None:
            raise ApiError(422, "Say who acts (by=LOGIN)")
        return Principal("user", self._account(login))

    def _repo(self, owner: str, name: str) -> StoredRepo:
        repo = self.forge.find_repo(owner, name)
        if repo is None:
            raise ApiError(404, f"No repository {owner}/{name}")
        return repo

    def _repo_ref(self, repo: StoredRepo) -> RepoRef:
        body = self.forge.render.repo(repo, full=False)
        return RepoRef(body["owner"]["login"], repo.name, repo.id, body["full_name"], repo.default_branch,
                       body["clone_url"], repo.private)

    def _app(self, app: int | str) -> StoredApp:
        found = self.forge.store.first(StoredApp, lambda a: a.id == app or a.slug == app or str(a.id) == str(app))
        if found is None:
            raise ApiError(404, f"No app {app}")
        return found

    def _pull_ref(self, repo: StoredRepo, number: int) -> PullRef:
        pull = self.forge.pull(repo, number)
        issue = self.forge.issue(repo, number)
        return PullRef(number, pull.head_ref, pull.base_ref, pull.head_sha,
                       f"{self.forge.urls.api}/repos/{self.forge.render.repo_path(repo)}/pulls/{number}",
                       issue.state, pull.merged, pull.merge_commit_sha)

    # -- people and organizations -------------------------------------------------------------------------

    def create_user(self, login: str, name: str | None = None, email: str | None = None,
                    site_admin: bool = False) -> User:
        """A user with a personal access token (classic: the user's own access)."""
        account, token = self.forge.create_user(login, name, email, site_admin)
        return User(account.login, account.id, token.token)

    def create_token(self, login: str, permissions: dict[str, str] | None = None) -> str:
        """Another token for `login`, optionally narrowed (`{"issues": "read", "contents": "read"}`)."""
        return self.forge.create_token(self._account(login), permissions).token

    def create_org(self, login: str, owners: list[str] | tuple[str, ...] = (),
                   members: list[str] | tuple[str, ...] = ()) -> Org:
        org = self.forge.create_org(login, [self._account(o) for o in owners])
        for member in members:
            self.forge.add_member(org, self._account(member), "member")
        return Org(org.login, org.id)

    def add_member(self, org: str, login: str, role: Literal["admin", "member"] = "member") -> None:
        self.forge.add_member(self._account(org), self._account(login), role)

    def create_team(self, org: str, name: str, members: list[str] | tuple[str, ...] = (),
                    maintainers: list[str] | tuple[str, ...] = (), repos: dict[str, str] | None = None,
                    description: str | None = None) -> TeamRef:
        """A team of `org`; `repos` maps repository name to permission (`pull`, `push`, `admin`, ...)."""
        admin = Principal("user", self._admin_account())
        org_account = self._account(org)
        team = self.forge.create_team(admin, org_account, name, description,
                                      members=[self._account(m) for m in members],
                                      maintainers=[self._account(m) for m in maintainers])
        for repo_name, permission in (repos or {}).items():
            self.forge.set_team_repo(admin, team, self._repo(org, repo_name), permission)
        return TeamRef(team.id, team.slug, team.name)

    def add_team_repo(self, org: str, team: str, repo: str, permission: str = "push") -> None:
        found = self.forge.store.first(StoredTeam, lambda t: t.slug == team or t.name == team)
        if found is None:
            raise not_found()
        self.forge.set_team_repo(Principal("user", self._admin_account()), found, self._repo(org, repo), permission)

    def _admin_account(self) -> StoredAccount:
        account = self.forge.account(ADMIN_LOGIN)
        if account is None:
            account, _ = self.forge.create_user(ADMIN_LOGIN, "Sandbox administrator", site_admin=True)
        return account

    # -- repositories ---------------------------------------------------------------------------------------

    def create_repo(self, owner: str, name: str, private: bool = False, description: str | None = None,
                    by: str | None = None, auto_init: bool = False,
                    custom_properties: dict[str, Any] | None = None) -> RepoRef:
        """A repository, made by `by` (the sandbox's administrator when None), with `custom_properties`
        values from its creation (which `by` must be allowed to set)."""
        actor = self._as(by) if by else Principal("user", self._admin_account())
        repo = self.forge.create_repo(actor, self._account(owner), name, private, description, auto_init,
                                      custom_properties=custom_properties)
        return self._repo_ref(repo)

    def define_property(self, org: str, name: str, value_type: str = "string", *, by: str | None = None,
                        **definition: Any) -> dict[str, Any]:
        """Define (or redefine) a custom property of `org`'s repositories, as `by` (an owner; the sandbox's
        administrator when None): `allowed_values`, `required`, `default_value`, `description`,
        `values_editable_by` (`org_actors`, the default, or `org_and_repo_actors`). Returns GitHub's JSON."""
        actor = self._as(by) if by else Principal("user", self._admin_account())
        prop = self.forge.put_custom_property(actor, self._account(org), name,
                                              {"value_type": value_type, **definition})
        return self.forge.render.custom_property(prop)

    def set_repo_properties(self, owner: str, repo: str, values: dict[str, Any], by: str) -> None:
        """Set a repository's custom property values as `by` (None as a value unsets it); GitHub's rules decide
        who may."""
        self.forge.set_repo_properties(self._as(by), self._repo(owner, repo),
                                       [{"property_name": k, "value": v} for k, v in values.items()])

    def repo_properties(self, owner: str, repo: str) -> dict[str, Any]:
        """A repository's custom property values, as GitHub shows them."""
        return self.forge.render.custom_property_values(self._repo(owner, repo))

    def create_repo_from_folder(self, owner: str, name: str, folder: str | Path, owner_token: str | None = None,
                                by: str | None = None, private: bool = False, description: str | None = None,
                                message: str = "Initial commit") -> RepoRef:
        """A repository whose default branch holds the files of `folder`, committed by its creator."""
        actor = self._as(by, owner_token) if (by or owner_token) else Principal("user", self._admin_account())
        repo = self.forge.create_repo(actor, self._account(owner), name, private, description)
        author = actor.account or self._admin_account()
        self.forge.import_folder(repo, Path(folder), message, author)
        return self._repo_ref(repo)

    def add_collaborator(self, owner: str, repo: str, login: str, permission: Role | str = "write") -> None:
        role = {"pull": "read", "push": "write"}.get(permission, permission)
        if role not in ("read", "triage", "write", "maintain", "admin"):
            raise ApiError(422, f"Unknown permission {permission}")
        self.forge.add_collaborator(self._repo(owner, repo), self._account(login), role)  # type: ignore[arg-type]

    def branch_sha(self, owner: str, repo: str, branch: str) -> str | None:
        return self.forge.git(self._repo(owner, repo)).resolve(f"refs/heads/{branch}")

    def read_file(self, owner: str, repo: str, path: str, ref: str | None = None) -> bytes:
        found = self._repo(owner, repo)
        git = self.forge.git(found)
        sha = git.resolve(f"refs/heads/{ref or found.default_branch}") or git.resolve(ref or "HEAD")
        entry = git.entry(sha, path) if sha else None
        if entry is None or entry.type != "blob":
            raise not_found()
        return git.blob(entry.sha)

    def push_files(self, owner: str, repo: str, branch: str, files: dict[str, str | bytes | None], by: str,
                   message: str = "Update files", from_branch: str | None = None) -> str:
        """One commit on `branch` (created from `from_branch` or the default branch if new), as a push by `by`."""
        found = self._repo(owner, repo)
        principal = self._as(by)
        git = self.forge.git(found)
        if git.resolve(f"refs/heads/{branch}") is None:
            base = git.resolve(f"refs/heads/{from_branch or found.default_branch}")
            if base is not None:
                self.forge.access.require(principal, found, WRITE_CODE)
                self.forge.move_ref(principal, found, f"refs/heads/{branch}", base, None)
        changes = {path: (data.encode() if isinstance(data, str) else data) for path, data in files.items()}
        self.forge.access.require(principal, found, WRITE_CODE)
        return self.forge.commit_files(principal, found, branch, changes, message)

    def create_branch(self, owner: str, repo: str, branch: str, by: str, from_ref: str | None = None) -> str:
        found = self._repo(owner, repo)
        principal = self._as(by)
        self.forge.access.require(principal, found, WRITE_CODE)
        git = self.forge.git(found)
        sha = git.resolve(f"refs/heads/{from_ref or found.default_branch}") or git.resolve(from_ref or "HEAD")
        if sha is None:
            raise not_found()
        self.forge.move_ref(principal, found, f"refs/heads/{branch}", sha, None)
        return sha

    # -- apps and webhooks ----------------------------------------------------------------------------------

    def create_app(self, owner: str, name: str, permissions: dict[str, str] | None = None,
                   events: list[str] | None = None, webhook_url: str | None = None,
                   webhook_secret: str = "") -> AppCredentials:
        """A GitHub App owned by `owner`; keep `private_key` to sign JWTs as the app."""
        app, pem = self.forge.create_app(self._account(owner), name, permissions, events, webhook_url, webhook_secret)
        bot = self.forge.store.get(StoredAccount, app.bot_id)
        return AppCredentials(app.id, app.slug, app.client_id, pem, bot.login if bot else "")

    def create_client_secret(self, app: int | str) -> str:
        """A new client secret for the app's sign-in (OAuth web flow); like GitHub, the forge shows it only now."""
        return OAuth(self.forge.store).add_client_secret(self._app(app))

    def set_callback_urls(self, app: int | str, urls: list[str] | tuple[str, ...]) -> None:
        """Where the app's sign-in may send users back to (`redirect_uri`); the first is the default."""
        OAuth(self.forge.store).set_callback_urls(self._app(app), list(urls))

    def set_app_webhook(self, app: int | str, url: str, secret: str = "") -> int:
        return self.forge.add_hook(None, url, secret, app=self._app(app)).id

    def install_app(self, app: int | str, account: str, repositories: list[str] | None = None) -> InstallationRef:
        """Install on an org or user: every repository, or only those named; fires `installation created`."""
        target = self._account(account)
        repos = [self._repo(account, name) for name in repositories] if repositories is not None else None
        installation = self.forge.install_app(self._app(app), target, repos)
        return InstallationRef(installation.id, installation.app_id, target.login)

    def installation_token(self, installation_id: int, permissions: dict[str, str] | None = None) -> str:
        """An installation access token, as the app would get by JWT (a shortcut for tests)."""
        installation = self.forge.store.get(StoredInstallation, installation_id)
        if installation is None:
            raise not_found()
        app = self.forge.store.get(StoredApp, installation.app_id)
        token, _ = self.forge.installation_token(Principal("app", app=app), installation.id, permissions=permissions)
        return token.token

    def job_token(self, owner: str, repo: str, permissions: dict[str, str], *, fork: bool = False) -> str:
        """The `GITHUB_TOKEN` of one GitHub Actions job in `owner/repo`, made as GitHub makes it.

        It is an installation token of the `github-actions` app (its comments come from
        `github-actions[bot]`), for that one repository, with what the job's `permissions:` grants.
        GitHub lets a workflow grant only `JOB_TOKEN_PERMISSIONS`: never administration, members,
        secrets or organization permissions, so asking for one is refused here as the workflow would
        be. A job for a pull request from a fork gets every permission lowered to read.
        """
        outside = sorted(set(permissions) - set(JOB_TOKEN_PERMISSIONS))
        if outside:
            raise ValueError(f"a workflow cannot grant the job's token {', '.join(outside)}")
        target = self._repo(owner, repo)
        # Jobs start at once: GitHub Actions' app is made and installed by the first, once.
        with self.forge.store.lock:
            app = self.forge.store.first(StoredApp, lambda a: a.slug == "github-actions")
            if app is None:
                app, _ = self.forge.create_app(self._admin_account(), "GitHub Actions",
                                               {name: "write" for name in JOB_TOKEN_PERMISSIONS}, events=[])
            installation = self.forge.store.first(
                StoredInstallation, lambda i: i.app_id == app.id and i.account_id == target.owner_id)
            if installation is None:
                installation = self.forge.install_app(app, self._account(owner))
        granted = {name: ("read" if fork and level != "none" else level)
                   for name, level in {**permissions, "metadata": "read"}.items() if level != "none"}
        token, _ = self.forge.installation_token(Principal("app", app=app), installation.id,
                                                 repository_ids=[target.id], permissions=granted)
        return token.token

    def register_webhook(self, owner: str, repo: str, url: str, secret: str = "",
                         events: list[str] | tuple[str, ...] = ("*",)) -> int:
        """A repository webhook; GitHub pings it at once. Returns the hook id."""
        return self.forge.add_hook(self._repo(owner, repo), url, secret, list(events)).id

    def deliveries(self, event: str | None = None, action: str | None = None) -> list[DeliveryInfo]:
        """The delivery log, oldest first, optionally only one event (and action)."""
        found = self.forge.store.all(StoredDelivery, lambda d: (event is None or d.event == event)
                                     and (action is None or d.action == action))
        return [_delivery_info(d) for d in found]

    def redeliver(self, delivery_id: int) -> DeliveryInfo:
        """Send a delivery again, with the same `X-GitHub-Delivery`, as GitHub's redeliver does."""
        try:
            return _delivery_info(self.forge.hooks.redeliver(delivery_id))
        except KeyError as exc:
            raise not_found() from exc

    def wait_for_deliveries(self, timeout: float = 30.0) -> None:
        """Return once every queued webhook delivery has been attempted."""
        if not self.forge.hooks.wait(timeout):
            raise TimeoutError(f"webhook deliveries still pending after {timeout} s")

    # -- pull requests and comments --------------------------------------------------------------------------

    def open_pull_request(self, owner: str, repo: str, head: str, title: str, by: str, base: str | None = None,
                          body: str | None = None, draft: bool = False) -> PullRef:
        found = self._repo(owner, repo)
        pull = self.forge.open_pull_request(self._as(by), found, head, base or found.default_branch, title, body,
                                            draft=draft)
        return self._pull_ref(found, pull.number)

    def fork(self, owner: str, repo: str, by: str) -> RepoRef:
        """`owner/repo` forked into `by`'s account, with its branches, as GitHub's "Fork" button does."""
        return self._repo_ref(self.forge.fork_repo(self._as(by), self._repo(owner, repo)))

    def complete_workflow_run(self, owner: str, repo: str, number: int, *, workflow: str = "Paved",
                              path: str = ".github/workflows/paved.yml", conclusion: str = "success",
                              by: str | None = None) -> dict[str, Any]:
        """The `workflow_run completed` payload of a run of `workflow` for pull request `number`'s head, as
        GitHub sends it to the workflows that listen for it (and to hooks that want `workflow_run`)."""
        found = self._repo(owner, repo)
        pull = self.forge.pull(found, number)
        issue = self.forge.issue(found, number)
        actor = self._account(by) if by else self.forge.store.get(StoredAccount, issue.user_id)
        assert actor is not None
        return self.forge.complete_workflow_run(found, pull, workflow, path, conclusion, actor)

    def record_workflow_run(self, owner: str, repo: str, *, workflow: str = "CI",
                            path: str = ".github/workflows/ci.yml", branch: str | None = None, sha: str | None = None,
                            event: str = "push", status: str = "completed", conclusion: str | None = "success",
                            by: str | None = None) -> WorkflowRunRef:
        """A run of `workflow` that happened (the sandbox runs none): for `branch` (the default branch) at `sha`
        (its head), started by `event` and by `by` (the repository's owner), `status` and, once completed, its
        `conclusion`. GitHub then lists it among the repository's workflow runs, newest first."""
        found = self._repo(owner, repo)
        actor = self._account(by) if by else self.forge.store.get(StoredAccount, found.owner_id)
        assert actor is not None
        run = self.forge.record_workflow_run(found, workflow=workflow, path=path, branch=branch or found.default_branch,
                                             sha=sha, event=event, status=status,
                                             conclusion=conclusion if status == "completed" else None, actor=actor)
        web = f"{self.forge.urls.web}/{self.forge.render.repo_path(found)}"
        return WorkflowRunRef(run.id, run.run_number, run.head_sha, f"{web}/actions/runs/{run.id}")

    def deploy(self, owner: str, repo: str, environment: str, *, by: str, ref: str | None = None,
               state: str | None = "success", log_url: str = "", environment_url: str = "",
               description: str = "") -> DeploymentRef:
        """`by` deploys `ref` (the default branch) to `environment` through the deployments API, as a workflow
        does: the deployment, then (unless `state` is None) one status saying how it went."""
        found = self._repo(owner, repo)
        who = self._as(by)
        deployment = self.forge.create_deployment(who, found, {
            "ref": ref or found.default_branch, "environment": environment, "required_contexts": [],
            "description": description})
        if state is not None:
            self.forge.create_deployment_status(who, found, deployment.id, {
                "state": state, "log_url": log_url, "environment_url": environment_url})
        return DeploymentRef(deployment.id, deployment.environment, deployment.sha, state)

    def pull_request(self, owner: str, repo: str, number: int) -> PullRef:
        return self._pull_ref(self._repo(owner, repo), number)

    def close_pull_request(self, owner: str, repo: str, number: int, by: str) -> PullRef:
        found = self._repo(owner, repo)
        self.forge.update_pull_request(self._as(by), found, number, state="closed")
        return self._pull_ref(found, number)

    def reopen_pull_request(self, owner: str, repo: str, number: int, by: str) -> PullRef:
        found = self._repo(owner, repo)
        self.forge.update_pull_request(self._as(by), found, number, state="open")
        return self._pull_ref(found, number)

    def comment(self, owner: str, repo: str, number: int, body: str, by: str) -> CommentRef:
        found = self._repo(owner, repo)
        comment = self.forge.comment(self._as(by), found, number, body)
        return self._comment_ref(comment)

    def edit_comment(self, owner: str, repo: str, comment_id: int, body: str, by: str) -> CommentRef:
        found = self._repo(owner, repo)
        comment = self.forge.edit_comment(self._as(by), found, comment_id, body)
        return self._comment_ref(comment)

    def delete_comment(self, owner: str, repo: str, comment_id: int, by: str) -> None:
        self.forge.delete_comment(self._as(by), self._repo(owner, repo), comment_id)

    def comments(self, owner: str, repo: str, number: int) -> list[CommentRef]:
        found = self._repo(owner, repo)
        return [self._comment_ref(c) for c in self.forge.store.all(
            StoredComment, lambda c: c.repo_id == found.id and c.issue_number == number)]

    def _comment_ref(self, comment: Any) -> CommentRef:
        rendered = self.forge.render.comment(comment)
        return CommentRef(comment.id, comment.body, rendered["url"], (rendered.get("user") or {}).get("login") or "")

    def approve(self, owner: str, repo: str, number: int, by: str, body: str = "") -> int:
        """Approve a pull request as `by`; returns the review id (authors may not approve their own)."""
        return self.forge.review(self._as(by), self._repo(owner, repo), number, "APPROVE", body).id

    def request_changes(self, owner: str, repo: str, number: int, by: str, body: str) -> int:
        return self.forge.review(self._as(by), self._repo(owner, repo), number, "REQUEST_CHANGES", body).id

    def merge(self, owner: str, repo: str, number: int, by: str,
              method: Literal["merge", "squash", "rebase"] = "merge") -> str:
        """Merge as `by` (branch protection applies); returns the new commit on the base branch."""
        found = self._repo(owner, repo)
        pull = self.forge.merge(self._as(by), found, number, method)
        assert pull.merge_commit_sha is not None
        return pull.merge_commit_sha

    def require_merge_queue(self, owner: str, repo: str, branch: str | None = None, by: str | None = None,
                            merge_method: Literal["merge", "squash", "rebase"] = "merge") -> None:
        """Make `branch` (the default branch when None) take pull requests only through a merge queue, as a
        ruleset's `merge_queue` rule does; as `by` (an admin; the sandbox's administrator when None)."""
        found = self._repo(owner, repo)
        actor = self._as(by) if by else Principal("user", self._admin_account())
        self.forge.require_merge_queue(actor, found, branch or found.default_branch, merge_method)

    def enqueue_pull_request(self, owner: str, repo: str, number: int, by: str) -> MergeGroupRef:
        """Add a pull request to its base branch's merge queue as `by` (GitHub's GraphQL `enqueuePullRequest`,
        or the "Merge when ready" button); its reviews and required checks must pass first."""
        found = self._repo(owner, repo)
        entry = self.forge.enqueue_pull_request(self._as(by), found, number)
        return MergeGroupRef(entry.number, entry.ref(self.forge.pull(found, number).base_ref), entry.head_sha,
                             entry.base_sha)

    def merge_queue(self, owner: str, repo: str, branch: str | None = None) -> list[MergeGroupRef]:
        """The pull requests in `branch`'s merge queue (the default branch's when None), first to merge first."""
        found = self._repo(owner, repo)
        base = branch or found.default_branch
        return [MergeGroupRef(e.number, e.ref(base), e.head_sha, e.base_sha) for e in self.forge.queued(found, base)]

    def rerequest_check_run(self, owner: str, repo: str, run_id: int, by: str) -> None:
        """A person clicks "Re-run": the app that owns the run gets `check_run rerequested`."""
        self.forge.rerequest_check_run(self._as(by), self._repo(owner, repo), run_id)

    def rerequest_check_suite(self, owner: str, repo: str, suite_id: int, by: str) -> None:
        self.forge.rerequest_check_suite(self._as(by), self._repo(owner, repo), suite_id)

    # -- looking inside (tests only: GitHub shows none of this) ------------------------------------------------

    def secret_value(self, owner: str, repo: str, name: str, environment: str | None = None) -> str:
        """The decrypted value of an Actions secret; GitHub never reveals it, the sandbox does for tests."""
        return self.forge.reveal_secret(self._repo(owner, repo), name, environment)

    def check_run_annotations(self, owner: str, repo: str, run_id: int) -> list[dict[str, Any]]:
        run = self.forge.store.get(StoredCheckRun, run_id)
        if run is None or run.repo_id != self._repo(owner, repo).id:
            raise not_found()
        return [dict(a) for a in run.annotations]

    # -- rate limits (see `ratelimits.py`) ---------------------------------------------------------------------

    def rate_limits(self) -> list[RateLimitUsage]:
        """How many REST requests each caller spent in its current hour, and how many were refused."""
        return self.forge.rate_limits.usage()

    def rate_limit(self, caller: str) -> RateLimitUsage | None:
        """One caller's hour (`user:LOGIN`, `installation:ID`, `app:ID`, `anonymous:ADDRESS`); None before its
        first request."""
        return next((usage for usage in self.rate_limits() if usage.caller == caller), None)

    def set_rate_limit(self, limit: int) -> None:
        """From now on, every authenticated caller may make `limit` REST requests an hour (GitHub's: 5,000)."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ApiError(422, f"A rate limit is a whole number of requests, not {limit!r}")
        self.forge.rate_limits.set_limit(limit)

    def reset_rate_limits(self) -> None:
        """Every caller starts a new hour with its whole budget (to count what one step of a test spends)."""
        self.forge.rate_limits.reset()


# What a workflow's `permissions:` may grant its job's `GITHUB_TOKEN` (GitHub's list, in the token's own
# spelling); everything an organisation-wide change needs is missing on purpose.
JOB_TOKEN_PERMISSIONS = ("actions", "attestations", "checks", "contents", "deployments", "discussions", "issues",
                         "metadata", "packages", "pages", "pull_requests", "repository_projects",
                         "security_events", "statuses")
