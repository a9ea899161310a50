"""`GET /metrics`: what Paved counts while it works, read as Prometheus reads it.

The counts after a real delivery come from the whole loop: the sandbox forge delivers a signed webhook
to the service over HTTP, the queue's consumers run Paved's real plan job, which talks to the forge
through PyGithub. Metrics are process-wide, so every test compares a scrape after with one before.
The scale-out test runs `paved worker` as a process of its own, on the real Redis, and reads the job's
metrics through `paved serve`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from github import Auth, Github
from prometheus_client.parser import text_string_to_metric_families

from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.jobs import handle_delivery
from tests.conftest import PROJECT
from tests.test_service import (
    EXAMPLES,
    MERGED,
    OPENED,
    PAVED,
    REDIS_URL,
    TOKEN,
    Recorder,
    Service,
    redis_queue,  # noqa: F401 (a fixture)
    redis_settings,
    running,
    settings_for,
    signed,
    stop,
)

SECRET = "a-webhook-secret-for-the-metrics-tests"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(service: Service) -> Samples:
    """Every sample `/metrics` answers, by name and labels."""
    response = service.client.get(service.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# -- a pull request planned through the service --------------------------------------------------------------


@dataclass
class Planned:
    """A pull request opened on the forge and planned by the service, with scrapes before and after."""

    forge: Sandbox
    before: Samples
    after: Samples
    head_sha: str
    reader: str  # a token of a forge user who can read the platform repo


@pytest.fixture
def planned(tmp_path: Path) -> Iterator[Planned]:
    seed = tmp_path / "seed"
    for name in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / name, seed / name)
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        forge.create_user("carol")
        forge.create_org("acme", owners=["alice"], members=["carol"])
        forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "carol", "write")
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read"})
        forge.install_app(app.id, "acme")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data")}), github_api_url=forge.api_url,
            github_app_id=str(app.id), github_private_key=Secret(app.private_key), webhook_secret=Secret(SECRET),
            reconcile_minutes=0)
        with running(settings, handle_delivery, consumers=2) as service:
            forge.set_app_webhook(app.id, service.url + "/webhooks/github", SECRET)
            before = scrape(service)
            path = "catalog/teams/growth.yaml"
            text = forge.read_file("acme", "platform", path).decode().replace("monthly: 80", "monthly: 90")
            forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
            pr = forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
            forge.wait_for_deliveries()
            service.wait_for(forge.deliveries("pull_request", "opened")[-1].guid, "done", seconds=30)
            yield Planned(forge, before, scrape(service), pr.head_sha, alice.token)


def test_a_signed_delivery_is_counted_as_received_by_event_and_outcome(planned: Planned) -> None:
    assert grew(planned.before, planned.after, "paved_webhooks_received_total",
                event="pull_request", outcome="accepted") == 1


def test_the_job_of_a_delivery_is_timed_by_its_kind(planned: Planned) -> None:
    kind = {"kind": "pull_request.opened"}
    assert grew(planned.before, planned.after, "paved_job_duration_seconds_count", **kind) == 1
    assert grew(planned.before, planned.after, "paved_job_duration_seconds_sum", **kind) > 0
    assert grew(planned.before, planned.after, "paved_jobs_total", outcome="done", **kind) == 1


def test_the_plan_a_job_published_is_counted_by_its_check_conclusion(planned: Planned) -> None:
    client = Github(base_url=planned.forge.api_url, auth=Auth.Token(planned.reader))
    runs = client.get_repo("acme/platform").get_commit(planned.head_sha).get_check_runs(check_name="paved/plan")
    # A team's budget is the team's to approve: the plan waits for growth, its check still in progress.
    assert (runs[0].status, runs[0].conclusion) == ("in_progress", None)
    assert grew(planned.before, planned.after, "paved_plans_total", outcome="waiting") == 1


def test_the_github_api_calls_of_a_job_are_counted_by_status(planned: Planned) -> None:
    assert grew(planned.before, planned.after, "paved_github_api_calls_total", status="200") > 0
    # The check run and the plan comment are created.
    assert grew(planned.before, planned.after, "paved_github_api_calls_total", status="201") >= 2


def test_the_remaining_rate_limit_is_what_github_last_reported(planned: Planned) -> None:
    api = urllib.parse.urlsplit(planned.forge.api_url).netloc
    remaining = value(planned.after, "paved_github_rate_limit_remaining", api=api)
    # The last calls were the installation's, whose budget is 5,000 an hour on the sandbox as on GitHub (outside
    # Enterprise Cloud).
    assert 4_000 < remaining < 5_000


# -- webhooks refused, and the queue ------------------------------------------------------------------------------


def test_a_delivery_refused_for_its_signature_is_counted_as_unauthorized(tmp_path: Path) -> None:
    with running(settings_for(tmp_path), Recorder()) as service:
        before = scrape(service)
        body = (EXAMPLES / OPENED).read_bytes()
        headers = {**signed(body, "forged-1"), "X-Hub-Signature-256": "sha256=" + "0" * 64}
        assert service.client.post(service.url + "/webhooks/github", content=body, headers=headers).status_code == 401
        after = scrape(service)
    assert grew(before, after, "paved_webhooks_received_total", event="pull_request", outcome="unauthorized") == 1


def test_an_event_name_paved_does_not_subscribe_to_is_counted_as_other(tmp_path: Path) -> None:
    with running(settings_for(tmp_path), Recorder()) as service:
        before = scrape(service)
        body = (EXAMPLES / OPENED).read_bytes()
        headers = signed(body, "made-up-1", event="made_up_by_a_stranger")
        assert service.client.post(service.url + "/webhooks/github", content=body, headers=headers).status_code == 202
        after = scrape(service)
    assert grew(before, after, "paved_webhooks_received_total", event="other", outcome="accepted") == 1
    assert not any(dict(labels).get("event") == "made_up_by_a_stranger" for _, labels in after)


def test_a_redelivery_is_counted_as_a_duplicate(tmp_path: Path) -> None:
    with running(settings_for(tmp_path), Recorder()) as service:
        service.deliver(OPENED, "twice-1")
        before = scrape(service)
        assert service.deliver(OPENED, "twice-1").status_code == 200
        after = scrape(service)
    assert grew(before, after, "paved_webhooks_received_total", event="pull_request", outcome="duplicate") == 1


def test_the_queue_depth_is_the_number_of_jobs_waiting(tmp_path: Path) -> None:
    with running(settings_for(tmp_path, queue_immediate=False), Recorder(), consumers=0) as service:
        service.deliver(OPENED, "waiting-1")
        service.deliver(MERGED, "waiting-2")
        samples = scrape(service)
    assert value(samples, "paved_queue_depth") == 2


def test_a_failed_job_is_counted_as_failed(tmp_path: Path) -> None:
    with running(settings_for(tmp_path), Recorder(failures=1)) as service:
        before = scrape(service)
        service.deliver(OPENED, "failing-1")
        after = scrape(service)
    assert grew(before, after, "paved_jobs_total", kind="pull_request.opened", outcome="failed") == 1


# -- several processes -------------------------------------------------------------------------------------------------


def test_the_jobs_of_a_separate_worker_process_show_in_the_metrics_of_serve(
        tmp_path: Path, redis_queue: str) -> None:  # noqa: F811 (the fixture imported above)
    settings = redis_settings(tmp_path, redis_queue)
    env = {**os.environ, "PAVED_REDIS_URL": REDIS_URL, "PAVED_QUEUE_NAME": redis_queue, "PAVED_LOG_FORMAT": "json",
           "PAVED_GITHUB_TOKEN": TOKEN, "PAVED_DATA_DIR": str(settings.data_dir)}
    in_serve = Recorder()
    with running(settings, in_serve, consumers=0) as service:
        before = scrape(service)
        assert service.deliver(MERGED, "worked-1").status_code == 202
        worker = subprocess.Popen([*PAVED, "worker"], env=env, cwd=PROJECT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            service.wait_for("worked-1", "done", seconds=20)
            deadline = time.monotonic() + 5
            after = scrape(service)
            while not grew(before, after, "paved_job_duration_seconds_count", kind="pull_request.closed"):
                assert time.monotonic() < deadline, "the worker's job never showed in /metrics"
                time.sleep(0.1)
                after = scrape(service)
        finally:
            log = stop(worker)
    assert worker.returncode == 0, log
    assert in_serve.runs == []  # the job ran in the worker, not here
    assert grew(before, after, "paved_jobs_total", kind="pull_request.closed", outcome="done") == 1
    assert grew(before, after, "paved_webhooks_received_total", event="pull_request", outcome="accepted") == 1
