"""What one fault cost: fires lost, rows doubled, commands run twice, time to recover.

Pure functions over the fault's window, the fires its crons expected, the rows in the
database and the executors' execution log, so that every figure can be tested without
a stack. A fire is one (schedule, scheduled second); its run id is
``<schedule_id>:<unix seconds>``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from netcron.cron import fire_times_between
from netcron.runs import FINAL_STATUSES

#: Every fault, in the order the suite runs them: kill -9 a service, restart a server,
#: freeze the executor.
FAULTS = ("api", "worker", "executor", "nats", "postgres", "temporal", "freeze")
#: A run recorded later than this after its scheduled second is not flowing yet.
FLOW_LATENCY = 2.0

Fire = tuple[str, int]


@dataclass(frozen=True)
class Window:
    """One fault: when its window opened, when the fault hit, when the process was back."""

    fault: str
    action: str
    start: int
    injected_at: float
    back_at: float
    end: int

    @property
    def down_s(self) -> float:
        return round(self.back_at - self.injected_at, 1)


@dataclass(frozen=True)
class Row:
    """A recorded run, as much of it as the report needs."""

    schedule_id: str
    second: int
    status: str
    latency_s: float
    error: str | None = None


@dataclass
class FaultReport:
    """The figures of one fault's window."""

    fault: str
    action: str
    window_s: int
    down_s: float
    expected: int = 0
    recorded: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    run_twice: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    #: Seconds from the process being back until every fire succeeds and is recorded
    #: within FLOW_LATENCY; None when that did not happen before the window closed.
    recovery_s: float | None = 0.0
    #: Services that exited by themselves during the window (and were started again).
    crashed: list[str] = field(default_factory=list)
    #: Per second of the window, from its start: fires that succeeded on time.
    flowing: list[int] = field(default_factory=list)

    @property
    def met_targets(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.run_twice == 0
            and self.recovery_s is not None
            and self.recovery_s <= 10
        )


def expected_fires(schedules: dict[str, str], start: int, end: int) -> set[Fire]:
    """Every (schedule, second) in ``[start, end)`` that the schedules' crons (UTC) fire."""
    after = datetime.fromtimestamp(start, UTC) - timedelta(microseconds=1)
    until = datetime.fromtimestamp(end, UTC) - timedelta(microseconds=1)
    return {
        (schedule_id, int(moment.timestamp()))
        for schedule_id, cron in schedules.items()
        for moment in fire_times_between(cron, "UTC", after, until)
    }


def repeated_executions(
    executions: Counter[tuple[str, int]], schedules: set[str], start: int, end: int
) -> int:
    """(run id, attempt) pairs of the window's fires that an executor started more than once."""
    repeated = 0
    for (run_id, _attempt), count in executions.items():
        schedule_id, _, second = run_id.partition(":")
        if count > 1 and schedule_id in schedules and second.isdigit():
            repeated += start <= int(second) < end
    return repeated


def analyse(
    window: Window,
    expected: set[Fire],
    rows: list[Row],
    executions: Counter[tuple[str, int]],
    crashed: list[str] | None = None,
) -> FaultReport:
    report = FaultReport(
        fault=window.fault,
        action=window.action,
        window_s=window.end - window.start,
        down_s=window.down_s,
        crashed=list(crashed or []),
    )
    rows = [row for row in rows if window.start <= row.second < window.end]
    report.expected = len(expected)
    report.recorded = len(rows)
    per_fire: dict[Fire, list[Row]] = {}
    for row in rows:
        per_fire.setdefault((row.schedule_id, row.second), []).append(row)
    report.duplicated = sum(len(found) - 1 for found in per_fire.values())
    report.unexpected = sum(1 for fire in per_fire if fire not in expected)
    final = {fire for fire, found in per_fire.items() if any(_is_final(r) for r in found)}
    report.lost = len(expected - final)
    report.statuses = dict(Counter(row.status for row in rows))
    report.reasons = dict(Counter(row.error or "" for row in rows if row.status != "succeeded"))
    schedules = {schedule_id for schedule_id, _ in expected}
    report.run_twice = repeated_executions(executions, schedules, window.start, window.end)
    report.recovery_s = recovery(window, expected, per_fire)
    on_time = Counter(fire[1] for fire in expected if _flowing(per_fire.get(fire, [])))
    report.flowing = [on_time[second] for second in range(window.start, window.end)]
    return report


def recovery(window: Window, expected: set[Fire], per_fire: dict[Fire, list[Row]]) -> float | None:
    """Seconds after the process was back until runs flow: every later fire succeeded on time.

    A fire is flowing when it has one row, ``succeeded``, recorded within FLOW_LATENCY of
    its second. Fires that went wrong before the process was back count for nothing.
    """
    bad = [fire[1] for fire in expected if not _flowing(per_fire.get(fire, []))]
    if not bad:
        return 0.0
    flowing_from = max(bad) + 1
    if flowing_from >= window.end:
        return None
    return round(max(flowing_from - window.back_at, 0.0), 1)


def _flowing(found: list[Row]) -> bool:
    return len(found) == 1 and found[0].status == "succeeded" and found[0].latency_s <= FLOW_LATENCY


def _is_final(row: Row) -> bool:
    return row.status in {status.value for status in FINAL_STATUSES}


COLUMNS = (
    "fault",
    "what happened",
    "down s",
    "expected",
    "recorded",
    "lost",
    "duplicated",
    "run twice",
    "skipped / timed out / failed",
    "recovery s",
)


def table_row(report: FaultReport) -> list[str]:
    statuses = report.statuses
    recovery_text = (
        f"{report.recovery_s:g}"
        if report.recovery_s is not None
        else f"> {report.window_s - 1} (not in the window)"
    )
    action = report.action + (f"; crashed: {', '.join(report.crashed)}" if report.crashed else "")
    return [
        report.fault,
        action,
        f"{report.down_s:g}",
        str(report.expected),
        str(report.recorded),
        str(report.lost),
        str(report.duplicated),
        str(report.run_twice),
        " / ".join(str(statuses.get(s, 0)) for s in ("skipped", "timed_out", "failed")),
        recovery_text,
    ]


def markdown_table(reports: list[FaultReport]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(table_row(report)) + " |" for report in reports]
    return "\n".join(lines)
