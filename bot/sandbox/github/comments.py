"""Issue and pull request comments and the reactions on them (GitHub's REST reference: Issues >
Comments, Reactions)."""

from __future__ import annotations

from typing import Any

from ..auth import Need, Principal, now_iso
from ..errors import ApiError, invalid, not_found
from ..model import StoredAccount, StoredComment, StoredIssue, StoredReaction, StoredRepo
from ..render import REACTIONS
from .state import MAX_BODY, GitHubState


class CommentsArea(GitHubState):
    def _comment_need(self, issue: StoredIssue) -> Need:
        return Need("pull_requests" if issue.is_pull else "issues", "write", "read")

    def comment(self, principal: Principal, repo: StoredRepo, number: int, body: Any) -> StoredComment:
        with self.store.lock:
            issue = self.issue(repo, number)
            self._require_comment_write(principal, repo, issue)
            author = self.actor_account(principal)
            _check_body(body, "IssueComment")
            if issue.locked and not self.access.may(principal, repo, Need("issues", "write", "write")):
                raise ApiError(403, "Unable to create comment because issue is locked.")
            now = now_iso()
            comment = self.store.put(StoredComment(self.store.new_id(), repo.id, number, author.id, body, now, now,
                                                   app_id=principal.app.id if principal.app else None))
            issue.updated_at = now
            self.store.put(issue)
            self._comment_event("created", repo, issue, comment, author)
            return comment

    def _require_comment_write(self, principal: Principal, repo: StoredRepo, issue: StoredIssue) -> None:
        # Installation tokens may comment on PRs with either permission, as on GitHub.
        if principal.kind == "installation" and issue.is_pull and self.access.may(
                principal, repo, Need("issues", "write", "read")):
            return
        self.access.require(principal, repo, self._comment_need(issue))

    def _comment_event(self, action: str, repo: StoredRepo, issue: StoredIssue, comment: StoredComment,
                       sender: StoredAccount, **extra: Any) -> None:
        payload: dict[str, Any] = {"action": action, "issue": self.render.issue(issue, for_webhook=True),
                                   "comment": self.render.comment(comment, for_webhook=True), **extra,
                                   "repository": self.render.repo(repo, for_webhook=True),
                                   "sender": self.render.user(sender)}
        self._add_org(payload, repo)
        self.hooks.emit("issue_comment", payload, repo)

    def _own_or_write(self, principal: Principal, repo: StoredRepo, issue: StoredIssue,
                      author_id: int) -> StoredAccount:
        actor = self.actor_account(principal)
        if actor.id == author_id:
            self._require_comment_write(principal, repo, issue)
        else:
            self.access.require(principal, repo, Need(self._comment_need(issue).category, "write", "write"))
        return actor

    def edit_comment(self, principal: Principal, repo: StoredRepo, comment_id: int, body: Any) -> StoredComment:
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

    def delete_comment(self, principal: Principal, repo: StoredRepo, comment_id: int) -> None:
        with self.store.lock:
            comment = self.get_comment(repo, comment_id)
            issue = self.issue(repo, comment.issue_number)
            actor = self._own_or_write(principal, repo, issue, comment.user_id)
            payload_comment = comment
            for reaction in self.store.all(StoredReaction, lambda r: r.comment_id == comment.id):
                self.store.delete(reaction)
            self.store.delete(comment)
            self._comment_event("deleted", repo, issue, payload_comment, actor)

    def get_comment(self, repo: StoredRepo, comment_id: int) -> StoredComment:
        comment = self.store.get(StoredComment, comment_id)
        if comment is None or comment.repo_id != repo.id:
            raise not_found()
        return comment

    def react(self, principal: Principal, repo: StoredRepo, comment_id: int,
              content: str) -> tuple[StoredReaction, bool]:
        """Add a reaction; returns it and whether it is new (GitHub answers 200 for an existing one)."""
        with self.store.lock:
            comment = self.get_comment(repo, comment_id)
            issue = self.issue(repo, comment.issue_number)
            self._require_comment_write(principal, repo, issue)
            actor = self.actor_account(principal)
            if content not in REACTIONS:
                raise invalid("Reaction", "content", "invalid")
            found = self.store.first(StoredReaction, lambda r: r.comment_id == comment.id and r.user_id == actor.id
                                     and r.content == content)
            if found is not None:
                return found, False
            return self.store.put(StoredReaction(self.store.new_id(), comment.id, actor.id, content, now_iso())), True

    def unreact(self, principal: Principal, repo: StoredRepo, comment_id: int, reaction_id: int) -> None:
        with self.store.lock:
            comment = self.get_comment(repo, comment_id)
            issue = self.issue(repo, comment.issue_number)
            self._require_comment_write(principal, repo, issue)
            reaction = self.store.get(StoredReaction, reaction_id)
            if reaction is None or reaction.comment_id != comment.id:
                raise not_found()
            actor = self.actor_account(principal)
            if reaction.user_id != actor.id:
                self.access.require(principal, repo, Need("issues", "write", "write"))
            self.store.delete(reaction)


def _check_body(body: Any, resource: str) -> None:
    if not isinstance(body, str) or not body.strip():
        raise invalid(resource, "body", "missing_field")
    if len(body) > MAX_BODY:
        raise invalid(resource, "body", "custom", f"body is too long (maximum is {MAX_BODY} characters)")
