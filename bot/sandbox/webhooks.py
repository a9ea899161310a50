"""Webhook delivery as GitHub does it: signed JSON POSTs, a delivery log, redelivery.

Events are rendered while the triggering operation still holds the store lock (so a payload shows
the state right after the change), then queued; one background thread POSTs them in order, so a
receiver that calls back into the sandbox never deadlocks it. `wait()` blocks until the queue is
drained, which is how tests and demos know every delivery of a step has landed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import queue
import threading
import time
import urllib.parse
import uuid
from typing import Any

from . import recording
from .auth import now_iso
from .model import StoredApp, StoredDelivery, StoredHook, StoredInstallation, StoredRepo
from .render import node_id
from .store import Store

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds, as GitHub's
_MAX_RESPONSE = 64 * 1024


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value of `body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def wants(events: list[str], event: str) -> bool:
    return "*" in events or event in events or not events


class Dispatcher:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    # -- producing -----------------------------------------------------------------------------------------

    def emit(self, event: str, payload: dict[str, Any], repo: StoredRepo | None = None,
             app_only: StoredApp | None = None, installation: StoredInstallation | None = None,
             needs: str | None = None) -> list[StoredDelivery]:
        """Queue `payload` for every hook that should hear `event`; returns the deliveries made.

        Repository hooks of `repo` hear it, and so does the hook of every app installed on the
        repository (with an `installation` object added). `app_only` restricts delivery to one
        app's hook (GitHub sends `check_run rerequested` only to the app that owns the run);
        `installation` names the installation for events about an installation itself; `needs` is
        the permission an installation must hold to hear the event (`merge_queues` for `merge_group`).
        """
        targets: list[tuple[StoredHook, StoredInstallation | None]] = []
        if repo is not None and app_only is None:
            for hook in self.store.all(StoredHook, lambda h: h.repo_id == repo.id and h.active):
                if wants(hook.events, event):
                    targets.append((hook, None))
        installations = [installation] if installation else (self.installations_of(repo) if repo else [])
        for inst in installations:
            if app_only is not None and inst.app_id != app_only.id:
                continue
            app = self.store.get(StoredApp, inst.app_id)
            app_hook = next((h for h in self.store.all(StoredHook) if h.app_id == inst.app_id and h.active), None)
            if app is None or app_hook is None:
                continue
            subscribed = event in ("installation", "ping") or wants(inst.events or app.events, event)
            if subscribed and (needs is None or inst.permissions.get(needs) in ("read", "write")):
                targets.append((app_hook, inst))
        action = payload.get("action")
        deliveries = []
        for hook, target in targets:
            body = dict(payload)
            if target is not None and "installation" not in body:
                body["installation"] = {"id": target.id, "node_id": _installation_node(target.id)}
            deliveries.append(self._queue_new(hook, event, action, body, target, repo))
        return deliveries

    def ping(self, hook: StoredHook, payload: dict[str, Any]) -> StoredDelivery:
        return self._queue_new(hook, "ping", None, payload, None, self.store.get(StoredRepo, hook.repo_id or 0))

    def installations_of(self, repo: StoredRepo) -> list[StoredInstallation]:
        """The installations that cover `repo` (all of its owner's repositories, or it among those selected)."""
        return self.store.all(StoredInstallation, lambda i: i.account_id == repo.owner_id and (
            i.repository_selection == "all" or repo.id in i.repository_ids))

    def _queue_new(self, hook: StoredHook, event: str, action: Any, payload: dict[str, Any],
                   installation: StoredInstallation | None, repo: StoredRepo | None) -> StoredDelivery:
        raw = json.dumps(_without_view_type(payload), separators=(",", ":")).encode()
        guid = str(uuid.uuid4())
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/sandbox",
            "X-GitHub-Delivery": guid,
            "X-GitHub-Event": event,
            "X-GitHub-Hook-ID": str(hook.id),
            "X-GitHub-Hook-Installation-Target-ID": str(hook.app_id or hook.repo_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration" if hook.app_id else "repository",
        }
        if hook.secret:
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(hook.secret.encode(), raw, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = signature(hook.secret, raw)
        delivery = StoredDelivery(
            id=self.store.new_id(), guid=guid, hook_id=hook.id, event=event,
            action=action if isinstance(action, str) else None, delivered_at=now_iso(),
            request_headers=headers, request_body=raw.decode(),
            installation_id=installation.id if installation else None,
            repository_id=repo.id if repo else None,
        )
        self.store.put(delivery)
        recording.notify_delivery(recording.SentDelivery(event, delivery.action, headers, raw, hook.url))
        self._enqueue(delivery.id)
        return delivery

    def redeliver(self, delivery_id: int) -> StoredDelivery:
        """Send a past delivery again: same body and `X-GitHub-Delivery`, marked as a redelivery."""
        with self.store.lock:
            original = self.store.get(StoredDelivery, delivery_id)
            if original is None:
                raise KeyError(delivery_id)
            again = StoredDelivery(
                id=self.store.new_id(), guid=original.guid, hook_id=original.hook_id, event=original.event,
                action=original.action, delivered_at=now_iso(), request_headers=dict(original.request_headers),
                request_body=original.request_body, redelivery=True,
                installation_id=original.installation_id, repository_id=original.repository_id,
            )
            self.store.put(again)
        self._enqueue(again.id)
        return again

    def _enqueue(self, delivery_id: int) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(delivery_id)

    # -- consuming -----------------------------------------------------------------------------------------

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every queued delivery has been attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=TIMEOUT + 5)

    def _work(self) -> None:
        while True:
            delivery_id = self._queue.get()
            if delivery_id is None:
                return
            try:
                self._send(delivery_id)
            except Exception:  # a broken delivery must never stop the worker
                log.exception("webhook delivery %s failed", delivery_id)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _send(self, delivery_id: int) -> None:
        delivery = self.store.get(StoredDelivery, delivery_id)
        hook = self.store.get(StoredHook, delivery.hook_id) if delivery else None
        if delivery is None or hook is None:
            return
        started = time.monotonic()
        status_code, status, body = 0, "", b""
        headers: dict[str, str] = {}
        try:
            status_code, headers, body = _post(hook.url, delivery.request_headers, delivery.request_body.encode())
            status = "OK" if 200 <= status_code < 300 else f"Invalid HTTP Response: {status_code}"
        except TimeoutError:
            status = "timed out"
        except (OSError, http.client.HTTPException) as exc:
            status = f"failed to connect: {exc}"
        delivery.duration = round(time.monotonic() - started, 3)
        delivery.status_code = status_code
        delivery.status = status
        delivery.response_headers = {str(k): str(v) for k, v in headers.items()}
        delivery.response_body = body.decode(errors="replace")
        self.store.put(delivery)
        log.info("delivered %s %s (%s) to %s: %s", delivery.event, delivery.action or "", delivery.guid,
                 hook.url, status_code or status)


def _without_view_type(node: Any) -> Any:
    """The payload minus `user_view_type`: REST users carry it, but the published webhook schemas
    (octokit's, which receivers validate with) still forbid it, and GitHub's own make it optional."""
    if isinstance(node, dict):
        return {k: _without_view_type(v) for k, v in node.items() if k != "user_view_type"}
    if isinstance(node, list):
        return [_without_view_type(v) for v in node]
    return node


def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """POST with the headers spelled exactly as given (urllib would recapitalize `X-GitHub-Event`)."""
    parts = urllib.parse.urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "localhost", parts.port, timeout=TIMEOUT)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection.request("POST", target, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read(_MAX_RESPONSE)
    finally:
        connection.close()


def _installation_node(installation_id: int) -> str:
    return node_id("MDIz", installation_id)
