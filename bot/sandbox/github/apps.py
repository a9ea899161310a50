"""GitHub Apps, their installations and installation access tokens (GitHub's REST reference: Apps).

An App is registered from a manifest as GitHub's "Registering a GitHub App from a manifest" describes: the
web form (`endpoints/manifests.py`) creates it from the manifest's name, homepage, permissions, events,
webhook and sign-in callbacks, and hands back a one-time code; converting the code
(`POST /app-manifests/{code}/conversions`, no authentication) gives the App's private key, webhook secret
and a client secret, once. A code lasts an hour, on the forge's clock.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..auth import INSTALLATION_TOKEN_LIFETIME, Principal, new_token, now_iso
from ..errors import ApiError, invalid, not_found, unprocessable
from ..model import StoredAccount, StoredApp, StoredInstallation, StoredManifestCode, StoredRepo, StoredToken
from ..oauth import OAuth
from .state import NOREPLY, GitHubState

MANIFEST_CODE_LIFETIME = 3600  # seconds: GitHub's manifest codes expire after an hour
NAME_LIMIT = 34  # characters in an App's name
CALLBACK_LIMIT = 10  # sign-in callback URLs an App may have
LEVELS = ("read", "write", "admin")
DEFAULT_EVENTS = ["check_run", "check_suite", "issue_comment", "pull_request", "pull_request_review", "push"]


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
                events=list(DEFAULT_EVENTS if events is None else events),
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

    def create_app_from_manifest(self, owner: StoredAccount, manifest: object) -> tuple[StoredApp, str]:
        """Register the App `manifest` describes, owned by `owner` (a user, or an organization one of its owners
        registers it for); returns it and the one-time code its credentials are converted with.

        Raises `ApiError` 422 naming what GitHub would refuse in the manifest.
        """
        wanted = _checked_manifest(manifest)
        hook = wanted.get("hook_attributes") or {}
        webhook_url = hook.get("url") if hook.get("active", True) else None
        webhook_secret = secrets.token_hex(20) if webhook_url else None
        with self.store.lock:
            app, private_key = self.create_app(
                owner, wanted["name"], {"metadata": "read", **wanted.get("default_permissions", {})},
                list(wanted.get("default_events", [])), webhook_url, webhook_secret or "")
            app.description = wanted.get("description", "")
            app.callback_urls = list(wanted.get("callback_urls", []))
            self.store.put(app)
            code = self.store.put(StoredManifestCode(
                self.store.new_id(), secrets.token_hex(20), app.id, private_key, now_iso(),
                self.rate_limits.clock() + MANIFEST_CODE_LIFETIME, webhook_secret))
            return app, code.code

    def convert_manifest_code(self, code: str) -> tuple[StoredApp, str, str | None, str]:
        """The App a manifest code was issued for, with its private key, webhook secret (None without a
        webhook) and a new client secret; the code is used up. 404 when unknown, used or expired."""
        with self.store.lock:
            found = self.store.first(StoredManifestCode, lambda c: secrets.compare_digest(c.code, code))
            app = self.store.get(StoredApp, found.app_id) if found is not None else None
            if found is None or app is None:
                raise not_found()
            # Spent either way: what the code guarded (the private key) is not kept past its use or its hour.
            self.store.delete(found)
            if found.expires <= self.rate_limits.clock():
                raise not_found()
            return app, found.private_key, found.webhook_secret, OAuth(self.store).add_client_secret(app)


def _is_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _checked_manifest(manifest: object) -> dict[str, Any]:
    """The manifest, if it describes an App as GitHub's manifest parameters do; else `ApiError` 422."""
    if not isinstance(manifest, dict):
        raise unprocessable("The manifest must be a JSON object")
    name = manifest.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_LIMIT:
        raise invalid("Integration", "name", "invalid", f"Name must be 1 to {NAME_LIMIT} characters long")
    if not _is_url(manifest.get("url")):
        raise invalid("Integration", "url", "invalid", "Homepage URL must be a valid http(s) URL")
    for field_name in ("redirect_url", "setup_url"):
        if manifest.get(field_name) is not None and not _is_url(manifest[field_name]):
            raise invalid("Integration", field_name, "invalid", f"{field_name} must be a valid http(s) URL")
    if not isinstance(manifest.get("description", ""), str) or not isinstance(manifest.get("public", False), bool):
        raise unprocessable("description must be a string and public a boolean")
    hook = manifest.get("hook_attributes")
    if hook is not None and (not isinstance(hook, dict) or not _is_url(hook.get("url"))
                             or not isinstance(hook.get("active", True), bool)):
        raise invalid("Integration", "hook_attributes", "invalid", "Webhook URL must be a valid http(s) URL")
    callbacks = manifest.get("callback_urls", [])
    if not isinstance(callbacks, list) or len(callbacks) > CALLBACK_LIMIT or not all(map(_is_url, callbacks)):
        raise invalid("Integration", "callback_urls", "invalid",
                      f"Callback URLs must be at most {CALLBACK_LIMIT} valid http(s) URLs")
    permissions = manifest.get("default_permissions", {})
    if not isinstance(permissions, dict) or not all(
            isinstance(k, str) and re.fullmatch(r"[a-z_]+", k) and v in LEVELS for k, v in permissions.items()):
        raise invalid("Integration", "default_permissions", "invalid",
                      "Permissions must map permission names to read, write or admin")
    events = manifest.get("default_events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) and re.fullmatch(r"[a-z_]+", e) for e in events):
        raise invalid("Integration", "default_events", "invalid", "Events must be a list of event names")
    return manifest
