"""Fixtures for the sandbox forge's tests, and the conformance recorder that watches all of them.

Every REST answer and webhook payload the sandbox produces during the session is recorded (see
`bot/sandbox/recording.py`) with the test that caused it; at the end of the session all of them are
checked against GitHub's descriptions (`conformance.py`) and any that does not conform fails the
run, so a new test is covered without doing anything.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from github import Auth, Github

from bot.sandbox import Sandbox, User
from bot.sandbox.recording import Exchange, SentDelivery, watch

from .conformance import RestConformance, WebhookConformance

# -- the recorder ------------------------------------------------------------------------------------------------

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox_expects_server_error: the test provokes a 500 on purpose; "
                                       "the conformance check accepts it (still GitHub-shaped)")


@dataclass
class Recorder:
    current_test: str = ""
    expected_server_errors: set[str] = field(default_factory=set)
    exchanges: list[tuple[str, Exchange]] = field(default_factory=list)
    deliveries: list[tuple[str, SentDelivery]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_exchange(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append((self.current_test, exchange))

    def on_delivery(self, delivery: SentDelivery) -> None:
        with self.lock:
            self.deliveries.append((self.current_test, delivery))


_RECORDER = Recorder()


@pytest.fixture(scope="session", autouse=True)
def conformance() -> Iterator[Recorder]:
    """Records the whole session; at its end, every recorded answer must conform to GitHub's descriptions."""
    stop = watch(_RECORDER.on_exchange, _RECORDER.on_delivery)
    yield _RECORDER
    stop()
    if not _RECORDER.exchanges and not _RECORDER.deliveries:
        return
    problems = []
    if _RECORDER.exchanges:
        rest = RestConformance()
        for test, exchange in _RECORDER.exchanges:
            for problem in rest.check(exchange, allow_server_error=test in _RECORDER.expected_server_errors):
                problems.append(f"{test}: {exchange.method} {exchange.path} -> {exchange.status}: {problem}")
    if _RECORDER.deliveries:
        hooks = WebhookConformance()
        for test, delivery in _RECORDER.deliveries:
            for problem in hooks.check(delivery):
                problems.append(f"{test}: webhook {problem}")
    if problems:
        unique = list(dict.fromkeys(problems))
        pytest.fail(f"{len(unique)} answers do not conform to GitHub's descriptions:\n" + "\n".join(unique[:200]),
                    pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line saying what the conformance check covered in this run."""
    if not _RECORDER.exchanges and not _RECORDER.deliveries:
        return
    routes = {(e.method, e.route) for _, e in _RECORDER.exchanges if e.route}
    events = {f"{d.event}.{d.action}" if d.action else d.event for _, d in _RECORDER.deliveries}
    terminalreporter.write_line(
        f"sandbox conformance: {len(_RECORDER.exchanges)} REST answers over {len(routes)} operations and "
        f"{len(_RECORDER.deliveries)} webhook payloads over {len(events)} event kinds checked against GitHub's "
        f"descriptions ({', '.join(sorted(events))})")
    from bot.sandbox.endpoints import all_routes

    served = {(r.method, r.template) for r in all_routes().routes}
    idle = sorted(f"{method} {route}" for method, route in served - routes)
    if idle and len(routes) > 20:  # only worth saying for a whole-suite run
        terminalreporter.write_line(f"sandbox routes no test called: {', '.join(idle)}")


@pytest.fixture(autouse=True)
def _name_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    _RECORDER.current_test = request.node.nodeid
    if request.node.get_closest_marker("sandbox_expects_server_error"):
        _RECORDER.expected_server_errors.add(request.node.nodeid)
    yield
    _RECORDER.current_test = ""


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
