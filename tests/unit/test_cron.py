"""Cron math: the three syntaxes, validation messages, timezones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from netcron.cron import (
    InvalidCron,
    InvalidTimezone,
    fire_times_between,
    next_fire_time,
    next_fire_times,
    validate_cron,
    validate_timezone,
)

T0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


def test_five_field_cron_fires_on_the_minute() -> None:
    assert next_fire_times("*/15 * * * *", "UTC", T0, 3) == [
        datetime(2026, 1, 1, 0, 15, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 45, tzinfo=UTC),
    ]


def test_six_fields_have_a_leading_seconds_field() -> None:
    assert next_fire_times("*/10 * * * * *", "UTC", T0, 2) == [
        datetime(2026, 1, 1, 0, 0, 40, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 50, tzinfo=UTC),
    ]
    assert next_fire_time("5 0 12 * * *", "UTC", T0) == datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@hourly", datetime(2026, 1, 1, 1, tzinfo=UTC)),
        ("@daily", datetime(2026, 1, 2, tzinfo=UTC)),
        ("@MIDNIGHT", datetime(2026, 1, 2, tzinfo=UTC)),
        ("@monthly", datetime(2026, 2, 1, tzinfo=UTC)),
    ],
)
def test_macros(macro: str, expected: datetime) -> None:
    assert next_fire_time(macro, "UTC", T0) == expected


def test_fire_times_are_strictly_after_the_start() -> None:
    exactly = datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
    assert next_fire_time("*/15 * * * *", "UTC", exactly) == exactly + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty"),
        ("* * *", "expected 5 fields"),
        ("* * * * * * *", "got 7"),
        ("61 * * * *", "invalid cron expression"),
        ("* * 32 * *", "invalid cron expression"),
        ("@reboot", "unknown macro"),
        ("a b c d e", "invalid cron expression"),
    ],
)
def test_invalid_expressions_say_why(expr: str, message: str) -> None:
    with pytest.raises(InvalidCron, match=message):
        validate_cron(expr)


def test_whitespace_is_normalised() -> None:
    assert validate_cron("  */5   *  * * * ") == "*/5 * * * *"


def test_unknown_timezone_is_rejected() -> None:
    with pytest.raises(InvalidTimezone, match="Mars/Olympus"):
        validate_timezone("Mars/Olympus")
    with pytest.raises(InvalidTimezone):
        validate_timezone("../etc/passwd")


def test_cron_runs_on_the_timezone_wall_clock() -> None:
    fire = next_fire_time("0 9 * * *", "America/New_York", T0)
    assert fire == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)


def test_dst_spring_forward_fires_once_at_the_first_real_time() -> None:
    """Europe/Berlin skips 02:00-03:00 on 2026-03-29: the 02:30 job runs at 03:00 CEST."""
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    fires = fire_times_between("30 2 * * *", "Europe/Berlin", start, start + timedelta(days=2))
    assert fires == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 03:00 CEST, the first wall time after the gap
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
    ]


def test_dst_fall_back_fires_a_fixed_hour_job_once() -> None:
    """Europe/Berlin repeats 02:00-03:00 on 2026-10-25: the 02:30 job runs only the first time."""
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    fires = fire_times_between("30 2 * * *", "Europe/Berlin", start, start + timedelta(days=2))
    assert fires == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST (first pass)
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET the next day
    ]


def test_dst_fall_back_fires_a_wildcard_hour_job_in_both_hours() -> None:
    start = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    fires = fire_times_between("*/30 * * * *", "Europe/Berlin", start, start + timedelta(hours=2))
    assert fires == [start + timedelta(minutes=30 * i) for i in range(1, 5)]


def test_fire_times_between_is_bounded() -> None:
    end = T0 + timedelta(hours=1)
    assert len(fire_times_between("* * * * * *", "UTC", T0, end, limit=100)) == 100
    assert fire_times_between("0 0 1 1 *", "UTC", T0, end) == []


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_time("* * * * *", "UTC", datetime(2026, 1, 1))
