"""`netcron bench --fleet`: the figures of one fire, and how they are printed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FireFigures:
    """One fire over ``devices`` devices, by a job or by per-device schedules."""

    kind: str
    devices: int
    scheduled_at: str = ""
    setup_s: float = 0.0
    recorded: int = 0
    succeeded: int = 0
    missed: int = 0
    duplicated: int = 0
    misattributed: int = 0
    all_recorded_s: float | None = None
    fire_finished_s: float | None = None
    runs_per_s: float = 0.0
    first_start_lag_ms: float | None = None
    last_start_lag_ms: float | None = None
    start_lag_ms: dict[str, float] = field(default_factory=dict)
    #: Mean seconds a command ran, and mean commands running at once between the first
    #: start and the last finish: how full the fire kept its max_in_flight slots.
    run_s: float = 0.0
    mean_in_flight: float = 0.0
    #: Where a run's time goes, per run (ms): task on the broker → command started
    #: (the executor's pickup), command finished → its result on the broker, result on
    #: the broker → run recorded.
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_s: float = 0.0
    cpu_ms_per_run: float = 0.0
    processes: dict[str, dict[str, float]] = field(default_factory=dict)
    idle_rss_mib: dict[str, float] = field(default_factory=dict)
    history_events: int = 0
    history_events_per_fire: float = 0.0
    api_latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class FleetReport:
    options: dict[str, Any]
    fleet: FireFigures
    ceiling_runs_per_s: float = 0.0
    ratio_to_ceiling: float = 0.0
    compare: list[FireFigures] = field(default_factory=list)
    #: 1, 5 and 15 minute load averages before the stack started and at the end.
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)


def summary(f: FireFigures) -> str:
    rss = f.processes.get("executor", {}).get("peak_rss_mib")
    return (
        f"{f.kind} over {f.devices} devices: {f.succeeded}/{f.devices} succeeded, "
        f"all recorded {f.all_recorded_s}s after the scheduled time ({f.runs_per_s} runs/s); "
        f"missed {f.missed}, duplicated {f.duplicated}, misattributed {f.misattributed}; "
        f"start lag first/last {f.first_start_lag_ms}/{f.last_start_lag_ms} ms {f.start_lag_ms}; "
        f"{f.mean_in_flight} running at once on average; "
        f"CPU {f.cpu_s}s ({f.cpu_ms_per_run} ms per run); executor peak RSS {rss} MiB; "
        f"history events {f.history_events} ({f.history_events_per_fire} per fire)"
        + (f"; notes: {'; '.join(f.notes)}" if f.notes else "")
    )


def render(report: FleetReport) -> str:
    """The readable report: one block per fire, then the targets."""
    f = report.fleet
    lines = [
        f"Fleet fire: one job over {f.devices} devices (max_in_flight "
        f"{report.options['max_in_flight']}, delay {report.options['delay_min']}-"
        f"{report.options['delay_max']} s); load average {report.load_before} before, "
        f"{report.load_after} after",
        f"  all runs recorded final      {f.all_recorded_s} s after the scheduled time "
        f"(fire closed at {f.fire_finished_s} s)",
        f"  recorded device-runs/s       {f.runs_per_s} = {report.ratio_to_ceiling}x the "
        f"trivial-workflow ceiling ({report.ceiling_runs_per_s}/s)",
        f"  correctness                  {f.succeeded}/{f.devices} succeeded; missed "
        f"{f.missed}, duplicated {f.duplicated}, misattributed {f.misattributed}",
        f"  start lag ms                 first {f.first_start_lag_ms}, last "
        f"{f.last_start_lag_ms}, {f.start_lag_ms}",
        f"  job workflow history         {f.history_events} events "
        f"({f.history_events_per_fire} per fire)",
        f"  commands                     {f.run_s} s each on average, "
        f"{f.mean_in_flight} running at once on average",
        *(f"  {name.replace('_', ' '):<28} ms {values}" for name, values in f.stages_ms.items()),
        f"  CPU                          {f.cpu_s} s, {f.cpu_ms_per_run} ms per device-run",
    ]
    for name, proc in f.processes.items():
        idle = f.idle_rss_mib.get(name)
        lines.append(
            f"    {name:<10} {proc['cpu_s']:>7} s CPU   RSS {idle} -> {proc['peak_rss_mib']} MiB"
        )
    for name, figures in f.api_latency_ms.items():
        lines.append(
            f"  api {name:<34} p50 {figures['p50']} p95 {figures['p95']} p99 "
            f"{figures['p99']} ms ({figures['requests']:.0f} requests, "
            f"{figures['failures']:.0f} failed)"
        )
    if report.compare:
        lines.append("Side by side, the same devices:")
        for c in report.compare:
            lines.append(
                f"  {c.kind:<12} {c.devices} devices: last device started "
                f"{c.last_start_lag_ms} ms after the scheduled time, all recorded "
                f"{c.all_recorded_s} s; CPU {c.cpu_ms_per_run} ms per device-run; "
                f"{c.succeeded} succeeded, missed {c.missed}, duplicated {c.duplicated}, "
                f"misattributed {c.misattributed}; setup {c.setup_s} s"
                + (f" ({'; '.join(c.notes)})" if c.notes else "")
            )
    return "\n".join(lines)
