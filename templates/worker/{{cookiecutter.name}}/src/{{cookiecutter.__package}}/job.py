"""The work the worker does on every tick of its schedule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from {{ cookiecutter.__package }} import SERVICE_NAME

logger = logging.getLogger(__name__)


def run_once(now: datetime | None = None) -> dict[str, str]:
    """Do one run of the job and return a summary of it.

    This is the function to fill in. The runner calls it once per schedule tick, and the
    `--once` option calls it once and exits. It must be safe to run again after a failure:
    an exception is logged and the next tick runs as usual.
    """
    ran_at = (now or datetime.now(UTC)).isoformat()
    logger.info("%s: job ran at %s", SERVICE_NAME, ran_at)
    return {"service": SERVICE_NAME, "ran_at": ran_at}
