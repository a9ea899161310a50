"""Repository webhooks and an app's webhook, and their pings (GitHub's REST reference: Repositories >
Webhooks). Delivering them is `..webhooks.Dispatcher`'s job."""

from __future__ import annotations

from typing import Any

from ..auth import now_iso
from ..errors import invalid
from ..model import StoredAccount, StoredApp, StoredHook, StoredRepo
from .state import GitHubState


class WebhooksArea(GitHubState):
    def add_hook(self, repo: StoredRepo | None, url: str, secret: str = "", events: list[str] | None = None,
                 app: StoredApp | None = None, active: bool = True, content_type: str = "json") -> StoredHook:
        """A repository's webhook (or an app's single hook); GitHub pings a new hook right away."""
        with self.store.lock:
            if not url.startswith(("http://", "https://")):
                raise invalid("Hook", "url", "custom", "url is not supported because it isn't reachable over the "
                                                       "public Internet")
            now = now_iso()
            if app is not None:
                existing = self.store.first(StoredHook, lambda h: h.app_id == app.id)
                if existing is not None:
                    self.store.delete(existing)
            # A repository hook hears `push` unless told otherwise (GitHub's default); an app's hook everything.
            wanted = list(events or (["push"] if repo else ["*"]))
            hook = self.store.put(StoredHook(self.store.new_id(), url, secret, now, now,
                                             repo_id=repo.id if repo else None, app_id=app.id if app else None,
                                             events=wanted, active=active, content_type=content_type))
            if active:
                self.ping(hook)
            return hook

    def ping(self, hook: StoredHook) -> None:
        with self.store.lock:
            repo = self.store.get(StoredRepo, hook.repo_id or 0)
            hook_json = self.render.hook(hook)
            # A ping describes the hook as new (GitHub's ping payloads carry an unused last_response).
            hook_json["last_response"] = {"code": None, "status": "unused", "message": None}
            payload: dict[str, Any] = {"zen": "Keep it logically awesome.", "hook_id": hook.id, "hook": hook_json}
            if repo is not None:
                payload["repository"] = self.render.repo(repo, for_webhook=True)
                payload["sender"] = self.render.user(self.store.get(StoredAccount, repo.owner_id))
                self._add_org(payload, repo)
            else:
                app = self.store.get(StoredApp, hook.app_id or 0)
                hook_json["app_id"] = hook.app_id
                payload["sender"] = self.render.user(self.store.get(StoredAccount, app.owner_id) if app else None)
            self.hooks.ping(hook, payload)
