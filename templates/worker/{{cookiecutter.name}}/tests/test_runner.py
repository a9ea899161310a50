import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from {{ cookiecutter.__package }}.cron import CronSchedule
from {{ cookiecutter.__package }}.runner import Runner

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.__package }}"


class FakeTime:
    """A clock that only moves when the runner sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept = 0.0
        self.on_sleep: Callable[[], None] | None = None

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += timedelta(seconds=seconds)
        if self.on_sleep:
            self.on_sleep()


def make_runner(expression: str, job: Callable[[], object], time: FakeTime) -> Runner:
    return Runner(CronSchedule.parse(expression), job, clock=time.clock, sleep=time.sleep)


def test_runs_the_job_each_time_the_schedule_fires() -> None:
    time = FakeTime(datetime(2025, 1, 1, 10, 2, 30, tzinfo=UTC))
    ran_at: list[datetime] = []
    runner = make_runner("*/5 * * * *", lambda: ran_at.append(time.now), time)

    assert runner.run(max_runs=3) == 3
    assert ran_at == [datetime(2025, 1, 1, 10, minute, tzinfo=UTC) for minute in (5, 10, 15)]


def test_a_failing_run_is_logged_and_the_next_still_happens(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeTime(datetime(2025, 1, 1, 10, 0, tzinfo=UTC))
    outcomes = iter([RuntimeError("boom"), None])

    def job() -> None:
        outcome = next(outcomes)
        if outcome:
            raise outcome

    assert make_runner("* * * * *", job, time).run(max_runs=2) == 2
    assert "failed" in caplog.text


def test_runs_missed_while_the_job_was_busy_are_skipped() -> None:
    time = FakeTime(datetime(2025, 1, 1, 10, 0, 30, tzinfo=UTC))
    ran_at: list[datetime] = []

    def slow_job() -> None:
        ran_at.append(time.now)
        time.now += timedelta(minutes=3, seconds=30)

    make_runner("* * * * *", slow_job, time).run(max_runs=2)

    assert ran_at == [
        datetime(2025, 1, 1, 10, 1, tzinfo=UTC),
        datetime(2025, 1, 1, 10, 5, tzinfo=UTC),
    ]


def test_stopping_during_a_run_lets_it_finish_then_returns() -> None:
    time = FakeTime(datetime(2025, 1, 1, 10, 0, tzinfo=UTC))
    finished: list[bool] = []
    runner: Runner

    def job() -> None:
        runner.stop()  # as a SIGTERM arriving mid-run would
        finished.append(True)

    runner = make_runner("* * * * *", job, time)

    assert runner.run() == 1
    assert finished == [True]


def test_stopping_while_waiting_returns_without_running() -> None:
    time = FakeTime(datetime(2025, 1, 1, 10, 0, tzinfo=UTC))
    runs: list[None] = []
    runner = make_runner("0 0 1 1 *", lambda: runs.append(None), time)
    time.on_sleep = runner.stop  # as a SIGTERM arriving while the runner sleeps would

    assert runner.run() == 0
    assert runs == []
    assert time.slept <= 1


def test_sigterm_handler_asks_the_runner_to_stop() -> None:
    runner = Runner(CronSchedule.parse("* * * * *"), lambda: None)
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        runner.install_signal_handlers()
        signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])

    assert runner.stopping


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_worker_process_exits_cleanly_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", PACKAGE, "--schedule", "0 0 1 1 *"],
        cwd=PROJECT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        ready, _, _ = select.select([process.stderr], [], [], 30)
        assert ready, "the worker logged nothing within 30 seconds"
        assert "started" in process.stderr.readline()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "stopped after 0 run(s)" in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_once_runs_the_job_and_exits() -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "--once"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert "job ran" in result.stderr


def test_an_invalid_schedule_is_refused_at_start() -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "--schedule", "every five minutes"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "--schedule" in result.stderr
