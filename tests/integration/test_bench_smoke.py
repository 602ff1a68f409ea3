"""`netcron bench` keeps working: a small load for a few seconds; no time is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netcron.bench import ApiLoad, run_bench

pytestmark = pytest.mark.integration


def test_bench_reports_every_figure(tmp_path: Path) -> None:
    [report] = run_bench(
        devices=1,
        schedules=2,
        duration=3,
        delay=0,
        ramp=[],
        out=tmp_path,
        ceiling_s=2,
        api_load=ApiLoad(rps=20, seconds=3),
    )
    assert report.recorded_runs > 0
    assert report.recorded_runs + report.missed == report.expected_runs
    assert report.misattributed == 0
    assert set(report.fire_lag_ms) == {"p50", "p95", "p99", "max"}
    assert set(report.start_lag_ms) == {"p50", "p95", "p99", "max"}
    devices = report.api_latency_ms["GET /devices"]
    results = report.api_latency_ms["GET /devices/{id}/results"]
    assert devices["requests"] > 0 and results["requests"] > 0
    assert devices["failures"] == 0 and results["failures"] == 0
    assert report.history_events_per_run > 0
    assert report.nats_messages_per_run > 0
    assert report.ceiling_runs_per_s > 0
    assert {"api", "worker", "executor", "nats", "temporal"} <= set(report.processes)
    [written] = tmp_path.glob("bench-*.json")
    assert json.loads(written.read_text())["steps"][0]["schedules"] == 2
    assert list(tmp_path.glob("bench-*.png"))
