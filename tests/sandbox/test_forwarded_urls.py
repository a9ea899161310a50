"""The forge names itself by the address a client reached it at, so a proxy can stand in front of it.

A proxy in front of GitHub Enterprise passes the address its clients used in `X-Forwarded-Proto`, `-Host`
and `-Port`; a plain relay passes the client's `Host` through. Either way the URLs in answers (bodies,
`Link` pagination, clone URLs) and in the webhooks a call causes lead back through it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from github import Auth, Github

from bot.sandbox import Sandbox
from bot.sandbox.recording import Exchange, watch

from .conftest import Cast, Receiver


class Relay:
    """A TCP relay on another loopback port: bytes in, bytes out, headers untouched."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def relay(forge: Sandbox) -> Iterator[Relay]:
    port = int(forge.url.rsplit(":", 1)[1])
    found = Relay(port)
    yield found
    found.close()


@pytest.fixture
def exchanges() -> Iterator[list[Exchange]]:
    seen: list[Exchange] = []
    stop = watch(seen.append)
    yield seen
    stop()


def labels(forge: Sandbox, count: int) -> None:
    for i in range(count):
        requests.post(f"{forge.api_url}/repos/acme/platform/labels", json={"name": f"label-{i:02}", "color": "ededed"},
                      headers={"Authorization": f"token {forge.admin_token}"}, timeout=10).raise_for_status()


@pytest.mark.parametrize(("port", "base"), [("8443", "https://github.example.com:8443"),
                                            ("443", "https://github.example.com")])
def test_answers_name_the_address_a_proxy_says_its_client_used(forge: Sandbox, cast: Cast, port: str,
                                                               base: str) -> None:
    labels(forge, 3)
    answer = requests.get(f"{forge.api_url}/repos/acme/platform/labels?per_page=2", timeout=10, headers={
        "Authorization": f"token {cast.alice.token}", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "github.example.com", "X-Forwarded-Port": port})
    assert answer.json()[0]["url"].startswith(f"{base}/api/v3/repos/acme/platform/labels/")
    assert f"<{base}/api/v3/repos/acme/platform/labels?per_page=2&page=2>" in answer.headers["Link"]
    repo = requests.get(f"{forge.api_url}/repos/acme/platform", timeout=10, headers={
        "Authorization": f"token {cast.alice.token}", "X-Forwarded-Proto": "https, http",
        "X-Forwarded-Host": "github.example.com", "X-Forwarded-Port": port}).json()
    assert (repo["url"], repo["html_url"], repo["clone_url"]) == (
        f"{base}/api/v3/repos/acme/platform", f"{base}/acme/platform", f"{base}/acme/platform.git")


def test_answers_name_the_host_the_client_asked_for(forge: Sandbox, cast: Cast) -> None:
    port = forge.url.rsplit(":", 1)[1]
    repo = requests.get(f"{forge.api_url}/repos/acme/platform", timeout=10, headers={
        "Authorization": f"token {cast.alice.token}", "Host": f"localhost:{port}"}).json()
    assert repo["clone_url"] == f"http://localhost:{port}/acme/platform.git"


@pytest.mark.parametrize("header", [{"X-Forwarded-Host": "evil.example/phish?x="},
                                    {"X-Forwarded-Host": "evil.example@other"},
                                    {"X-Forwarded-Proto": "javascript"},
                                    {"X-Forwarded-Port": "443/x"}])
def test_a_forwarded_value_that_is_no_address_is_ignored(forge: Sandbox, cast: Cast, header: dict[str, str]) -> None:
    repo = requests.get(f"{forge.api_url}/repos/acme/platform", timeout=10,
                        headers={"Authorization": f"token {cast.alice.token}", **header}).json()
    assert repo["url"] == f"{forge.api_url}/repos/acme/platform"


def test_pygithub_pages_and_git_clones_through_a_relay(forge: Sandbox, cast: Cast, relay: Relay,
                                                       exchanges: list[Exchange], tmp_path: Path) -> None:
    labels(forge, 25)
    exchanges.clear()
    client = Github(base_url=f"{relay.url}/api/v3", auth=Auth.Token(cast.alice.token), per_page=10,
                    seconds_between_requests=None, seconds_between_writes=None)
    repo = client.get_repo("acme/platform")
    assert len(list(repo.get_labels())) == 25  # three pages, each asked for at the `Link` the last one gave
    assert {e.request_headers.get("Host") for e in exchanges} == {f"127.0.0.1:{relay.port}"}
    assert len([e for e in exchanges if e.route == "/repos/{owner}/{repo}/labels"]) == 3
    assert repo.clone_url == f"{relay.url}/acme/platform.git"
    before = relay.connections
    url = repo.clone_url.replace("http://", f"http://x-access-token:{cast.alice.token}@")
    subprocess.run(["git", "clone", "-q", url, str(tmp_path / "clone")], check=True)
    assert (tmp_path / "clone" / "README.md").exists()
    assert relay.connections > before


def test_webhooks_name_the_address_the_call_that_caused_them_came_through(forge: Sandbox, cast: Cast, relay: Relay,
                                                                          receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, events=["issues"])
    client = Github(base_url=f"{relay.url}/api/v3", auth=Auth.Token(cast.alice.token),
                    seconds_between_requests=None, seconds_between_writes=None)
    client.get_repo("acme/platform").create_issue("Through the relay")
    forge.wait_for_deliveries()
    payload = receiver.events("issues", "opened")[0].payload
    assert payload["repository"]["url"] == f"{relay.url}/api/v3/repos/acme/platform"
    assert payload["issue"]["url"] == f"{relay.url}/api/v3/repos/acme/platform/issues/1"
