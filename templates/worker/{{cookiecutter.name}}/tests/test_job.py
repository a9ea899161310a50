import logging
from datetime import UTC, datetime

import pytest

from {{ cookiecutter.__package }} import SERVICE_NAME
from {{ cookiecutter.__package }}.job import run_once


def test_run_once_reports_when_it_ran() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    assert run_once(now) == {"service": SERVICE_NAME, "ran_at": "2025-01-01T12:00:00+00:00"}


def test_run_once_logs_each_run(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        run_once()

    assert "job ran" in caplog.text
