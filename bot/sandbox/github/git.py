"""Refs and commits, and what GitHub does once refs move: `push` deliveries, pull requests following
their branches, check suites requested (GitHub's REST reference: Git database, Repositories > Contents;
the `push` webhook)."""

from __future__ import annotations

from typing import Any

from .. import gitrepo
from ..auth import Principal, now_iso, parse_iso
from ..errors import ApiError, invalid, not_found, unprocessable
from ..model import StoredAccount, StoredIssue, StoredPullRequest, StoredRepo
from .state import GitHubState, RefUpdate


class GitDataArea(GitHubState):
    def move_ref(self, principal: Principal | None, repo: StoredRepo, ref: str, new: str | None, expected: str | None,
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
                    refusal = self.other_areas.protection_refusal(principal, repo, ref, current, new)
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

    def commit_files(self, principal: Principal, repo: StoredRepo, branch: str, changes: dict[str, bytes | None],
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

    def after_push(self, repo: StoredRepo, updates: list[RefUpdate], pusher: StoredAccount | None) -> None:
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
                for pull in self.store.all(StoredPullRequest, lambda p: p.repo_id == repo.id and not p.merged
                                           and p.head_repo_id is None):
                    issue = self.store.get(StoredIssue, pull.issue_id)
                    if issue is None or issue.state != "open":
                        continue
                    if pull.base_ref == branch:
                        pull.base_sha = update.after
                        self.store.put(pull)
                        self.other_areas.update_pull_refs(repo, pull)
                    if pull.head_ref == branch and pull.head_sha != update.after:
                        before = pull.head_sha
                        pull.head_sha = update.after
                        self.store.put(pull)
                        self.other_areas.update_pull_refs(repo, pull)
                        issue.updated_at = now_iso()
                        self.store.put(issue)
                        self.other_areas.pull_event("synchronize", pull, pusher, before=before, after=update.after)
                self.other_areas.request_check_suites(repo, branch, update)

    def _follow_fork_branch(self, pushed: StoredRepo, branch: str, update: RefUpdate,
                            pusher: StoredAccount | None) -> None:
        """Pull requests from a fork follow its branch into the repository they were opened on, as those
        from the same repository do, and follow their base branch there."""
        for pull in self.store.all(StoredPullRequest, lambda p: not p.merged and p.head_repo_id is not None and (
                (p.head_repo_id == pushed.id and p.head_ref == branch)
                or (p.repo_id == pushed.id and p.base_ref == branch))):
            issue = self.store.get(StoredIssue, pull.issue_id)
            target = self.store.get(StoredRepo, pull.repo_id)
            if issue is None or issue.state != "open" or target is None:
                continue
            if pull.repo_id == pushed.id:
                pull.base_sha = update.after
                self.store.put(pull)
                self.other_areas.update_pull_refs(target, pull)
                continue
            if pull.head_sha == update.after:
                continue
            self.other_areas.take_fork_head(target, pushed, branch)
            before, pull.head_sha = pull.head_sha, update.after
            self.store.put(pull)
            self.other_areas.update_pull_refs(target, pull)
            issue.updated_at = now_iso()
            self.store.put(issue)
            self.other_areas.pull_event("synchronize", pull, pusher, before=before, after=update.after)

    def _push_event(self, repo: StoredRepo, git: gitrepo.GitRepo, update: RefUpdate,
                    pusher: StoredAccount | None) -> None:
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
        owner = self.store.get(StoredAccount, repo.owner_id)
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

    def _push_commit(self, repo: StoredRepo, git: gitrepo.GitRepo, sha: str) -> dict[str, Any]:
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


def _epoch(value: str) -> float:
    return parse_iso(value)
