"""The forge holds up when many clients come at once: a service's workers, a test's threads, a demo's steps."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable

import requests

from bot.sandbox import Sandbox

from .conftest import Cast

CLIENTS = 64


def all_at_once(count: int, call: Callable[[int], int]) -> list[int | str]:
    """`call(i)` from `count` threads released together; each result, or the error's repr."""
    start = threading.Barrier(count)
    results: list[int | str] = [""] * count

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # a reset connection, a timeout: counted, not raised in the thread
            results[i] = repr(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_sixty_four_clients_of_the_administration_api_connect_at_once(forge: Sandbox) -> None:
    def create_user(i: int) -> int:
        request = urllib.request.Request(f"{forge.url}/_sandbox/call/create_user", method="POST",
                                         data=json.dumps({"login": f"user-{i}"}).encode(),
                                         headers={"Authorization": f"token {forge.admin_token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:  # a new connection each
            return int(answer.status)

    assert all_at_once(CLIENTS, create_user) == [200] * CLIENTS
    assert all(forge.forge.account(f"user-{i}") is not None for i in range(CLIENTS))


def test_sixty_four_api_clients_keep_their_connections_alive_at_once(forge: Sandbox, cast: Cast) -> None:
    def read_five_times(i: int) -> int:
        with requests.Session() as session:
            session.headers["Authorization"] = f"token {cast.bob.token}"
            statuses = {session.get(f"{forge.api_url}/repos/acme/platform", timeout=30).status_code
                        for _ in range(5)}
        return statuses.pop() if len(statuses) == 1 else 0

    assert all_at_once(CLIENTS, read_five_times) == [200] * CLIENTS
