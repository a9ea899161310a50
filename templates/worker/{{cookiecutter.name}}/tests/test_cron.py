from datetime import UTC, datetime

import pytest

from {{ cookiecutter.__package }} import DEFAULT_SCHEDULE
from {{ cookiecutter.__package }}.cron import CronError, CronSchedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_default_schedule_parses_and_fires() -> None:
    schedule = CronSchedule.parse(DEFAULT_SCHEDULE)

    assert schedule.next_after(at("2025-01-01T00:00:00")) > at("2025-01-01T00:00:00")


def test_every_minute_matches_any_minute() -> None:
    assert CronSchedule.parse("* * * * *").matches(at("2025-03-14T15:09:26"))


def test_step_matches_multiples_only() -> None:
    schedule = CronSchedule.parse("*/5 * * * *")

    assert schedule.matches(at("2025-01-01T10:15:00"))
    assert not schedule.matches(at("2025-01-01T10:16:00"))


def test_lists_and_ranges_combine() -> None:
    schedule = CronSchedule.parse("0,30 9-17 * * *")

    assert schedule.matches(at("2025-01-01T09:30:00"))
    assert schedule.matches(at("2025-01-01T17:00:00"))
    assert not schedule.matches(at("2025-01-01T18:00:00"))
    assert not schedule.matches(at("2025-01-01T09:15:00"))


def test_stepped_range_and_stepped_start() -> None:
    assert CronSchedule.parse("10-20/5 * * * *").minutes == {10, 15, 20}
    assert CronSchedule.parse("50/5 * * * *").minutes == {50, 55}


def test_sunday_is_both_0_and_7() -> None:
    sunday = at("2025-01-05T00:00:00")

    assert CronSchedule.parse("0 0 * * 0").matches(sunday)
    assert CronSchedule.parse("0 0 * * 7").matches(sunday)
    assert not CronSchedule.parse("0 0 * * 1").matches(sunday)


def test_restricted_day_of_month_or_day_of_week_matches_either() -> None:
    schedule = CronSchedule.parse("0 0 13 * 5")  # the 13th, and every Friday

    assert schedule.matches(at("2025-01-13T00:00:00"))  # a Monday
    assert schedule.matches(at("2025-01-10T00:00:00"))  # a Friday
    assert not schedule.matches(at("2025-01-11T00:00:00"))


def test_starred_day_of_month_with_weekday_requires_the_weekday() -> None:
    schedule = CronSchedule.parse("0 0 */2 * 1")

    assert schedule.matches(at("2025-01-13T00:00:00"))  # odd day, Monday
    assert not schedule.matches(at("2025-01-15T00:00:00"))  # odd day, Wednesday


def test_macros_expand_to_their_five_field_form() -> None:
    assert CronSchedule.parse("@hourly").matches(at("2025-01-01T07:00:00"))
    assert not CronSchedule.parse("@daily").matches(at("2025-01-01T07:00:00"))


def test_next_after_is_strictly_later_and_on_the_minute() -> None:
    schedule = CronSchedule.parse("*/5 * * * *")

    assert schedule.next_after(at("2025-01-01T10:15:00")) == at("2025-01-01T10:20:00")
    assert schedule.next_after(at("2025-01-01T10:16:42.5")) == at("2025-01-01T10:20:00")


def test_next_after_crosses_the_year_boundary() -> None:
    schedule = CronSchedule.parse("30 6 1 1 *")

    assert schedule.next_after(at("2025-06-01T00:00:00")) == at("2026-01-01T06:30:00")


def test_next_after_finds_the_next_leap_day() -> None:
    schedule = CronSchedule.parse("0 0 29 2 *")

    assert schedule.next_after(at("2025-03-01T00:00:00")) == at("2028-02-29T00:00:00")


def test_a_schedule_that_never_fires_is_an_error() -> None:
    with pytest.raises(CronError, match="never fires"):
        CronSchedule.parse("0 0 31 2 *").next_after(at("2025-01-01T00:00:00"))


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "a * * * *",
        "1,,2 * * * *",
        "-1 * * * *",
        "@sometimes",
    ],
)
def test_malformed_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(CronError):
        CronSchedule.parse(expression)
