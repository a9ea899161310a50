"""Issues: opening, editing, closing and reopening them (GitHub's REST reference: Issues)."""

from __future__ import annotations

from typing import Any

from ..auth import Need, Principal, now_iso
from ..errors import invalid
from ..model import StoredAccount, StoredIssue, StoredRepo
from .state import MAX_BODY, GitHubState


class IssuesArea(GitHubState):
    def create_issue(self, principal: Principal, repo: StoredRepo, title: str, body: str | None = None,
                     labels: list[str] | None = None) -> StoredIssue:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "read"))
            author = self.actor_account(principal)
            if not title or not str(title).strip():
                raise invalid("Issue", "title", "missing_field")
            if body is not None and len(body) > MAX_BODY:
                raise invalid("Issue", "body", "custom", "body is too long (maximum is 65536 characters)")
            now = now_iso()
            issue = StoredIssue(self.store.new_id(), repo.id, self._next_number(repo), title, author.id, now, now,
                                body=body, app_id=principal.app.id if principal.app else None)
            issue.label_ids = [self.other_areas.label_for(repo, name).id for name in labels or []]
            self.store.put(issue)
            self._issue_event("opened", repo, issue, author)
            return issue

    def update_issue(self, principal: Principal, repo: StoredRepo, number: int, title: str | None = None,
                     body: str | None = None, state: str | None = None, state_reason: str | None = None,
                     labels: list[str] | None = None) -> StoredIssue:
        with self.store.lock:
            issue = self.issue(repo, number)
            if issue.is_pull and (title is not None or body is not None or state is not None):
                self.other_areas.update_pull_request(principal, repo, number, title=title, body=body, state=state)
                issue = self.issue(repo, number)
                if labels is not None:
                    self.other_areas.set_labels(principal, repo, number, labels)
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
                issue.label_ids = [self.other_areas.label_for(repo, name).id for name in labels]
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

    def _issue_event(self, action: str, repo: StoredRepo, issue: StoredIssue, sender: StoredAccount,
                     **extra: Any) -> None:
        payload: dict[str, Any] = {"action": action, "issue": self.render.issue(issue, for_webhook=True), **extra,
                                   "repository": self.render.repo(repo, for_webhook=True),
                                   "sender": self.render.user(sender)}
        self._add_org(payload, repo)
        self.hooks.emit("issues", payload, repo)
