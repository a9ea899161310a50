"""Pull requests: opening, editing, closing and merging them, and their hidden refs (GitHub's REST
reference: Pulls)."""

from __future__ import annotations

from typing import Any

from .. import gitrepo
from ..auth import Need, Principal, now_iso
from ..errors import ApiError, invalid
from ..model import StoredAccount, StoredIssue, StoredPullRequest, StoredRepo
from .state import MAX_BODY, NOREPLY, WRITE_CODE, GitHubState


class PullsArea(GitHubState):
    def _head_repo(self, repo: StoredRepo, head: str) -> StoredRepo:
        """The repository holding a pull request's head branch: `repo`, or the fork `owner:branch` names."""
        owner = self.store.get(StoredAccount, repo.owner_id)
        assert owner is not None
        login = head.split(":", 1)[0] if ":" in head else owner.login
        if login.lower() == owner.login.lower():
            return repo
        fork = self.find_repo(login, repo.name)
        if fork is None or fork.fork_of != repo.id:
            raise invalid("PullRequest", "head", "invalid")
        return fork

    def take_fork_head(self, repo: StoredRepo, fork: StoredRepo, branch: str) -> None:
        """Bring a fork's branch's objects into `repo`, as GitHub's shared object store has them."""
        self.git(repo).run("fetch", "--quiet", "--no-tags", str(self.git(fork).path), f"refs/heads/{branch}")

    def open_pull_request(self, principal: Principal, repo: StoredRepo, head: str, base: str, title: str,
                          body: str | None = None, draft: bool = False,
                          maintainer_can_modify: bool = False) -> StoredPullRequest:
        with self.store.lock:
            self.access.require(principal, repo, Need("pull_requests", "write", "read"))
            author = self.actor_account(principal)
            git = self.git(repo)
            head_ref = head.split(":", 1)[1] if ":" in head else head
            head_repo = self._head_repo(repo, head)
            head_sha = self.git(head_repo).resolve(f"refs/heads/{head_ref}")
            base_sha = git.resolve(f"refs/heads/{base}")
            if head_repo is not repo and head_sha is not None:
                self.take_fork_head(repo, head_repo, head_ref)
            if not title or not title.strip():
                raise invalid("PullRequest", "title", "missing_field")
            if head_sha is None:
                raise invalid("PullRequest", "head", "invalid")
            if base_sha is None:
                raise invalid("PullRequest", "base", "invalid")
            if body is not None and len(body) > MAX_BODY:
                raise invalid("PullRequest", "body", "custom", f"body is too long (maximum is {MAX_BODY} characters)")
            owner = self.store.get(StoredAccount, repo.owner_id)
            assert owner is not None
            head_repo_id = head_repo.id if head_repo is not repo else None
            for other in self.store.all(StoredPullRequest, lambda p: p.repo_id == repo.id and p.head_ref == head_ref
                                        and p.base_ref == base and p.head_repo_id == head_repo_id):
                other_issue = self.store.get(StoredIssue, other.issue_id)
                if other_issue is not None and other_issue.state == "open":
                    raise invalid("PullRequest", "", "custom",
                                  f"A pull request already exists for {owner.login}:{head_ref}.")
            if not git.rev_list(head_sha, base_sha):
                raise invalid("PullRequest", "", "custom", f"No commits between {base} and {head_ref}")
            now = now_iso()
            number = self._next_number(repo)
            issue = self.store.put(StoredIssue(self.store.new_id(), repo.id, number, title, author.id, now, now,
                                               body=body, is_pull=True,
                                               app_id=principal.app.id if principal.app else None))
            pull = self.store.put(StoredPullRequest(self.store.new_id(), repo.id, number, issue.id, head_ref, head_sha,
                                                    base, base_sha, draft=draft,
                                                    maintainer_can_modify=maintainer_can_modify,
                                                    head_repo_id=head_repo_id))
            self.update_pull_refs(repo, pull)
            self.pull_event("opened", pull, author)
            return pull

    def update_pull_refs(self, repo: StoredRepo, pull: StoredPullRequest) -> None:
        """GitHub's hidden refs of a pull request: `refs/pull/N/head` (its head) and, while it is open and
        merges cleanly, `refs/pull/N/merge` (the merge a CI would test). Clients fetch these by name."""
        git = self.git(repo)
        git.update_ref(f"refs/pull/{pull.number}/head", pull.head_sha)
        issue = self.store.get(StoredIssue, pull.issue_id)
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

    def pull_event(self, action: str, pull: StoredPullRequest, sender: StoredAccount | None, **extra: Any) -> None:
        repo = self.store.get(StoredRepo, pull.repo_id)
        assert repo is not None
        payload: dict[str, Any] = {"action": action, "number": pull.number}
        if action == "synchronize":
            payload["before"] = extra.pop("before")
            payload["after"] = extra.pop("after")
        payload.update(extra)
        payload["pull_request"] = self.render.pull(pull, for_webhook=True)
        payload["repository"] = self.render.repo(repo, for_webhook=True)
        self._add_org(payload, repo)
        payload["sender"] = self.render.user(sender or self.store.get(StoredAccount, repo.owner_id))
        self.hooks.emit("pull_request", payload, repo)

    def update_pull_request(self, principal: Principal, repo: StoredRepo, number: int, title: str | None = None,
                            body: str | None = None, state: str | None = None,
                            base: str | None = None) -> StoredPullRequest:
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
                self.pull_event("edited", pull, actor, changes=changes)
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
                self.pull_event("closed" if state == "closed" else "reopened", pull, actor)
            return pull

    def merge(self, principal: Principal, repo: StoredRepo, number: int, method: str = "merge",
              commit_title: str | None = None, commit_message: str | None = None,
              sha: str | None = None) -> StoredPullRequest:
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
            blockers = self.other_areas.merge_blockers(repo, pull)
            if blockers:
                raise ApiError(405, "Repository rule violations found\n\n" + "\n".join(blockers))
            if self.other_areas.merge_queue_for(repo, pull.base_ref) is not None:
                raise ApiError(405, "Repository rule violations found\n\nChanges must be made through the merge queue")
            git = self.git(repo)
            base_ref = f"refs/heads/{pull.base_ref}"
            base_sha = git.resolve(base_ref)
            if base_sha is None:
                raise ApiError(405, "Pull Request is not mergeable")
            new_sha = self.merge_commit(repo, pull, issue, base_sha, method, self._person_of(actor),
                                        commit_title, commit_message)
            if new_sha is None:
                raise ApiError(405, "Pull Request is not mergeable")
            now = now_iso()
            pull.merged, pull.merged_at, pull.merged_by_id, pull.merge_commit_sha = True, now, actor.id, new_sha
            issue.state, issue.closed_at, issue.closed_by_id, issue.updated_at = "closed", now, actor.id, now
            self.store.put(pull)
            self.store.put(issue)
            self.other_areas.move_ref(principal, repo, base_ref, new_sha, base_sha, merging=True)
            pull.base_sha = base_sha  # the PR keeps the base it was merged onto
            self.store.put(pull)
            self.update_pull_refs(repo, pull)
            self.pull_event("closed", pull, actor)
            return pull

    def merge_commit(self, repo: StoredRepo, pull: StoredPullRequest, issue: StoredIssue, onto: str, method: str,
                     who: gitrepo.Person, commit_title: str | None = None,
                     commit_message: str | None = None) -> str | None:
        """The commit that lands `pull` on `onto` by `method` (`merge`, `squash` or `rebase`), as the merge
        button and the merge queue make it; None when it does not merge cleanly."""
        git = self.git(repo)
        number = pull.number
        if method == "rebase":
            new_sha = onto
            for sha_ in git.rev_list(pull.head_sha, onto):
                commit = git.commit(sha_)
                tree = git.merge_tree(new_sha, sha_) if commit.parents else commit.tree
                if tree is None:
                    return None
                new_sha = git.write_commit(tree, [new_sha], commit.message, commit.author, who)
            return new_sha
        tree = git.merge_tree(onto, pull.head_sha)
        if tree is None:
            return None
        if method == "merge":
            title = commit_title or f"Merge pull request #{number} from {self._owner_login(repo)}/{pull.head_ref}"
            message = f"{title}\n\n{commit_message if commit_message is not None else issue.title}\n"
            return git.write_commit(tree, [onto, pull.head_sha], message, who, who)
        title = commit_title or f"{issue.title} (#{number})"
        commits = [git.commit(c) for c in git.rev_list(pull.head_sha, onto)]
        default = "\n\n".join(f"* {c.message.strip()}" for c in commits)
        message = f"{title}\n\n{commit_message if commit_message is not None else default}\n"
        return git.write_commit(tree, [onto], message, who, who)
