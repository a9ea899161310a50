"""A small cron-expression matcher, evaluated in UTC.

Five fields, as in crontab(5): minute (0-59), hour (0-23), day of month (1-31), month (1-12) and
day of week (0-7, where 0 and 7 are Sunday). Each field is `*`, a number, a range `a-b`, a step
`*/n`, `a-b/n` or `a/n` (from a to the field's maximum), or a comma-separated list of those. The
macros @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly are accepted too.
Month and weekday names are not.

As in Vixie cron, when both the day of month and the day of week are restricted (neither starts
with `*`), a day matches if either matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# (name, lowest, highest) for each of the five fields, in order.
FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)

# Long enough to reach the next 29 February from any date, even across a skipped leap year.
SEARCH_LIMIT = timedelta(days=366 * 9)


class CronError(ValueError):
    """The expression is not a cron expression this module understands, or never fires."""


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday; a 7 in the expression is stored as 0
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        text = MACROS.get(expression.strip().lower(), expression)
        parts = text.split()
        if len(parts) != len(FIELDS):
            raise CronError(
                f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
            )
        minutes, hours, days, months, weekdays = (
            _parse_field(part, name, low, high) for part, (name, low, high) in zip(parts, FIELDS, strict=True)
        )
        return cls(
            expression=expression,
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=frozenset(day % 7 for day in weekdays),
            days_restricted=not parts[2].startswith("*"),
            weekdays_restricted=not parts[4].startswith("*"),
        )

    def matches(self, moment: datetime) -> bool:
        """True when the schedule fires in the minute that contains `moment`."""
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and self._day_matches(moment)
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first minute strictly after `moment` in which the schedule fires."""
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = candidate + SEARCH_LIMIT
        while candidate < limit:
            if candidate.month not in self.months:
                candidate = _first_of_next_month(candidate)
            elif not self._day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
            else:
                return candidate
        raise CronError(f"{self.expression!r} never fires")

    def _day_matches(self, moment: datetime) -> bool:
        day = moment.day in self.days
        weekday = (moment.weekday() + 1) % 7 in self.weekdays  # datetime counts from Monday = 0
        if self.days_restricted and self.weekdays_restricted:
            return day or weekday
        return day and weekday


def _first_of_next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return moment.replace(year=moment.year + 1, month=1, day=1, hour=0, minute=0)
    return moment.replace(month=moment.month + 1, day=1, hour=0, minute=0)


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = _number(step_text, name) if slash else 1
        if step < 1:
            raise CronError(f"{name}: step must be at least 1 in {item!r}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, name), _number(last, name)
        else:
            start = _number(base, name)
            end = high if slash else start
        if not low <= start <= end <= high:
            raise CronError(f"{name}: {item!r} is outside {low}-{high} or runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise CronError(f"{name}: {text!r} is not a number")
    return int(text)
