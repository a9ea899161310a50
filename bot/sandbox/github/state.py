"""What every resource area of the sandbox's GitHub shares: the store, access rules, callers' rate limits,
renderer, webhook dispatcher and git repositories, the lookups every area starts from (an account, a
repository the caller may see, an issue or pull request by number), the permission needs and limits they
check, and `OtherAreas`, the operations one area calls on another."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from .. import gitrepo
from ..auth import AccessRules, Need, Principal, now_iso
from ..errors import ApiError, not_found
from ..model import (
    StoredAccount,
    StoredApp,
    StoredEnvironment,
    StoredHook,
    StoredIssue,
    StoredLabel,
    StoredMembership,
    StoredMergeQueue,
    StoredPullRequest,
    StoredRepo,
    StoredRepoRedirect,
)
from ..ratelimits import RateLimits
from ..render import Renderer, Urls
from ..store import Store
from ..webhooks import Dispatcher

MAX_BODY = 65536
NOREPLY = "users.noreply.sandbox"
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")

READ_CODE = Need("contents", "read", "read")
WRITE_CODE = Need("contents", "write", "write")
READ_META = Need("metadata", "read", "read")
ADMIN = Need("administration", "write", "admin")


@dataclass(frozen=True)
class RefUpdate:
    """A ref that moved, by a push or an API call: what `push` deliveries, pull requests and check suites follow."""

    ref: str
    before: str  # ZERO_SHA when created
    after: str  # ZERO_SHA when deleted


class OtherAreas(Protocol):
    """The operations one resource area calls on another, by the area that provides them.

    On GitHub one change ripples across areas (a merge moves a ref, which synchronizes pull requests and
    requests check suites), so some areas call others; they do so through `GitHubState.other_areas`, which
    the composed `SandboxGitHub` sets to itself. Listing the calls here keeps each area's `self` down to what
    the area defines and what all share, shows in one place how the areas depend on each other, and lets
    the type checker hold `SandboxGitHub` to these signatures where it assigns itself.
    """

    # orgs.py (for teams.py and custom_properties.py)
    def require_org_admin(self, principal: Principal, org: StoredAccount) -> None: ...

    def add_member(self, org: StoredAccount, user: StoredAccount,
                   role: Literal["admin", "member"] = "member") -> None: ...

    def membership(self, org: StoredAccount, user: StoredAccount) -> StoredMembership | None: ...

    # custom_properties.py (for repos.py: a repository is created with its properties)
    def checked_property_values(self, principal: Principal, org: StoredAccount, repo: StoredRepo | None,
                                wanted: dict[str, Any]) -> dict[str, Any]: ...

    # git.py (for pulls.py: a merge moves the base branch)
    def move_ref(self, principal: Principal | None, repo: StoredRepo, ref: str, new: str | None,
                 expected: str | None, force: bool = False, merging: bool = False,
                 refusal_status: int = 422) -> None: ...

    # branches.py (for git.py and pulls.py: protection guards ref moves and merges)
    def protection_refusal(self, principal: Principal, repo: StoredRepo, ref: str, old: str | None,
                           new: str | None) -> str | None: ...

    def merge_blockers(self, repo: StoredRepo, pull: StoredPullRequest) -> list[str]: ...

    # branches.py (for merge_queue.py: a merge group waits for the base's required checks)
    def checks_verdict(self, repo: StoredRepo, branch: str, sha: str) -> Literal["passed", "failed", "pending"]: ...

    # merge_queue.py (for pulls.py, which refuses merging past a queue, and for checks.py and statuses.py,
    # whose results move it)
    def merge_queue_for(self, repo: StoredRepo, branch: str) -> StoredMergeQueue | None: ...

    def merge_queue_checks_changed(self, repo: StoredRepo, sha: str) -> None: ...

    # pulls.py (for git.py, which moves their branches, and issues.py, which edits them as issues)
    def update_pull_refs(self, repo: StoredRepo, pull: StoredPullRequest) -> None: ...

    def pull_event(self, action: str, pull: StoredPullRequest, sender: StoredAccount | None,
                   **extra: Any) -> None: ...

    def take_fork_head(self, repo: StoredRepo, fork: StoredRepo, branch: str) -> None: ...

    def merge_commit(self, repo: StoredRepo, pull: StoredPullRequest, issue: StoredIssue, onto: str, method: str,
                     who: gitrepo.Person, commit_title: str | None = None,
                     commit_message: str | None = None) -> str | None: ...

    def update_pull_request(self, principal: Principal, repo: StoredRepo, number: int, title: str | None = None,
                            body: str | None = None, state: str | None = None,
                            base: str | None = None) -> StoredPullRequest: ...

    # checks.py (for git.py: a new head gets check suites)
    def request_check_suites(self, repo: StoredRepo, branch: str, update: RefUpdate) -> None: ...

    # labels.py (for issues.py)
    def label_for(self, repo: StoredRepo, name: str) -> StoredLabel: ...

    def set_labels(self, principal: Principal, repo: StoredRepo, number: int, names: list[str],
                   add: bool = False) -> StoredIssue: ...

    # webhooks.py (for apps.py: an app's webhook)
    def add_hook(self, repo: StoredRepo | None, url: str, secret: str = "", events: list[str] | None = None,
                 app: StoredApp | None = None, active: bool = True, content_type: str = "json") -> StoredHook: ...

    # environments.py (for actions.py: environment secrets)
    def environment(self, repo: StoredRepo, name: str) -> StoredEnvironment: ...


class GitHubState:
    """The sandbox GitHub's state and shared lookups; each resource area (`repos.py`, `pulls.py`, ...) adds its
    operations on top, and `SandboxGitHub` composes them all."""

    other_areas: OtherAreas  # set by `SandboxGitHub`, to itself

    def __init__(self, data_dir: Path, urls: Urls, clock: Callable[[], float] = time.time) -> None:
        self.data_dir = data_dir
        self.repos_dir = data_dir / "repos"
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(data_dir / "sandbox.sqlite3")
        self.access = AccessRules(self.store)
        self.bound_urls = urls  # where the forge listens; `urls` is where the request being served reached it
        self.render = Renderer(self.store, urls, self.git)
        self.hooks = Dispatcher(self.store)
        self.rate_limits = RateLimits(clock=clock)
        self._repo_locks: dict[int, threading.Lock] = {}
        for repo in self.store.all(StoredRepo):
            self.git(repo).install_hooks()  # repositories made by an older sandbox get the current hook

    @property
    def urls(self) -> Urls:
        return self.render.urls

    def close(self) -> None:
        self.hooks.close()
        self.store.close()

    def git(self, repo: StoredRepo) -> gitrepo.GitRepo:
        owner = self.store.get(StoredAccount, repo.owner_id)
        assert owner is not None
        return gitrepo.GitRepo(self.repos_dir / owner.login.lower() / f"{repo.name.lower()}.git")

    @contextmanager
    def repo_lock(self, repo: StoredRepo) -> Iterator[None]:
        """Serializes ref changes of one repository between git pushes and API writes."""
        with self.store.lock:
            lock = self._repo_locks.setdefault(repo.id, threading.Lock())
        with lock:
            yield

    def account(self, login: str) -> StoredAccount | None:
        wanted = login.lower()
        return self.store.first(StoredAccount, lambda a: a.login.lower() == wanted)

    def account_or_404(self, login: str) -> StoredAccount:
        found = self.account(login)
        if found is None or (found.type == "Bot" and not login.endswith("[bot]")):
            raise not_found()
        return found

    def find_repo(self, owner: str, name: str) -> StoredRepo | None:
        account = self.account(owner)
        if account is None:
            return None
        wanted = name.lower().removesuffix(".git")
        return self.store.first(StoredRepo, lambda r: r.owner_id == account.id and r.name.lower() == wanted)

    def moved_repo(self, owner: str, name: str) -> StoredRepo | None:
        """The repository that was called `owner/name` before it was renamed, when no repository has that name
        now (GitHub redirects the old name to it); None otherwise."""
        account = self.account(owner)
        if account is None or self.find_repo(owner, name) is not None:
            return None
        wanted = name.lower().removesuffix(".git")
        found = self.store.first(StoredRepoRedirect, lambda r: r.owner_id == account.id and r.name.lower() == wanted)
        return self.store.get(StoredRepo, found.repo_id) if found is not None else None

    def repo_for(self, principal: Principal, owner: str, name: str, need: Need = READ_META) -> StoredRepo:
        """The repository, if `principal` may do `need` on it (404 if they may not even see it)."""
        repo = self.find_repo(owner, name)
        if repo is None:
            raise not_found()
        self.access.require(principal, repo, need)
        return repo

    def issue(self, repo: StoredRepo, number: int) -> StoredIssue:
        found = self.store.first(StoredIssue, lambda i: i.repo_id == repo.id and i.number == number)
        if found is None:
            raise not_found()
        return found

    def pull(self, repo: StoredRepo, number: int) -> StoredPullRequest:
        found = self.store.first(StoredPullRequest, lambda p: p.repo_id == repo.id and p.number == number)
        if found is None:
            raise not_found()
        return found

    def actor_account(self, principal: Principal) -> StoredAccount:
        if principal.account is None:
            raise ApiError(401, "Requires authentication")
        return principal.account

    def _person_of(self, account: StoredAccount) -> gitrepo.Person:
        return gitrepo.Person(account.name or account.login, account.email or f"{account.login}@{NOREPLY}", now_iso())

    def person_of(self, principal: Principal) -> gitrepo.Person:
        """The git identity of whoever acts (an app acts as its bot)."""
        if principal.account is not None:
            return self._person_of(principal.account)
        return gitrepo.Person("GitHub", f"noreply@{NOREPLY}", now_iso())

    def _add_org(self, payload: dict[str, Any], repo: StoredRepo) -> None:
        owner = self.store.get(StoredAccount, repo.owner_id)
        if owner is not None and owner.type == "Organization":
            payload["organization"] = self.render.org_simple(owner)

    def _next_number(self, repo: StoredRepo) -> int:
        return max((i.number for i in self.store.all(StoredIssue, lambda i: i.repo_id == repo.id)), default=0) + 1

    def _owner_login(self, repo: StoredRepo) -> str:
        owner = self.store.get(StoredAccount, repo.owner_id)
        return owner.login if owner else ""

