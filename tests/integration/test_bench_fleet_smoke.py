"""`netcron bench --fleet` keeps working: a few dozen devices; no time is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netcron.bench_fleet import FleetOptions, run_fleet_bench

pytestmark = pytest.mark.integration


def test_fleet_bench_reports_every_figure(tmp_path: Path) -> None:
    report = run_fleet_bench(
        FleetOptions(
            devices=30,
            compare=10,
            max_in_flight=10,
            executor_concurrency=16,
            ceiling_s=2,
            api_rps=10,
            api_seconds=3,
            out=tmp_path,
        )
    )
    fleet = report.fleet
    assert fleet.succeeded == fleet.recorded == 30
    assert fleet.missed == fleet.duplicated == fleet.misattributed == 0
    assert fleet.all_recorded_s is not None and fleet.runs_per_s > 0
    assert fleet.last_start_lag_ms is not None
    assert set(fleet.stages_ms["task_to_start"]) == {"p50", "p95", "p99", "max"}
    assert 0 < fleet.history_events_per_fire <= 30
    assert {"api", "worker", "executor", "nats", "temporal", "postgres"} <= set(fleet.processes)
    assert fleet.api_latency_ms["GET /devices"]["requests"] > 0
    assert report.ceiling_runs_per_s > 0
    schedules, job = report.compare
    assert (schedules.kind, job.kind) == ("schedules", "job-compare")
    for side in (schedules, job):
        assert side.succeeded == 10
        assert side.missed == side.duplicated == side.misattributed == 0
        assert side.cpu_ms_per_run > 0 and side.last_start_lag_ms is not None
    [written] = tmp_path.glob("fleet-*.json")
    assert json.loads(written.read_text())["fleet"]["devices"] == 30
