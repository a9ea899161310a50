"""Start the worker: `python -m <package> [--once] [--schedule EXPR]`."""

from __future__ import annotations

import argparse
import logging
import os
from datetime import UTC, datetime

from {{ cookiecutter.__package }} import DEFAULT_SCHEDULE, SERVICE_NAME
from {{ cookiecutter.__package }}.cron import CronError, CronSchedule
from {{ cookiecutter.__package }}.job import run_once
from {{ cookiecutter.__package }}.runner import Runner

logger = logging.getLogger(SERVICE_NAME)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SERVICE_NAME, description="Run the job on its schedule.")
    parser.add_argument(
        "--schedule",
        default=os.environ.get("SCHEDULE", DEFAULT_SCHEDULE),
        help="cron expression in UTC (default: $SCHEDULE, else %(default)r)",
    )
    parser.add_argument("--once", action="store_true", help="run the job once now and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    if args.once:
        try:
            run_once()
        except Exception:
            logger.exception("job failed")
            return 1
        return 0

    try:
        schedule = CronSchedule.parse(args.schedule)
        schedule.next_after(datetime.now(UTC))
    except CronError as error:
        parser.error(f"--schedule: {error}")
    runner = Runner(schedule, run_once)
    runner.install_signal_handlers()
    runner.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
