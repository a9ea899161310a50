"""A repository's labels and the labels on its issues (GitHub's REST reference: Issues > Labels)."""

from __future__ import annotations

import re
from typing import Any

from ..auth import Need, Principal, now_iso
from ..errors import ApiError, invalid, not_found
from ..model import StoredIssue, StoredLabel, StoredRepo
from .state import GitHubState


class LabelsArea(GitHubState):
    def label_for(self, repo: StoredRepo, name: str) -> StoredLabel:
        """The label called `name`, created (grey) if missing, as adding labels does on GitHub."""
        found = self.store.first(StoredLabel, lambda lb: lb.repo_id == repo.id and lb.name.lower() == name.lower())
        return found or self.store.put(StoredLabel(self.store.new_id(), repo.id, name, "ededed"))

    def find_label(self, repo: StoredRepo, name: str) -> StoredLabel:
        found = self.store.first(StoredLabel, lambda lb: lb.repo_id == repo.id and lb.name.lower() == name.lower())
        if found is None:
            raise not_found()
        return found

    def create_label(self, principal: Principal, repo: StoredRepo, name: Any, color: Any = None,
                     description: str | None = None) -> StoredLabel:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            if not isinstance(name, str) or not name.strip():
                raise invalid("Label", "name", "missing_field")
            color = (color or "ededed").lstrip("#") if isinstance(color, str | None) else ""
            if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
                raise invalid("Label", "color", "invalid")
            if self.store.first(StoredLabel, lambda lb: lb.repo_id == repo.id and lb.name.lower() == name.lower()):
                raise invalid("Label", "name", "already_exists")
            return self.store.put(StoredLabel(self.store.new_id(), repo.id, name, color.lower(), description))

    def update_label(self, principal: Principal, repo: StoredRepo, name: str, new_name: str | None = None,
                     color: str | None = None, description: str | None = None) -> StoredLabel:
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

    def delete_label(self, principal: Principal, repo: StoredRepo, name: str) -> None:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            label = self.find_label(repo, name)
            for issue in self.store.all(StoredIssue, lambda i: label.id in i.label_ids):
                issue.label_ids.remove(label.id)
                self.store.put(issue)
            self.store.delete(label)

    def set_labels(self, principal: Principal, repo: StoredRepo, number: int, names: list[str],
                   add: bool = False) -> StoredIssue:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            issue = self.issue(repo, number)
            ids = list(issue.label_ids) if add else []
            for name in names:
                label = self.label_for(repo, name)
                if label.id not in ids:
                    ids.append(label.id)
            issue.label_ids = ids
            issue.updated_at = now_iso()
            return self.store.put(issue)

    def remove_label(self, principal: Principal, repo: StoredRepo, number: int, name: str) -> StoredIssue:
        with self.store.lock:
            self.access.require(principal, repo, Need("issues", "write", "triage"))
            issue = self.issue(repo, number)
            label = self.find_label(repo, name)
            if label.id not in issue.label_ids:
                raise ApiError(404, "Label does not exist")
            issue.label_ids.remove(label.id)
            return self.store.put(issue)
