"""GitHub Apps, their installations and installation access tokens (GitHub's REST reference: Apps)."""

from __future__ import annotations

import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..auth import INSTALLATION_TOKEN_LIFETIME, Principal, new_token, now_iso
from ..errors import ApiError, invalid, not_found, unprocessable
from ..model import StoredAccount, StoredApp, StoredInstallation, StoredRepo, StoredToken
from .state import NOREPLY, GitHubState


class AppsArea(GitHubState):
    def create_app(self, owner: StoredAccount, name: str, permissions: dict[str, str] | None = None,
                   events: list[str] | None = None, webhook_url: str | None = None,
                   webhook_secret: str = "") -> tuple[StoredApp, str]:
        """A GitHub App with a fresh RSA key; returns the app and its private key (PEM)."""
        with self.store.lock:
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            if self.store.first(StoredApp, lambda a: a.slug == slug):
                raise invalid("Integration", "name", "already_exists")
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption()).decode()
            public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            bot = self.store.put(StoredAccount(self.store.new_id(), f"{slug}[bot]", "Bot", now_iso(), name=name,
                                               email=f"{slug}[bot]@{NOREPLY}"))
            app = self.store.put(StoredApp(
                self.store.new_id(), slug, name, owner.id, bot.id, client_id=f"Iv1.{new_token('')[:16].lower()}",
                public_key_pem=public_pem, created_at=now_iso(),
                permissions=dict(permissions or {"metadata": "read"}),
                events=list(events or ["check_run", "check_suite", "issue_comment", "pull_request",
                                       "pull_request_review", "push"]),
            ))
            if webhook_url:
                self.other_areas.add_hook(None, webhook_url, webhook_secret, app=app)
            return app, private_pem

    def install_app(self, app: StoredApp, account: StoredAccount, repositories: list[StoredRepo] | None = None,
                    sender: StoredAccount | None = None) -> StoredInstallation:
        """Install `app` on an org or user (all repositories, or only `repositories`); fires `installation`."""
        with self.store.lock:
            if self.store.first(StoredInstallation, lambda i: i.app_id == app.id and i.account_id == account.id):
                raise unprocessable("The app is already installed on this account")
            installation = self.store.put(StoredInstallation(
                self.store.new_id(), app.id, account.id, now_iso(),
                repository_selection="selected" if repositories is not None else "all",
                repository_ids=[r.id for r in repositories or []],
                permissions=dict(app.permissions), events=list(app.events),
            ))
            repos = repositories
            if repos is None:
                repos = self.store.all(StoredRepo, lambda r: r.owner_id == account.id)
            payload: dict[str, Any] = {
                "action": "created",
                "installation": self.render.installation(installation, for_webhook=True),
                "repositories": [{"id": r.id, "node_id": self.render.repo(r)["node_id"], "name": r.name,
                                  "full_name": self.render.repo(r)["full_name"], "private": r.private} for r in repos],
                "sender": self.render.user(sender or self.store.get(StoredAccount, app.owner_id)),
            }
            self.hooks.emit("installation", payload, installation=installation)
            return installation

    def installation_token(self, principal: Principal, installation_id: int, repositories: list[str] | None = None,
                           repository_ids: list[int] | None = None,
                           permissions: dict[str, str] | None = None) -> tuple[StoredToken, list[StoredRepo]]:
        with self.store.lock:
            if principal.kind != "app" or principal.app is None:
                raise ApiError(401, "A JSON web token could not be decoded")
            installation = self.store.get(StoredInstallation, installation_id)
            if installation is None or installation.app_id != principal.app.id:
                raise not_found()
            covered = self.store.all(StoredRepo, lambda r: r.owner_id == installation.account_id and (
                installation.repository_selection == "all" or r.id in installation.repository_ids))
            chosen: list[StoredRepo] | None = None
            # Empty lists and maps narrow nothing (PyGithub sends `"permissions": {}`).
            if repositories or repository_ids:
                names = {n.lower() for n in repositories or []}
                ids = set(repository_ids or [])
                chosen = [r for r in covered if r.name.lower() in names or r.id in ids]
                if len(chosen) != len(names) + len(ids):
                    raise unprocessable("There is at least one repository that does not exist or is not "
                                        "accessible to the parent installation.")
            permissions = permissions or None
            if permissions is not None:
                for category, level in permissions.items():
                    have = installation.permissions.get(category)
                    rank = {"read": 1, "write": 2, "admin": 3}
                    if have is None or level not in rank or rank[level] > rank.get(have, 0):
                        raise unprocessable("The permissions requested are not granted to this installation.")
            token = self.store.put(StoredToken(
                self.store.new_id(), new_token("ghs_"), now_iso(), installation_id=installation.id,
                expires_at=now_iso(INSTALLATION_TOKEN_LIFETIME),
                permissions=dict(permissions) if permissions is not None else dict(installation.permissions),
                repository_ids=[r.id for r in chosen] if chosen is not None else None,
            ))
            return token, chosen if chosen is not None else covered
