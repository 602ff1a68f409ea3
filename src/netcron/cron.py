"""Pure cron math, shared by the api (validation, next fire times) and the workflow.

Expressions are 5-field cron, 6-field cron with a *leading* seconds field, or a macro
(``@hourly``, ``@daily``, ...). Fire times are computed on the wall clock of an IANA
timezone and returned in UTC. Nothing here does I/O or reads the clock, so the
workflow can call it deterministically.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


class InvalidCron(ValueError):
    """The cron expression cannot be used; the message says why."""


class InvalidTimezone(ValueError):
    """The timezone is not an IANA name known here."""


def _fields(expr: str) -> list[str]:
    return expr.split()


def has_seconds(expr: str) -> bool:
    return len(_fields(expr)) == 6


def validate_cron(expr: str) -> str:
    """Return the expression with whitespace normalised, or raise :class:`InvalidCron`."""
    normalised = " ".join(_fields(expr))
    if not normalised:
        raise InvalidCron("cron expression is empty")
    if normalised.startswith("@"):
        if normalised.lower() not in MACROS:
            raise InvalidCron(
                f"unknown macro {normalised!r}; use one of {', '.join(sorted(MACROS))}"
            )
        return normalised.lower()
    count = len(_fields(normalised))
    if count not in (5, 6):
        raise InvalidCron(
            f"expected 5 fields (minute hour day month weekday) or 6 with a leading "
            f"seconds field, got {count}"
        )
    try:
        croniter(normalised, datetime(2000, 1, 1, tzinfo=UTC), second_at_beginning=count == 6)
    except (ValueError, KeyError) as exc:
        raise InvalidCron(f"invalid cron expression {normalised!r}: {exc}") from None
    return normalised


def validate_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        raise InvalidTimezone(f"unknown timezone {name!r}; use an IANA name such as UTC") from None


def _is_second_occurrence(moment: datetime) -> bool:
    """True for the repeated hour after a DST fall-back (the same wall time, later)."""
    first = moment.replace(fold=0).utcoffset()
    second = moment.replace(fold=1).utcoffset()
    return first != second and moment.utcoffset() == second


def iter_fire_times(expr: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Fire times strictly after ``after``, in UTC, in order, forever.

    On a DST fall-back day a job with a fixed hour fires once (at the first of the two
    identical wall times), as Vixie cron does; a job whose hour field is ``*`` fires in
    both hours, since both are real hours.
    """
    expr = validate_cron(expr)
    zone = validate_timezone(timezone)
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    fields = _fields(expr)
    wildcard_hour = not expr.startswith("@") and fields[-4] == "*"
    if expr.startswith("@"):
        wildcard_hour = expr == "@hourly"
    it = croniter(expr, after.astimezone(zone), second_at_beginning=len(fields) == 6)
    while True:
        moment: datetime = it.get_next(datetime)
        if not wildcard_hour and _is_second_occurrence(moment):
            continue
        yield moment.astimezone(UTC)


def next_fire_times(expr: str, timezone: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, in UTC."""
    times = iter_fire_times(expr, timezone, after)
    return [next(times) for _ in range(count)]


def next_fire_time(expr: str, timezone: str, after: datetime) -> datetime:
    return next_fire_times(expr, timezone, after, 1)[0]


def fire_times_between(
    expr: str, timezone: str, after: datetime, until: datetime, limit: int = 10_000
) -> list[datetime]:
    """Fire times in ``(after, until]``, at most ``limit`` of them (the earliest)."""
    result: list[datetime] = []
    for moment in iter_fire_times(expr, timezone, after):
        if moment > until or len(result) >= limit:
            break
        result.append(moment)
    return result
