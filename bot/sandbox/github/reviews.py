"""Pull request reviews (GitHub's REST reference: Pulls > Reviews)."""

from __future__ import annotations

from typing import Any

from ..auth import Need, Principal, now_iso
from ..errors import ApiError, invalid, unprocessable
from ..model import StoredRepo, StoredReview
from .state import MAX_BODY, GitHubState


class ReviewsArea(GitHubState):
    def review(self, principal: Principal, repo: StoredRepo, number: int, event: str, body: str = "",
               commit_id: str | None = None) -> StoredReview:
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
            review = self.store.put(StoredReview(self.store.new_id(), repo.id, number, actor.id, states[event],
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
