"""Faults on purpose: the forge answers as an unreliable, rate-limited GitHub does, when a test asks it to.

Every answer here still goes through the session's conformance check: the 500s and 502s as GitHub's error
bodies, the secondary rate limit as GitHub's 403; a dropped call has no answer and is left out of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from github import GithubException

from bot.sandbox import Sandbox
from bot.sandbox.commands import main
from bot.sandbox.faults import SECONDARY_DOCS, FaultPlan
from bot.sandbox.recording import Exchange, watch

from .conftest import Cast, github

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def exchanges() -> Iterator[list[Exchange]]:
    seen: list[Exchange] = []
    stop = watch(seen.append)
    yield seen
    stop()


def get(forge: Sandbox, token: str, path: str) -> requests.Response:
    return requests.get(f"{forge.api_url}{path}", headers={"Authorization": f"token {token}"}, timeout=10)


def admin_call(forge: Sandbox, operation: str, **arguments: object) -> dict[str, object]:
    request = urllib.request.Request(f"{forge.url}/_sandbox/call/{operation}", method="POST",
                                     data=json.dumps(arguments).encode(),
                                     headers={"Authorization": f"token {forge.admin_token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: dict[str, object] = json.loads(answer.read())["result"]
    return result


def test_server_errors_come_as_githubs_and_never_touch_the_administration_api(forge: Sandbox, cast: Cast) -> None:
    forge.faults(1.0, ("500", "502"))
    answer = get(forge, cast.alice.token, "/repos/acme/platform")
    assert answer.status_code in (500, 502)
    assert answer.json()["message"] == "Server Error" and "documentation_url" in answer.json()
    assert "X-RateLimit-Remaining" in answer.headers and "X-GitHub-Request-Id" in answer.headers
    with pytest.raises(GithubException) as refused:
        github(forge, cast.bob.token).get_repo("acme/platform")
    assert refused.value.status in (500, 502)
    assert admin_call(forge, "create_user", login="dana")["login"] == "dana"
    forge.no_faults()
    assert get(forge, cast.alice.token, "/repos/acme/platform").status_code == 200


def test_a_secondary_rate_limit_answers_as_github_does(forge: Sandbox, cast: Cast) -> None:
    forge.faults(1.0, ("secondary",), retry_after=7)
    answer = get(forge, cast.alice.token, "/repos/acme/platform")
    assert answer.status_code == 403
    assert answer.headers["Retry-After"] == "7"
    assert answer.json()["message"].startswith("You have exceeded a secondary rate limit. Please wait a few minutes")
    assert answer.headers["X-GitHub-Request-Id"] in answer.json()["message"]
    assert answer.json()["documentation_url"] == SECONDARY_DOCS
    assert int(answer.headers["X-RateLimit-Remaining"]) > 0  # a secondary limit, not the primary one


def test_a_slow_answer_leaves_late_for_a_request_already_done(forge: Sandbox, cast: Cast) -> None:
    forge.faults(1.0, ("slow",), slow_seconds=1.0, only=r"^POST /repos/acme/platform/issues$")
    started = time.monotonic()
    issue = github(forge, cast.alice.token).get_repo("acme/platform").create_issue("Slowly")
    assert time.monotonic() - started >= 1.0
    assert issue.number == 1


def test_a_dropped_call_is_done_and_never_answered(forge: Sandbox, cast: Cast, exchanges: list[Exchange]) -> None:
    forge.faults(1.0, ("drop",), only=r"^POST ")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{forge.api_url}/repos/acme/platform/issues", json={"title": "Dropped"}, timeout=10,
                      headers={"Authorization": f"token {cast.alice.token}"})
    forge.no_faults()
    assert get(forge, cast.alice.token, "/repos/acme/platform/issues/1").json()["title"] == "Dropped"
    assert [(e.method, e.status, e.fault) for e in exchanges if e.method == "POST"] == [("POST", 0, "drop")]


def test_a_push_is_applied_then_its_connection_drops(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    url = forge.authenticated_clone_url("acme", "platform", cast.alice.token)
    subprocess.run(["git", "clone", "-q", url, str(clone)], check=True)
    (clone / "notes.txt").write_text("pushed\n")
    subprocess.run(["git", "-C", str(clone), "add", "notes.txt"], check=True)
    subprocess.run(["git", "-C", str(clone), "commit", "-qm", "Notes"], check=True)
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    faults = forge.faults(1.0, ("drop",), limit=1)
    pushed = subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", "HEAD:main"], capture_output=True,
                            text=True, check=False)
    # git (libcurl) sends the push again on a fresh connection, which the forge refuses: main is no longer
    # where git expects it. So git says the push failed …
    assert pushed.returncode != 0
    assert forge.branch_sha("acme", "platform", "main") == head  # … and it landed
    assert faults.served == {"drop": 1}


def test_faults_are_drawn_from_the_seed(forge: Sandbox, cast: Cast) -> None:
    def statuses(seed: int) -> list[int]:
        forge.faults(0.5, ("500", "502", "secondary"), seed=seed)
        return [get(forge, cast.alice.token, "/repos/acme/platform").status_code for _ in range(24)]

    first = statuses(3)
    assert statuses(3) == first
    assert {200} < set(first) <= {200, 403, 500, 502}
    assert statuses(4) != first


def test_only_and_limit_narrow_the_faults(forge: Sandbox, cast: Cast) -> None:
    faults = forge.faults(1.0, ("502",), only=r"^GET /repos/acme/platform/labels", limit=2)
    assert get(forge, cast.alice.token, "/repos/acme/platform").status_code == 200
    assert [get(forge, cast.alice.token, "/repos/acme/platform/labels").status_code for _ in range(3)] == \
        [502, 502, 200]
    assert faults.served == {"502": 2}


def test_a_plan_of_faults_is_checked_when_made() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultPlan(1.5)
    with pytest.raises(ValueError, match="fault kinds"):
        FaultPlan(0.1, ("404",))  # type: ignore[arg-type]


def test_the_cli_serves_with_faults(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "bot.sandbox", "serve", "--data", str(tmp_path / "forge"),
                                "--faults", "1", "--fault-kinds", "502"], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(PROJECT)}, cwd=PROJECT)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" at ")[1].strip()
        assert requests.get(f"{url}/api/v3/users/sandbox-admin", timeout=10).status_code == 502
        assert [process.stdout.readline().split(":", 1)[0].strip() for _ in range(4)][-1] == "faults"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_cli_refuses_unknown_faults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--data", str(tmp_path / "forge"), "--faults", "0.2", "--fault-kinds", "500,teapot"]) == 1
    assert "teapot" in capsys.readouterr().err
    assert not (tmp_path / "forge").exists()
