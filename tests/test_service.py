"""`paved serve` over real HTTP: webhooks verified, recorded and queued; jobs run by real consumers.

Each test runs the app under uvicorn on a free local port in a thread and talks to it with httpx, with
example deliveries GitHub sends. The job is a plain callable passed in, as Paved's handlers are. The
scale-out tests use a real Redis and a separate `paved worker` process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot.adapters.deliveries import (
    SCHEMA,
    DeliveryContextFilter,
    DeliveryLog,
    Duplicate,
    Record,
    RedisDeliveryLog,
    SqliteDeliveryLog,
    open_delivery_log,
)
from bot.adapters.metrics import METRICS_FOLDER
from bot.adapters.queue import Periodic, RepoBusy, Work, WorkQueue, every, make_queue
from bot.settings import Secret, Settings
from bot.web.app import create_app
from bot.webhook import MAX_BODY_BYTES, Delivery, signature
from tests.conftest import PROJECT, missing, serving
from tests.service_jobs import log_delivery

EXAMPLES = Path(__file__).parent / "data" / "github" / "webhooks"
OPENED = "pull_request.opened.1.json"
MERGED = "derived/pull_request.closed.merged.1.json"
REPO = "Codertocat/Hello-World"
SECRET = "webhook-secret-for-tests-5f1c9a"
TOKEN = "ghp_" + "T0kenForTests" * 2 + "0123456789"
REDIS_URL = os.environ.get("PAVED_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# -- the service under test --------------------------------------------------------------------------------


def settings_for(tmp_path: Path, **changes: Any) -> Settings:
    env = {"PAVED_DATA_DIR": str(tmp_path / "data"), "PAVED_WEBHOOK_SECRET": SECRET, "PAVED_GITHUB_TOKEN": TOKEN,
           "PAVED_QUEUE_IMMEDIATE": "1"}
    return dataclasses.replace(Settings.from_env(env), **changes)


def signed(body: bytes, delivery_id: str, event: str = "pull_request", secret: str = SECRET,
           content_type: str = "application/json") -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id, "Content-Type": content_type,
            "X-Hub-Signature-256": signature(secret, body), "User-Agent": "GitHub-Hookshot/tests"}


class Recorder:
    """A job that records what it was given; it fails the first `failures` runs of each delivery."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.runs: list[tuple[str, str, str | None, int]] = []
        self.ran = threading.Event()

    def __call__(self, delivery: Delivery, work: Work) -> None:
        self.runs.append((delivery.id, delivery.kind, delivery.repository, work.attempt))
        self.ran.set()
        if work.attempt <= self.failures:
            raise RuntimeError(f"GitHub answered 502 for {delivery.repository}\n  while planning")


@dataclass
class Service:
    url: str
    queue: WorkQueue
    deliveries: DeliveryLog
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def deliver(self, example: str, delivery_id: str, **header_changes: str) -> httpx.Response:
        body = (EXAMPLES / example).read_bytes()
        headers = {**signed(body, delivery_id, event=example.split("/")[-1].split(".")[0]), **header_changes}
        return self.client.post(self.url + "/webhooks/github", content=body, headers=headers)

    def wait_for(self, delivery_id: str, status: str, seconds: float = 10.0) -> Record:
        deadline = time.monotonic() + seconds
        while True:
            record = self.deliveries.get(delivery_id)
            if record is not None and record.status == status:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"{delivery_id} did not become {status} in {seconds}s: {record}")
            time.sleep(0.05)


@contextmanager
def running(settings: Settings, job: Callable[[Delivery, Work], None], periodic: Periodic | None = None, *,
            consumers: int = 0, max_body_bytes: int = MAX_BODY_BYTES, deliveries: DeliveryLog | None = None,
            queue: WorkQueue | None = None) -> Iterator[Service]:
    """The app on a free 127.0.0.1 port, served by uvicorn in a thread, until the block ends."""
    deliveries = deliveries or open_delivery_log(settings)
    queue = queue or make_queue(settings, deliveries, job, periodic, busy_retry_seconds=0.2)
    app = create_app(settings, queue, deliveries, consumers=consumers, max_body_bytes=max_body_bytes)
    with serving(app) as url:
        service = Service(url, queue, deliveries)
        try:
            yield service
        finally:
            service.client.close()


def assert_message_only(response: httpx.Response) -> str:
    """The body of a refusal: JSON with one `message`, and never a traceback."""
    assert response.headers["content-type"] == "application/json"
    assert "Traceback" not in response.text
    body = response.json()
    assert list(body) == ["message"] and isinstance(body["message"], str)
    return str(body["message"])


# -- accepting -----------------------------------------------------------------------------------------------


def test_a_signed_delivery_is_answered_202_and_its_job_runs_inline_in_immediate_mode(tmp_path: Path) -> None:
    job = Recorder()
    with running(settings_for(tmp_path), job) as service:
        response = service.deliver(OPENED, "opened-1")
    assert response.status_code == 202
    assert response.json() == {"message": f"accepted pull_request.opened for {REPO}", "delivery": "opened-1"}
    assert job.runs == [("opened-1", "pull_request.opened", REPO, 1)]


def test_a_consumer_thread_runs_the_job_after_the_202_is_sent(tmp_path: Path) -> None:
    release = threading.Event()
    runs: list[str] = []

    def slow_job(delivery: Delivery, work: Work) -> None:
        release.wait(10)
        runs.append(delivery.kind)

    with running(settings_for(tmp_path, queue_immediate=False), slow_job, consumers=1) as service:
        started = time.monotonic()
        response = service.deliver(MERGED, "merged-1")
        answered_in = time.monotonic() - started
        assert response.status_code == 202
        assert answered_in < 1.0  # milliseconds in practice; the bound only has to beat the blocked job
        assert runs == []
        release.set()
        service.wait_for("merged-1", "done")
    assert runs == ["pull_request.closed"]


def test_the_delivery_log_records_what_arrived_and_how_its_job_ended(tmp_path: Path) -> None:
    with running(settings_for(tmp_path), Recorder()) as service:
        service.deliver(MERGED, "merged-2")
        record = service.deliveries.get("merged-2")
    assert record is not None
    assert (record.id, record.event, record.action, record.repo) == ("merged-2", "pull_request", "closed", REPO)
    assert (record.status, record.attempts, record.last_error) == ("done", 1, None)
    assert record.received_at <= record.updated_at


# -- refusing ------------------------------------------------------------------------------------------------


def test_every_delivery_is_refused_with_401_when_no_secret_is_configured(tmp_path: Path) -> None:
    job = Recorder()
    with running(settings_for(tmp_path, webhook_secret=None), job) as service:
        response = service.deliver(OPENED, "no-secret")
        assert service.deliveries.get("no-secret") is None
    assert response.status_code == 401
    assert "no webhook secret is configured" in assert_message_only(response)
    assert job.runs == []


def test_a_delivery_without_a_signature_is_refused_with_401(tmp_path: Path) -> None:
    job = Recorder()
    body = (EXAMPLES / OPENED).read_bytes()
    headers = signed(body, "unsigned")
    del headers["X-Hub-Signature-256"]
    with running(settings_for(tmp_path), job) as service:
        response = service.client.post(service.url + "/webhooks/github", content=body, headers=headers)
    assert response.status_code == 401
    assert "no X-Hub-Signature-256" in assert_message_only(response)
    assert job.runs == []


def test_a_delivery_signed_with_another_secret_is_refused_with_401(tmp_path: Path) -> None:
    job = Recorder()
    body = (EXAMPLES / OPENED).read_bytes()
    with running(settings_for(tmp_path), job) as service:
        response = service.client.post(service.url + "/webhooks/github", content=body,
                                       headers=signed(body, "forged", secret="someone-elses-secret-123"))
    assert response.status_code == 401
    assert "does not match" in assert_message_only(response)
    assert job.runs == []


def test_a_body_declared_over_the_bound_is_refused_with_413_before_it_is_read(tmp_path: Path) -> None:
    with running(settings_for(tmp_path), Recorder()) as service:
        host, port = urllib.parse.urlsplit(service.url).netloc.split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            # Only the headers are sent: an answer proves the server did not wait for the gigabyte.
            conn.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: paved\r\nContent-Type: application/json\r\n"
                         b"X-GitHub-Event: push\r\nContent-Length: 1000000000\r\n\r\n")
            reply = b""
            while b"}" not in reply:
                chunk = conn.recv(4096)
                assert chunk, f"connection closed after {reply!r}"
                reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body) == {"message": f"payload of 1,000,000,000 bytes is over the limit of {MAX_BODY_BYTES:,}"}


def test_a_chunked_body_over_the_bound_is_refused_with_413(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    with running(settings_for(tmp_path), Recorder(), max_body_bytes=4096) as service:
        response = service.client.post(service.url + "/webhooks/github", content=chunks(),
                                       headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert assert_message_only(response) == "payload is over the limit of 4,096 bytes"


def test_a_delivery_that_is_not_json_is_refused_with_415(tmp_path: Path) -> None:
    job = Recorder()
    payload = (EXAMPLES / OPENED).read_text(encoding="utf-8")
    body = urllib.parse.urlencode({"payload": payload}).encode()
    with running(settings_for(tmp_path), job) as service:
        response = service.client.post(
            service.url + "/webhooks/github", content=body,
            headers=signed(body, "form", content_type="application/x-www-form-urlencoded"))
    assert response.status_code == 415
    assert "expected application/json" in assert_message_only(response)
    assert job.runs == []


def test_a_signed_delivery_nested_too_deeply_is_refused_with_400_and_the_service_carries_on(tmp_path: Path) -> None:
    job = Recorder()
    body = b"[" * 100_000
    with running(settings_for(tmp_path), job) as service:
        response = service.client.post(service.url + "/webhooks/github", content=body,
                                       headers=signed(body, "deep-1"))
        after = service.deliver(OPENED, "after-deep-1")
        record = service.deliveries.get("deep-1")
    assert response.status_code == 400
    assert assert_message_only(response) == "the payload nests 100,000 levels deep; Paved reads at most 64"
    assert record is None
    assert after.status_code == 202
    assert [run[0] for run in job.runs] == ["after-deep-1"]


# -- redeliveries ----------------------------------------------------------------------------------------------


def test_a_redelivery_of_an_accepted_delivery_is_answered_200_as_a_duplicate_and_not_run_again(
        tmp_path: Path) -> None:
    job = Recorder()
    with running(settings_for(tmp_path), job) as service:
        first = service.deliver(OPENED, "twice")
        again = service.deliver(OPENED, "twice")
        record = service.deliveries.get("twice")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["duplicate"] is True
    assert "duplicate delivery twice" in again.json()["message"]
    assert len(job.runs) == 1
    assert record is not None and record.attempts == 1


def test_a_redelivery_of_a_failed_delivery_is_run_again(tmp_path: Path) -> None:
    job = Recorder(failures=1)
    with running(settings_for(tmp_path), job) as service:
        assert service.deliver(MERGED, "retry-me").status_code == 202
        failed = service.deliveries.get("retry-me")
        again = service.deliver(MERGED, "retry-me")
        done = service.deliveries.get("retry-me")
    assert failed is not None and failed.status == "failed"
    assert again.status_code == 202
    assert done is not None and (done.status, done.attempts) == ("done", 2)
    assert [attempt for *_, attempt in job.runs] == [1, 2]


def test_a_failed_job_leaves_one_line_in_the_delivery_log(tmp_path: Path) -> None:
    with running(settings_for(tmp_path), Recorder(failures=1)) as service:
        service.deliver(MERGED, "fails")
        record = service.deliveries.get("fails")
    assert record is not None and record.status == "failed"
    assert record.last_error == f"RuntimeError: GitHub answered 502 for {REPO} while planning"


def test_a_body_replayed_under_a_new_delivery_id_is_answered_200_and_not_acted_on_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    job = Recorder()
    caplog.handler.addFilter(DeliveryContextFilter())
    with running(settings_for(tmp_path), job) as service:
        first = service.deliver(OPENED, "original-1")
        replayed = service.deliver(OPENED, "replayed-1")
        redelivered = service.deliver(OPENED, "original-1")
        records = service.deliveries.get("original-1"), service.deliveries.get("replayed-1")
    assert (first.status_code, replayed.status_code, redelivered.status_code) == (202, 200, 200)
    assert replayed.json() == {
        "message": "duplicate delivery replayed-1: its body was accepted before as delivery original-1, which is "
                   "done, so it is not acted on again", "duplicate": True, "status": "done", "replay_of": "original-1"}
    assert redelivered.json()["duplicate"] is True and "replay_of" not in redelivered.json()
    assert [run[0] for run in job.runs] == ["original-1"]
    digest = hashlib.sha256((EXAMPLES / OPENED).read_bytes()).hexdigest()
    assert records[0] is not None and records[0].body_sha256 == digest
    assert records[1] is None
    replays = [r for r in caplog.records if r.getMessage().startswith("replayed delivery")]
    assert [(r.levelname, r.delivery_id) for r in replays] == [("WARNING", "replayed-1")]  # type: ignore[attr-defined]


def test_a_body_whose_delivery_failed_is_taken_again_under_a_new_id_as_a_redelivery_would_be(tmp_path: Path) -> None:
    runs: list[str] = []

    def fails_the_first_time(delivery: Delivery, work: Work) -> None:
        runs.append(delivery.id)
        if len(runs) == 1:
            raise RuntimeError("GitHub answered 502")

    with running(settings_for(tmp_path), fails_the_first_time) as service:
        failed = service.deliver(MERGED, "failed-1")
        again = service.deliver(MERGED, "failed-1-again")
        once_more = service.deliver(MERGED, "failed-1")
    assert (failed.status_code, again.status_code, once_more.status_code) == (202, 202, 200)
    assert once_more.json()["replay_of"] == "failed-1-again"
    assert runs == ["failed-1", "failed-1-again"]


def test_a_different_body_under_a_new_id_is_accepted(tmp_path: Path) -> None:
    job = Recorder()
    with running(settings_for(tmp_path), job) as service:
        codes = [service.deliver(OPENED, "one").status_code, service.deliver(MERGED, "two").status_code]
    assert codes == [202, 202]
    assert [run[0] for run in job.runs] == ["one", "two"]


def test_a_delivery_log_written_before_bodies_were_recorded_gains_the_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "deliveries.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(SCHEMA.replace(",\n    body_sha256 text,\n    started_at  text,\n    payload     text,\n"
                                  "    retry_at    text", ""))
        db.execute("insert into deliveries values ('old-1', 'push', null, 'acme/platform',"
                   " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', 'done', 1, null)")
    db.close()
    store = SqliteDeliveryLog(path)
    old = store.get("old-1")
    assert old is not None and (old.status, old.body_sha256, old.started_at) == ("done", None, None)
    assert store.accept(Delivery("new-1", "push", {}, body_sha256="ab" * 32)) is None
    assert store.claim(Delivery("new-1", "push", {})) == 1
    started = store.get("new-1")
    assert started is not None and started.started_at is not None and started.started_at >= started.received_at
    assert SqliteDeliveryLog(path).accept(Delivery("new-2", "push", {}, body_sha256="ab" * 32)) == \
        Duplicate("new-1", "processing", replay=True)


def test_a_delivery_the_queue_cannot_take_is_answered_503_and_accepted_when_redelivered(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, queue_immediate=False)
    deliveries = open_delivery_log(settings)
    nowhere = dataclasses.replace(settings, redis_url=Secret("redis://127.0.0.1:9/0"))
    unreachable = make_queue(nowhere, deliveries, Recorder())
    with running(settings, Recorder(), deliveries=deliveries, queue=unreachable) as service:
        refused = service.deliver(OPENED, "not-queued")
    job = Recorder()
    with running(dataclasses.replace(settings, queue_immediate=True), job, deliveries=deliveries) as service:
        accepted = service.deliver(OPENED, "not-queued")
    assert refused.status_code == 503
    assert "redeliver this one later" in assert_message_only(refused)
    assert accepted.status_code == 202
    assert [run[0] for run in job.runs] == ["not-queued"]


# -- health and errors ---------------------------------------------------------------------------------------------


def test_healthz_answers_200_while_the_process_is_up(tmp_path: Path) -> None:
    with running(settings_for(tmp_path), Recorder()) as service:
        response = service.client.get(service.url + "/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_answers_200_when_the_queue_and_the_data_folder_are_reachable(tmp_path: Path) -> None:
    with running(settings_for(tmp_path, queue_immediate=False), Recorder(), consumers=1) as service:
        response = service.client.get(service.url + "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "queue": "sqlite", "consumers": 1, "pending": 0}  # nothing queued


def test_readyz_answers_503_when_the_data_folder_is_gone(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, queue_immediate=False)
    with running(settings, Recorder()) as service:
        shutil.rmtree(settings.data_dir)
        response = service.client.get(service.url + "/readyz")
    assert response.status_code == 503
    assert f"the data folder {settings.data_dir} is not a writable folder" in assert_message_only(response)


def test_readyz_answers_503_when_the_data_folder_cannot_be_written_to(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, queue_immediate=False)
    with running(settings, Recorder()) as service:
        # Something that is not a folder stands where the data folder was: no file can be made in it
        # (a permission test would pass for root, whom no mode bit stops).
        shutil.rmtree(settings.data_dir)
        settings.data_dir.write_text("not a folder")
        response = service.client.get(service.url + "/readyz")
    assert response.status_code == 503
    assert f"the data folder {settings.data_dir} is not a writable folder" in assert_message_only(response)


def test_the_readiness_probe_finds_a_folder_that_has_no_room_left_unwritable(tmp_path: Path) -> None:
    # A process that may not grow any file stands for a full disk (no root needed): making an empty file
    # still works there, so only a probe that writes a block tells the two apart.
    probe = ("import resource, sys; from pathlib import Path; from bot.web.app import _writable; "
             "resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)); print(_writable(Path(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True,
                          cwd=PROJECT, check=True, timeout=60)
    assert done.stdout.strip() == "False"


def test_readyz_answers_503_when_mirrors_could_not_be_rebuilt(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, queue_immediate=False)
    with running(settings, Recorder()) as service:
        shutil.rmtree(settings.mirrors, ignore_errors=True)
        settings.mirrors.write_text("not a folder")  # as above: no file can be made in it
        response = service.client.get(service.url + "/readyz")
    assert response.status_code == 503
    assert f"the mirrors folder {settings.mirrors} cannot be written" in assert_message_only(response)


def test_readyz_answers_503_when_the_queue_file_is_gone(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, queue_immediate=False)
    with running(settings, Recorder()) as service:
        settings.queue_db.unlink()
        response = service.client.get(service.url + "/readyz")
    assert response.status_code == 503
    assert assert_message_only(response) == f"not ready: the sqlite queue cannot be read: {settings.queue_db} is gone"


def test_readyz_answers_503_when_the_redis_queue_cannot_be_reached(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, queue_immediate=False)
    deliveries = open_delivery_log(settings)
    unreachable = make_queue(dataclasses.replace(settings, redis_url=Secret("redis://127.0.0.1:9/0")), deliveries,
                             Recorder())
    with running(settings, Recorder(), deliveries=deliveries, queue=unreachable) as service:
        response = service.client.get(service.url + "/readyz")
    assert response.status_code == 503
    assert assert_message_only(response).startswith("not ready: the redis queue cannot be read: ")


class BrokenLog(SqliteDeliveryLog):
    def accept(self, delivery: Delivery, coalesce: str | None = None) -> None:
        raise RuntimeError("the disk is on fire")


def test_an_unexpected_error_is_answered_500_and_logged_with_the_delivery_id(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path)
    caplog.handler.addFilter(DeliveryContextFilter())
    with running(settings, Recorder(), deliveries=BrokenLog(settings.deliveries_db)) as service:
        response = service.deliver(OPENED, "boom-1")
    assert response.status_code == 500
    assert assert_message_only(response) == "internal error; it is logged with the delivery id"
    logged = [r for r in caplog.records if r.exc_info and "the disk is on fire" in str(r.exc_info[1])]
    assert [(r.delivery_id, r.event) for r in logged] == [("boom-1", "pull_request")]  # type: ignore[attr-defined]


@pytest.mark.parametrize("method, path, body, status", [
    ("GET", "/nowhere", b"", 404),
    ("GET", "/webhooks/github", b"", 405),
    ("POST", "/webhooks/github", b"{not json", 400),
    ("POST", "/webhooks/github", b"[1, 2]", 400),
], ids=["unknown path", "wrong method", "broken json", "json that is not an object"])
def test_no_answer_carries_a_traceback(tmp_path: Path, method: str, path: str, body: bytes, status: int) -> None:
    with running(settings_for(tmp_path), Recorder()) as service:
        response = service.client.request(method, service.url + path, content=body,
                                          headers=signed(body, "bad-1", event="push"))
    assert response.status_code == status
    assert_message_only(response)


# -- the queue ---------------------------------------------------------------------------------------------------------


def test_work_for_one_repository_never_runs_concurrently(tmp_path: Path) -> None:
    first_holds, release = threading.Event(), threading.Event()
    steps: list[str] = []

    def job(delivery: Delivery, work: Work) -> None:
        with work.repo_lock(delivery.repository or ""):
            steps.append(f"start {delivery.id}")
            if delivery.id == "first":
                first_holds.set()
                release.wait(10)
            steps.append(f"end {delivery.id}")

    with running(settings_for(tmp_path, queue_immediate=False), job, consumers=2) as service:
        service.deliver(OPENED, "first")
        assert first_holds.wait(10)
        service.deliver(MERGED, "second")
        waiting = service.wait_for("second", "accepted", seconds=5)
        deadline = time.monotonic() + 5
        while waiting.last_error is None and time.monotonic() < deadline:  # until it found the lock taken
            time.sleep(0.05)
            waiting = service.wait_for("second", "accepted", seconds=5)
        release.set()
        done = service.wait_for("second", "done")
    assert steps == ["start first", "end first", "start second", "end second"]
    assert waiting.last_error == f"waiting: repository {REPO} is busy with other work"
    assert done.attempts == 1


def test_the_repository_lock_is_refused_while_held_whatever_the_case_of_the_name(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    queue = make_queue(settings, open_delivery_log(settings), Recorder())
    with queue.repo_lock("Codertocat/Hello-World"), pytest.raises(RepoBusy) as busy, \
            queue.repo_lock("codertocat/hello-world"):
        pass
    assert busy.value.repo == "codertocat/hello-world"
    with queue.repo_lock("codertocat/hello-world"):
        pass


def test_flushing_locks_releases_a_lease_held_by_a_consumer_that_was_killed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, queue_immediate=False)
    killed = make_queue(settings, open_delivery_log(settings), Recorder())
    assert killed.leases.acquire("repo:codertocat/hello-world", 3600) is not None  # held, and never released
    restarted = make_queue(settings, open_delivery_log(settings), Recorder())
    with pytest.raises(RepoBusy):
        restarted.repo_lock(REPO).__enter__()
    assert restarted.flush_locks() == {"repo:codertocat/hello-world"}
    with restarted.repo_lock(REPO):
        pass


def test_the_periodic_task_runs_when_a_consumer_starts(tmp_path: Path) -> None:
    started = threading.Event()

    def reconcile(work: Work) -> None:
        # A scheduled run may come too, first even, when the consumer starts on the schedule's minute.
        if work.trigger == "start":
            started.set()

    with running(settings_for(tmp_path, queue_immediate=False), Recorder(), reconcile, consumers=1):
        assert started.wait(10)


def test_the_periodic_schedule_fires_every_n_minutes_around_the_clock() -> None:
    due = every(7)
    start = datetime(2024, 12, 31, 22, 0)
    fired = [m for m in range(3 * 24 * 60) if due(start + timedelta(minutes=m))]
    assert {later - earlier for earlier, later in itertools.pairwise(fired)} == {7}


# -- logging -----------------------------------------------------------------------------------------------------------


def test_every_log_line_about_a_delivery_carries_its_id_event_and_repository(
        tmp_path: Path, log_output: Callable[[Settings], io.StringIO]) -> None:
    settings = settings_for(tmp_path, log_format="json")
    output = log_output(settings)
    with running(settings, log_delivery) as service:
        service.deliver(OPENED, "logged-1")
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    ours = [line for line in lines if line["logger"].startswith(("bot.", "tests.service_jobs"))
            and "reconcile" not in line["event"]]
    assert any("received pull_request.opened for Codertocat/Hello-World" in line["message"] for line in ours)
    assert len(ours) >= 4
    assert {(line["delivery_id"], line["event"], line["repo"]) for line in ours} == {
        ("logged-1", "pull_request.opened", REPO)}
    access = [line for line in lines if line["logger"] == "uvicorn.access" and "POST" in line["message"]]
    assert [(line["delivery_id"], line["event"]) for line in access] == [("logged-1", "pull_request")]


def test_paved_writes_no_secret_to_the_log_or_an_answer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with running(settings_for(tmp_path), Recorder(failures=1)) as service:
        answers = [service.deliver(OPENED, "quiet-1"), service.deliver(OPENED, "quiet-1"),
                   service.deliver(OPENED, "quiet-2", **{"X-Hub-Signature-256": "sha256=00"}),
                   service.client.get(service.url + "/readyz")]
    seen = caplog.text + repr([r.__dict__ for r in caplog.records]) + "".join(a.text for a in answers)
    assert SECRET not in seen
    assert TOKEN not in seen


def test_a_secret_in_a_job_error_is_masked_in_the_log_and_the_delivery_log(
        tmp_path: Path, log_output: Callable[[Settings], io.StringIO]) -> None:
    def leaky(delivery: Delivery, work: Work) -> None:
        logging.getLogger("a.client").info("calling GitHub with %s", TOKEN)
        raise PermissionError(f"token {TOKEN} was refused")

    settings = settings_for(tmp_path)
    output = log_output(settings)
    with running(settings, leaky) as service:
        service.deliver(OPENED, "leaky-1")
        record = service.deliveries.get("leaky-1")
    assert TOKEN not in output.getvalue()
    assert "calling GitHub with ********" in output.getvalue()
    assert record is not None and record.last_error == "PermissionError: token ******** was refused"


# -- scale-out with Redis --------------------------------------------------------------------------------------------


@pytest.fixture
def redis_queue() -> Iterator[str]:
    """A queue name of this test's own in the test Redis; every key under it is removed afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing(f"Redis is not reachable at {REDIS_URL} ({exc})",
                "Start one with `redis-server --daemonize yes` or set PAVED_TEST_REDIS_URL")
    name = f"paved_test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        for pattern in (f"huey.*.{name}", f"huey.*.{name}.*", f"paved.{name}.*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
        client.close()


def redis_settings(tmp_path: Path, queue_name: str, **changes: Any) -> Settings:
    return settings_for(tmp_path, queue_immediate=False, redis_url=Secret(REDIS_URL), queue_name=queue_name,
                        **changes)


# `paved serve` and `paved worker` as the `paved` command runs them: the service commands on their own parser.
PAVED = [sys.executable, "-c",
         "import argparse, sys; from bot.web.commands import add_commands; "
         "from tests.service_jobs import log_delivery, log_reconcile; "
         "parser = argparse.ArgumentParser(prog='paved'); "
         "add_commands(parser.add_subparsers(), job=log_delivery, periodic=log_reconcile); "
         "args = parser.parse_args(sys.argv[1:]); sys.exit(args.func(args))"]


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM `process`, wait for it to finish its running jobs, and return what it logged."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_paved_serve_answers_on_its_port_runs_the_job_and_stops_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PAVED_WEBHOOK_SECRET": SECRET, "PAVED_GITHUB_TOKEN": TOKEN, "PAVED_PORT": str(port),
           "PAVED_LOG_FORMAT": "json", "PAVED_DATA_DIR": str(tmp_path / "data")}
    url = f"http://127.0.0.1:{port}"
    body = (EXAMPLES / OPENED).read_bytes()
    process = subprocess.Popen([*PAVED, "serve"], env=env, cwd=PROJECT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                health = httpx.get(url + "/healthz")
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "paved serve did not start"
                time.sleep(0.1)
        accepted = httpx.post(url + "/webhooks/github", content=body, headers=signed(body, "served-1"))
        ready = httpx.get(url + "/readyz")
        deadline = time.monotonic() + 10
        # Until the start-up warming has finished (503 meanwhile) and a consumer took the job.
        while (ready.status_code == 503 or ready.json().get("pending")) and time.monotonic() < deadline:
            time.sleep(0.1)
            ready = httpx.get(url + "/readyz")
    finally:
        log = stop(process)
    assert (health.status_code, accepted.status_code, ready.status_code) == (200, 202, 200)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert ("served-1", "pull_request.opened", REPO) in {(line["delivery_id"], line["event"], line["repo"])
                                                         for line in lines if line["logger"] == "tests.service_jobs"}
    assert any(line["message"] == "Application shutdown complete." for line in lines)


def test_a_serve_replica_enqueues_into_redis_and_a_separate_worker_process_runs_the_job(
        tmp_path: Path, redis_queue: str) -> None:
    in_serve = Recorder()
    settings = redis_settings(tmp_path, redis_queue)
    env = {**os.environ, "PAVED_REDIS_URL": REDIS_URL, "PAVED_QUEUE_NAME": redis_queue, "PAVED_LOG_FORMAT": "json",
           "PAVED_GITHUB_TOKEN": TOKEN, "PAVED_DATA_DIR": str(tmp_path / "worker-data")}
    with running(settings, in_serve, consumers=settings.consumer_threads("serve")) as service:
        assert service.deliver(MERGED, "scaled-1").status_code == 202
        worker = subprocess.Popen([*PAVED, "worker"], env=env, cwd=PROJECT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            record = service.wait_for("scaled-1", "done", seconds=20)
            duplicate = service.deliver(MERGED, "scaled-1")
        finally:
            log = stop(worker)
    assert in_serve.runs == []
    assert record.attempts == 1
    assert duplicate.status_code == 200
    assert worker.returncode == 0, log
    ran = [json.loads(line) for line in log.splitlines() if '"tests.service_jobs"' in line]
    assert [(line["delivery_id"], line["event"], line["repo"]) for line in ran if line["delivery_id"] != "-"] == [
        ("scaled-1", "pull_request.closed", REPO)]
    # The worker's data folder and the metrics it keeps there for serve are Paved's user's only.
    worker_data = tmp_path / "worker-data"
    assert {stat.S_IMODE(p.stat().st_mode) for p in (worker_data, worker_data / METRICS_FOLDER)} == {0o700}


def test_a_redelivery_to_another_serve_replica_is_recognised_through_redis(tmp_path: Path, redis_queue: str) -> None:
    settings = redis_settings(tmp_path, redis_queue)
    with running(settings, Recorder()) as replica_a, running(settings, Recorder()) as replica_b:
        first = replica_a.deliver(OPENED, "replicated-1")
        again = replica_b.deliver(OPENED, "replicated-1")
        pending = replica_a.queue.pending()
    assert (first.status_code, again.status_code) == (202, 200)
    assert pending == 1


def test_a_body_replayed_to_another_serve_replica_is_recognised_through_redis(tmp_path: Path, redis_queue: str) -> None:
    settings = redis_settings(tmp_path, redis_queue)
    with running(settings, Recorder()) as replica_a, running(settings, Recorder()) as replica_b:
        first = replica_a.deliver(OPENED, "replay-a")
        replayed = replica_b.deliver(OPENED, "replay-b")
        redelivered = replica_b.deliver(OPENED, "replay-a")
        other = replica_b.deliver(MERGED, "replay-c")
        pending = replica_a.queue.pending()
        record = replica_a.deliveries.get("replay-a")
    assert [r.status_code for r in (first, replayed, redelivered, other)] == [202, 200, 200, 202]
    assert (replayed.json()["replay_of"], replayed.json()["status"]) == ("replay-a", "accepted")
    assert "replay_of" not in redelivered.json()
    assert pending == 2
    assert record is not None and record.body_sha256 == hashlib.sha256((EXAMPLES / OPENED).read_bytes()).hexdigest()


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_both_delivery_logs_know_a_body_by_its_digest_until_its_delivery_failed(
        tmp_path: Path, store: str, request: pytest.FixtureRequest) -> None:
    log: DeliveryLog
    if store == "redis":
        name = request.getfixturevalue("redis_queue")
        log = open_delivery_log(redis_settings(tmp_path, name))
    else:
        log = open_delivery_log(settings_for(tmp_path))
    body = "cd" * 32
    assert log.accept(Delivery("d-1", "push", {}, body_sha256=body)) is None
    assert log.accept(Delivery("d-1", "push", {}, body_sha256=body)) == Duplicate("d-1", "accepted")
    assert log.accept(Delivery("d-2", "push", {}, body_sha256=body)) == Duplicate("d-1", "accepted", replay=True)
    assert log.claim(Delivery("d-1", "push", {})) == 1
    assert log.accept(Delivery("d-2", "push", {}, body_sha256=body)) == Duplicate("d-1", "processing", replay=True)
    log.finish("d-1", "done")
    assert log.accept(Delivery("d-2", "push", {}, body_sha256=body)) == Duplicate("d-1", "done", replay=True)
    assert log.accept(Delivery("d-3", "push", {}, body_sha256="ef" * 32)) is None
    assert log.accept(Delivery("d-4", "push", {})) is None  # no body known: only its id counts
    log.finish("d-3", "failed", "GitHub answered 502")
    assert log.accept(Delivery("d-5", "push", {}, body_sha256="ef" * 32)) is None
    assert log.accept(Delivery("d-3", "push", {}, body_sha256="ef" * 32)) == Duplicate("d-5", "accepted", replay=True)
    record = log.get("d-5")
    assert record is not None and record.body_sha256 == "ef" * 32


# -- coalescing plan triggers ----------------------------------------------------------------------------------


def delivery_log(kind: str, tmp_path: Path, queue_name: str) -> DeliveryLog:
    if kind == "sqlite":
        return SqliteDeliveryLog(tmp_path / "deliveries.sqlite3")
    return RedisDeliveryLog(REDIS_URL, prefix=f"paved.{queue_name}.delivery.")


def plan_trigger(delivery_id: str, head: str) -> Delivery:
    return Delivery(delivery_id, "pull_request", {"action": "synchronize", "repository": {"full_name": REPO},
                                                  "pull_request": {"number": 7, "head": {"sha": head}}},
                    body_sha256=hashlib.sha256(f"{delivery_id}{head}".encode()).hexdigest())


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_plan_trigger_is_absorbed_by_the_plan_job_of_the_same_pull_request_still_waiting(
        kind: str, tmp_path: Path, redis_queue: str) -> None:
    log = delivery_log(kind, tmp_path, redis_queue)
    name = f"plan {REPO}#7"
    assert log.accept(plan_trigger("first", "a" * 40), coalesce=name) is None
    absorbed = log.accept(plan_trigger("second", "b" * 40), coalesce=name)
    assert absorbed is not None and (absorbed.of, absorbed.absorbed) == ("first", True)
    second = log.get("second")
    assert second is not None and (second.status, second.last_error) == ("done", "absorbed by delivery first")

    assert log.claim(plan_trigger("first", "a" * 40)) == 1  # the job started: it absorbs nothing more
    assert log.accept(plan_trigger("third", "c" * 40), coalesce=name) is None
    assert log.accept(plan_trigger("other-pr", "d" * 40), coalesce=f"plan {REPO}#8") is None


def test_a_burst_of_pushes_to_one_pull_request_runs_one_plan_job(tmp_path: Path) -> None:
    job = Recorder()
    settings = settings_for(tmp_path, queue_immediate=False)
    with running(settings, job) as service:  # no consumers: jobs wait in the queue
        bodies = synchronize_bodies(5)
        answers = [service.client.post(service.url + "/webhooks/github", content=body,
                                       headers=signed(body, f"sync-{n}")) for n, body in enumerate(bodies)]
        assert [a.status_code for a in answers] == [202] * 5
        assert [a.json().get("absorbed_by") for a in answers] == [None] + ["sync-0"] * 4
        assert service.queue.pending() == 1


def synchronize_bodies(count: int) -> list[bytes]:
    payload = json.loads((EXAMPLES / OPENED).read_bytes())
    bodies = []
    for n in range(count):
        payload["action"] = "synchronize"
        payload["pull_request"]["head"]["sha"] = f"{n:040x}"
        bodies.append(json.dumps(payload).encode())
    return bodies
