"""Run a job on a cron schedule until asked to stop.

Stopping is graceful: SIGTERM or SIGINT lets a run in progress finish, then the loop returns. The
signal handler only sets a flag, and the loop sleeps in short slices so that it notices the flag
within `poll_interval` seconds.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from {{ cookiecutter.__package }}.cron import CronSchedule

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Runner:
    def __init__(
        self,
        schedule: CronSchedule,
        job: Callable[[], Any],
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.5,
    ) -> None:
        self.schedule = schedule
        self.job = job
        self._clock = clock
        self._sleep = sleep
        self._poll_interval = poll_interval
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Ask the loop to return once a run in progress has finished. Safe in a signal handler."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        """Stop gracefully on SIGTERM (sent by container runtimes and Kubernetes) and SIGINT."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop()

    def run(self, max_runs: int | None = None) -> int:
        """Run the job at each time the schedule fires; return how many runs started.

        Runs missed while the job was still busy are skipped, not caught up.
        """
        logger.info("started; schedule %r", self.schedule.expression)
        runs = 0
        after = self._clock()
        while not self._stopping and (max_runs is None or runs < max_runs):
            due = self.schedule.next_after(after)
            if not self._wait_until(due):
                break
            self._run_job(due)
            runs += 1
            after = max(due, self._clock())
        logger.info("stopped after %d run(s)", runs)
        return runs

    def _wait_until(self, due: datetime) -> bool:
        """Sleep until `due`; False if asked to stop first."""
        while not self._stopping:
            remaining = (due - self._clock()).total_seconds()
            if remaining <= 0:
                return True
            self._sleep(min(remaining, self._poll_interval))
        return False

    def _run_job(self, due: datetime) -> None:
        try:
            self.job()
        except Exception:
            logger.exception("run due at %s failed", due.isoformat())
