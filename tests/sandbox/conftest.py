"""Fixtures for the sandbox forge's tests: a forge, the people in it, a webhook receiver.

The conformance check that holds every sandbox answer to GitHub's descriptions watches the whole suite
(`tests/conftest.py`), these tests included.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from github import Auth, Github

from bot.sandbox import Sandbox, User

# -- an isolated environment for git ----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def git_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No machine git config, a throwaway HOME, an author for every commit, no prompts."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Paved Tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@paved.invalid")


# -- a forge and the people in it ---------------------------------------------------------------------------------

@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox.start(tmp_path / "forge") as sandbox:
        yield sandbox


@pytest.fixture
def platform_folder(tmp_path: Path) -> Path:
    """A small platform repository's files."""
    folder = tmp_path / "platform"
    (folder / "services").mkdir(parents=True)
    (folder / "README.md").write_text("# platform\n\nRequests for the Paved platform.\n")
    (folder / "services" / "billing.yaml").write_text("kind: Service\nname: billing\nreplicas: 1\n")
    return folder


@dataclass(frozen=True)
class Cast:
    """acme's people: alice owns the org, bob is a member with write access, carol may only read."""

    alice: User
    bob: User
    carol: User


@pytest.fixture
def cast(forge: Sandbox, platform_folder: Path) -> Cast:
    alice = forge.create_user("alice")
    bob = forge.create_user("bob")
    carol = forge.create_user("carol")
    forge.create_org("acme", owners=["alice"], members=["bob"])
    forge.create_repo_from_folder("acme", "platform", platform_folder, owner_token=alice.token)
    forge.add_collaborator("acme", "platform", "bob", "write")
    forge.add_collaborator("acme", "platform", "carol", "read")
    return Cast(alice, bob, carol)


def github(forge: Sandbox, token: str | None = None, auth: Any = None) -> Github:
    """PyGithub pointed at the sandbox, exactly as at GitHub Enterprise.

    No retries, so errors surface; no client-side throttling (PyGithub waits 0.25 s between
    requests and 1 s between writes by default, which only slows tests down).
    """
    return Github(base_url=forge.api_url, auth=auth or (Auth.Token(token) if token else None), retry=None,
                  seconds_between_requests=None, seconds_between_writes=None)


# -- a webhook receiver ---------------------------------------------------------------------------------------------

@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> str:
        return self.headers.get("X-GitHub-Event", "")

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records what it is sent and answers `status`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def events(self, event: str, action: str | None = None) -> list[Received]:
        return [r for r in self.received if r.event == event and (action is None or r.payload.get("action") == action)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.close()
