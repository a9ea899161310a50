"""`paved serve` warms the catalogue index as it starts, in the background: `/readyz` says which platform
repo is still being indexed until it is done, deliveries are accepted meanwhile, and the start-up
reconcile waits for it. Against the sandbox forge, with acme's platform repo (the bundled catalogue) and
Paved's App installed on it; the app is served for real, with one consumer thread on the SQLite queue.

To look at the app while the warming runs, the warming is held after it has indexed a repository and
before it says so (`Held`), until the test lets it go.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.deliveries import open_delivery_log
from bot.adapters.queue import Work, make_queue
from bot.adapters.repo import FolderTree, GitTree
from bot.plan import validate_tree
from bot.rules import load_rules
from bot.sandbox import Sandbox
from bot.settings import Settings
from bot.web.app import Warm, create_app
from bot.web.jobs import IndexWarming, warm_catalogues
from tests.conftest import PROJECT, serving
from tests.test_service import EXAMPLES, OPENED, Recorder, signed
from tests.test_service_e2e import SECRET, platform_with_paved

REPO = "acme/platform"


class Held:
    """The app's `IndexWarming`, told that a repository is indexed only once `released` is set."""

    def __init__(self, warming: IndexWarming, released: threading.Event) -> None:
        self.warming = warming
        self.released = released
        self.stopping = warming.stopping

    def indexing(self, repo: str) -> None:
        self.warming.indexing(repo)

    def indexed(self, repo: str, resources: int, head: str) -> None:
        self.released.wait(30)
        self.warming.indexed(repo, resources, head)

    def failed(self, repo: str, why: str) -> None:
        self.warming.failed(repo, why)


def held_until(released: threading.Event) -> Warm:
    def warm(settings: Settings, warming: IndexWarming) -> None:
        warm_catalogues(settings, Held(warming, released))  # type: ignore[arg-type]
    return warm


@dataclass
class Started:
    """`paved serve`'s app on the sandbox forge: its address, the settings, and what its queue ran."""

    forge: Sandbox
    settings: Settings
    url: str
    job: Recorder
    reconciles: list[str]

    def ready(self) -> httpx.Response:
        return httpx.get(self.url + "/readyz", timeout=10)

    def indexing(self, seconds: float = 30) -> httpx.Response:
        """`/readyz`'s answer once the warming has found the platform repo and is indexing it."""
        deadline = time.monotonic() + seconds
        while REPO not in (answer := self.ready()).text:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.05)
        return answer

    def ready_within(self, seconds: float = 30) -> httpx.Response:
        deadline = time.monotonic() + seconds
        while (answer := self.ready()).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.05)
        return answer


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[tuple[Sandbox, Settings]]:
    with platform_with_paved(tmp_path) as (forge, settings, _):
        yield forge, settings


@pytest.fixture
def start(forge: tuple[Sandbox, Settings]) -> Iterator[Callable[[Warm], Started]]:
    """Start the app with a warming; it is stopped when the test ends."""
    sandbox, settings = forge
    with ExitStack() as running:
        def started(warm: Warm) -> Started:
            job, reconciles = Recorder(), []

            def reconcile(work: Work) -> None:
                reconciles.append(work.trigger)

            deliveries = open_delivery_log(settings)
            queue = make_queue(settings, deliveries, job, reconcile)
            url = running.enter_context(serving(create_app(settings, queue, deliveries, consumers=1, warm=warm)))
            return Started(sandbox, settings, url, job, reconciles)

        yield started


def deliver(service: Started, delivery_id: str) -> httpx.Response:
    body = (EXAMPLES / OPENED).read_bytes()
    return httpx.post(service.url + "/webhooks/github", content=body, headers=signed(body, delivery_id, secret=SECRET))


def bundled_resources() -> int:
    index = SQLiteCatalogueIndex()
    try:
        return validate_tree(FolderTree(PROJECT), store=index).resources
    finally:
        index.close()


def test_readyz_says_which_catalogue_is_being_indexed_until_it_is(start: Callable[[Warm], Started]) -> None:
    released = threading.Event()
    service = start(held_until(released))
    answer = service.indexing()
    assert answer.status_code == 503
    assert answer.json() == {"message": "not ready: the catalogue of acme/platform is still being indexed"}

    released.set()
    ready = service.ready_within()

    head = service.forge.branch_sha("acme", "platform", "main")
    assert head is not None
    assert ready.json()["catalogue"] == {REPO: f"indexed: {bundled_resources():,} resources at {head[:12]}"}


def test_the_warmed_index_holds_the_default_branchs_catalogue(start: Callable[[Warm], Started]) -> None:
    service = start(warm_catalogues)
    service.ready_within()
    head = service.forge.branch_sha("acme", "platform", "main")
    with GitTree(service.settings.mirrors / "acme" / "platform.git", str(head)) as tree:
        rules = load_rules(tree)
    index = SQLiteCatalogueIndex(service.settings.catalogue_index)
    try:
        state = index.latest_state(rules.digest)
    finally:
        index.close()
    assert state is not None and state.resources == bundled_resources()


def test_a_delivery_during_the_warming_is_accepted_and_its_job_runs(start: Callable[[Warm], Started]) -> None:
    released = threading.Event()
    service = start(held_until(released))
    try:
        accepted = deliver(service, "warming-1")
        assert service.job.ran.wait(30)
        assert service.ready().status_code == 503  # still warming
    finally:
        released.set()
    assert accepted.status_code == 202
    assert [run[0] for run in service.job.runs] == ["warming-1"]


def test_the_start_up_reconcile_is_queued_once_the_warming_is_done(start: Callable[[Warm], Started]) -> None:
    released = threading.Event()
    service = start(held_until(released))
    try:
        # A reconcile queued as the app started would have run before this later job, in the one consumer.
        service.indexing()
        deliver(service, "warming-2")
        assert service.job.ran.wait(30)
        assert "start" not in service.reconciles  # (a tick of the schedule may fall in this minute)
    finally:
        released.set()
    service.ready_within()

    deadline = time.monotonic() + 30
    while service.reconciles.count("start") != 1:
        assert time.monotonic() < deadline, service.reconciles
        time.sleep(0.05)


def test_a_crash_in_the_warming_is_logged_and_readyz_says_why_without_a_traceback(
        forge: tuple[Sandbox, Settings], start: Callable[[Warm], Started],
        log_output: Callable[[Settings], io.StringIO]) -> None:
    _, settings = forge
    logged = log_output(settings)
    settings.catalogue_index.mkdir(parents=True)  # a folder where SQLite's file should be: nothing opens it

    answer = start(warm_catalogues).ready_within()

    problem = answer.json()["catalogue"]["problem"]
    assert problem == "indexing stopped at start-up: OperationalError: unable to open database file"
    assert "Traceback" not in answer.text
    assert re.search(r"warming the catalogue index failed: OperationalError: unable to open database file\n"
                     r"Traceback", logged.getvalue())
