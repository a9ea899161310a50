"""Log lines of `paved serve` and `paved worker`: each says which delivery, repository, pull request and
job it is about, as one JSON object per line in JSON mode.

The service runs as in `tests/test_service.py`, with logging configured as `paved serve` configures it,
and its job running on a consumer thread of the embedded queue.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.deliveries import pull_request_of
from bot.settings import Settings
from bot.webhook import Delivery
from tests.service_jobs import log_delivery
from tests.test_service import EXAMPLES, OPENED, REPO, running, settings_for

OURS = ("bot.", "tests.service_jobs")


def delivered(tmp_path: Path, log_output: Callable[[Settings], io.StringIO], example: str, delivery_id: str,
              log_format: str = "json") -> str:
    """What the service logged while accepting `example` and running its job on a consumer thread."""
    settings = settings_for(tmp_path, log_format=log_format, queue_immediate=False, reconcile_minutes=0)
    output = log_output(settings)
    with running(settings, log_delivery, consumers=1) as service:
        assert service.deliver(example, delivery_id).status_code == 202
        service.wait_for(delivery_id, "done")
    return output.getvalue()


def lines_of(output: str, delivery_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    return [line for line in lines if line["logger"].startswith(OURS) and line["delivery_id"] == delivery_id]


def test_every_json_line_of_a_job_carries_its_delivery_repository_pull_request_and_job(
        tmp_path: Path, log_output: Callable[[Settings], io.StringIO]) -> None:
    output = delivered(tmp_path, log_output, OPENED, "json-1")
    job_lines = [line for line in lines_of(output, "json-1") if line["logger"] != "bot.web.app"]
    assert [line["message"] for line in job_lines] == [
        "job started (attempt 1)", "received pull_request.opened for Codertocat/Hello-World",
        next(line["message"] for line in job_lines if line["message"].startswith("job done in "))]
    assert {(line["event"], line["repo"], line["pr"]) for line in job_lines} == {("pull_request.opened", REPO, 2)}
    jobs = {line["job"] for line in job_lines}
    assert len(jobs) == 1 and jobs != {"-"}


def test_the_job_the_web_app_queued_is_the_job_whose_lines_follow(
        tmp_path: Path, log_output: Callable[[Settings], io.StringIO]) -> None:
    lines = lines_of(delivered(tmp_path, log_output, OPENED, "queued-1"), "queued-1")
    queued = [line["job"] for line in lines if line["message"] == "accepted and queued"]
    started = [line["job"] for line in lines if line["message"] == "job started (attempt 1)"]
    assert queued == started and queued[0] != "-"


def test_a_delivery_about_no_pull_request_logs_pr_as_a_dash(
        tmp_path: Path, log_output: Callable[[Settings], io.StringIO]) -> None:
    lines = lines_of(delivered(tmp_path, log_output, "push.1.json", "push-1"), "push-1")
    assert lines and {line["pr"] for line in lines} == {"-"}


def test_text_lines_carry_the_pull_request_and_the_job_too(
        tmp_path: Path, log_output: Callable[[Settings], io.StringIO]) -> None:
    output = delivered(tmp_path, log_output, OPENED, "text-1", log_format="text")
    received = [line for line in output.splitlines() if "received pull_request.opened" in line]
    assert len(received) == 1
    assert f"[text-1 pull_request.opened {REPO} pr=2 job=" in received[0]
    assert "job=-]" not in received[0]


def example(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return payload


def check_run_for(*numbers: int) -> dict[str, Any]:
    payload = copy.deepcopy(example("check_run.rerequested.1.json"))
    payload["check_run"]["pull_requests"] = [{"number": n} for n in numbers]
    return payload


@pytest.mark.parametrize("event, payload, number", [
    ("pull_request", example(OPENED), 2),
    ("pull_request_review", example("pull_request_review.submitted.1.json"), 2),
    ("issue_comment", example("derived/issue_comment.created.on_pr.1.json"), 1),
    ("issue_comment", example("issue_comment.created.1.json"), None),
    ("check_run", check_run_for(7), 7),
    ("check_run", check_run_for(7, 8), None),
    ("push", example("push.1.json"), None),
], ids=["pull request", "review", "comment on a pull request", "comment on an issue", "check run of one pull request",
        "check run of two", "push"])
def test_the_pull_request_a_delivery_is_about(event: str, payload: dict[str, Any], number: int | None) -> None:
    assert pull_request_of(Delivery("d-1", event, payload)) == number
