"""Check the schedule with the cron parser the rendered worker itself uses.

Runs in the rendered project's directory; a non-zero exit makes cookiecutter remove the project.
"""

import sys
from datetime import UTC, datetime

sys.dont_write_bytecode = True
sys.path.insert(0, "src")

from {{ cookiecutter.__package }}.cron import CronError, CronSchedule  # noqa: E402

SCHEDULE = {{ cookiecutter.schedule | tojson }}

try:
    CronSchedule.parse(SCHEDULE).next_after(datetime.now(UTC))
except CronError as error:
    print(f"worker: schedule {SCHEDULE!r}: {error}", file=sys.stderr)
    sys.exit(1)
