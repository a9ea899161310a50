"""Repositories: creating, importing, changing, deleting and forking them, and their collaborators
(GitHub's REST reference: Repositories, Repositories > Forks, Collaborators)."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey

from .. import gitrepo
from ..auth import Need, Principal, now_iso, refused
from ..errors import ApiError, invalid
from ..model import Role, StoredAccount, StoredCollaborator, StoredMembership, StoredRepo, StoredRepoRedirect
from .state import ADMIN, GitHubState

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _check_name(name: object) -> str:
    """`name` if a repository may have it (GitHub's characters, at most 100 of them); else GitHub's 422."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise invalid("Repository", "name", "custom", "name is invalid")
    return name


class ReposArea(GitHubState):
    def create_repo(self, principal: Principal, owner: StoredAccount, name: str, private: bool = False,
                    description: str | None = None, auto_init: bool = False,
                    default_branch: str = "main", internal: bool = False,
                    custom_properties: dict[str, Any] | None = None) -> StoredRepo:
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
                    member = self.store.first(StoredMembership,
                                              lambda m: m.org_id == owner.id and m.user_id == account.id)
                    if member is None:
                        raise ApiError(403, "You need admin access to the organization before adding a repository "
                                            "to it.")
                elif owner.id != account.id:
                    raise ApiError(403, "Resource not accessible by personal access token")
            _check_name(name)
            if self.find_repo(owner.login, name) is not None:
                raise invalid("Repository", "name", "custom", "name already exists on this account")
            values = self.other_areas.checked_property_values(principal, owner, None, custom_properties or {})
            private_key = PrivateKey.generate()
            now = now_iso()
            # A new repository reports its creation as its last push, as GitHub's do.
            repo = StoredRepo(self.store.new_id(), owner.id, name, now, now, now, private=private or internal,
                              description=description, default_branch=default_branch, internal=internal,
                              secrets_public_key=base64.b64encode(bytes(private_key.public_key)).decode(),
                              secrets_private_key=base64.b64encode(bytes(private_key)).decode(),
                              custom_properties={k: v for k, v in values.items() if v is not None})
            self.git(repo).init(default_branch)
            self.store.put(repo)
            # The name is this repository's now: a redirect left by renaming another one stops, as on GitHub.
            self._drop_redirects(lambda r: r.owner_id == owner.id and r.name.lower() == name.lower())
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

    def import_folder(self, repo: StoredRepo, folder: Path, message: str, author: StoredAccount) -> str:
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

    def update_repo(self, principal: Principal, repo: StoredRepo, fields: dict[str, Any]) -> StoredRepo:
        """Change a repository's name, description, visibility or default branch, or archive or unarchive it.

        A renamed repository keeps its id, git history, issues and pull requests; its git storage moves with
        it, so clone URLs and pushes use the new name. The old name goes on leading to it (`moved_repo`: REST
        answers 301/307 to `/repositories/ID`, git is redirected), as on GitHub, until a new repository takes
        that name. A name another repository of the owner has is refused (422).

        An archived repository is read-only: it takes no change but being unarchived. GitHub would also
        send `repository` webhooks (`renamed`, `edited`, `archived`, `privatized`, ...); the sandbox sends none.
        """
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            archived = fields.get("archived")
            if archived is not None and not isinstance(archived, bool):
                raise invalid("Repository", "archived")
            if repo.archived and archived is not False:
                raise ApiError(403, "Repository was archived so is read-only.")
            name = _check_name(fields["name"]) if "name" in fields else repo.name
            taken = self.find_repo(self._owner_login(repo), name)
            if taken is not None and taken.id != repo.id:
                raise invalid("Repository", "name", "custom", "name already exists on this account")
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
            owner = self.store.get(StoredAccount, repo.owner_id)
            if visibility == "internal" and (owner is None or owner.type != "Organization"):
                raise invalid("Repository", "visibility", "custom", "Only organization repositories can be internal")
            branch = fields.get("default_branch")
            if branch is not None and (not isinstance(branch, str) or
                                       self.git(repo).resolve(f"refs/heads/{branch}") is None):
                raise invalid("Repository", "default_branch", "invalid",
                              f"The branch {branch} was not found. Please push that ref first or create it via "
                              "the Git Data API.")
            if name != repo.name:
                self._rename(repo, name)
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

    def _rename(self, repo: StoredRepo, name: str) -> None:
        """`repo` called `name` from now on, its git storage moved with it, its old name redirecting to it."""
        with self.repo_lock(repo):
            old_path = self.git(repo).path
            old_name, repo.name = repo.name, name
            new_path = self.git(repo).path
            if new_path != old_path:  # a change of case only keeps the same (lower-case) folder
                old_path.rename(new_path)
        # The new name is this repository's now: a redirect it had (to this one or another) stops.
        self._drop_redirects(lambda r: r.owner_id == repo.owner_id and r.name.lower() == name.lower())
        if old_name.lower() != name.lower():
            self.store.put(StoredRepoRedirect(self.store.new_id(), repo.owner_id, old_name, repo.id))

    def _drop_redirects(self, where: Callable[[StoredRepoRedirect], object]) -> None:
        for redirect in self.store.all(StoredRepoRedirect, where):
            self.store.delete(redirect)

    def delete_repo(self, principal: Principal, repo: StoredRepo) -> None:
        with self.store.lock:
            self.access.require(principal, repo, Need("administration", "write", "admin"))
            shutil.rmtree(self.git(repo).path, ignore_errors=True)
            self._drop_redirects(lambda r: r.repo_id == repo.id)
            self.store.delete(repo)

    def fork_repo(self, principal: Principal, repo: StoredRepo) -> StoredRepo:
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

    def add_collaborator(self, repo: StoredRepo, user: StoredAccount, role: Role = "write") -> None:
        with self.store.lock:
            found = self.store.first(StoredCollaborator, lambda c: c.repo_id == repo.id and c.user_id == user.id)
            self.store.put(StoredCollaborator(found.id if found else self.store.new_id(), repo.id, user.id, role))
