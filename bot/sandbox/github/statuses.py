"""Commit statuses (GitHub's REST reference: Commits > Commit statuses)."""

from __future__ import annotations

from typing import Any

from ..auth import Need, Principal, now_iso
from ..errors import invalid, unprocessable
from ..model import StoredRepo, StoredStatus
from .state import GitHubState


class StatusesArea(GitHubState):
    def create_status(self, principal: Principal, repo: StoredRepo, sha: str, state: Any, context: Any = None,
                      description: str | None = None, target_url: str | None = None) -> StoredStatus:
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
            status = self.store.put(StoredStatus(self.store.new_id(), repo.id, full, state, context,
                                                 actor.id if actor else repo.owner_id, now, now, description,
                                                 target_url))
            self.other_areas.merge_queue_checks_changed(repo, full)
            return status
