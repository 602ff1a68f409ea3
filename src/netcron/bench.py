"""`netcron bench`: how many runs, how punctual, at what cost, on the embedded stack.

Starts the whole stack (as `netcron dev` does), creates D devices with S schedules each
firing every second, lets them run, and reports fire lag (task published minus
scheduled time), end-to-end latency (run recorded minus scheduled time), throughput,
correctness (missed, duplicated, misattributed runs), cost per run (Temporal history
events, NATS messages), CPU and peak RSS per process, and the ceiling: the rate of a
trivial one-activity workflow on the same Temporal server. It is a measurement, not a
test: nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import psutil
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from netcron.bench_load import run_api_load
from netcron.codec import data_converter
from netcron.config import Settings
from netcron.dev import DevStack
from netcron.devstack import free_port
from netcron.executor.drivers.emulated import hostname
from netcron.messages import RESULTS_STREAM, TASKS_STREAM


@dataclass
class StepReport:
    schedules: int
    duration_s: float
    expected_runs: int = 0
    recorded_runs: int = 0
    missed: int = 0
    skipped: int = 0
    timed_out: int = 0
    duplicated: int = 0
    misattributed: int = 0
    runs_per_s: float = 0.0
    fire_lag_ms: dict[str, float] = field(default_factory=dict)
    start_lag_ms: dict[str, float] = field(default_factory=dict)
    end_to_end_ms: dict[str, float] = field(default_factory=dict)
    api_latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    history_events_per_run: float = 0.0
    nats_messages_per_run: float = 0.0
    ceiling_runs_per_s: float = 0.0
    ratio_to_ceiling: float = 0.0
    processes: dict[str, dict[str, float]] = field(default_factory=dict)
    fire_lag_series: list[tuple[float, float]] = field(default_factory=list)
    end_to_end_samples: list[float] = field(default_factory=list)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 1)}


class ProcessSampler:
    """CPU seconds and peak RSS of the stack's processes, sampled in the background."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.start_cpu = {name: self._cpu(p) for name, p in self.procs.items()}
        self.peak_rss = dict.fromkeys(self.procs, 0.0)

    @staticmethod
    def _tree(proc: psutil.Process) -> list[psutil.Process]:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return []

    def _cpu(self, proc: psutil.Process) -> float:
        total = 0.0
        for p in self._tree(proc):
            try:
                times = p.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def sample(self) -> None:
        for name, proc in self.procs.items():
            rss = 0.0
            for p in self._tree(proc):
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            self.peak_rss[name] = max(self.peak_rss[name], rss / 2**20)

    def report(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "cpu_s": round(self._cpu(proc) - self.start_cpu[name], 2),
                "peak_rss_mib": round(self.peak_rss[name], 1),
            }
            for name, proc in self.procs.items()
        }


@activity.defn(name="bench_noop")
async def bench_noop() -> None:
    return None


@workflow.defn(name="BenchTrivial", sandboxed=False)
class BenchTrivial:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity("bench_noop", start_to_close_timeout=timedelta(seconds=10))


async def measure_ceiling(address: str, seconds: float, concurrency: int = 32) -> float:
    """Completed trivial one-activity workflows per second on the same server."""
    client = await Client.connect(address)
    queue = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    done = 0
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await client.execute_workflow(
                BenchTrivial.run, id=f"bench-{uuid.uuid4()}", task_queue=queue
            )
            done += 1

    async with Worker(client, task_queue=queue, workflows=[BenchTrivial], activities=[bench_noop]):
        started = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return done / (time.monotonic() - started)


@dataclass
class ApiLoad:
    """Read load on the api while the scheduler runs: requests per second, for how long."""

    rps: float = 200.0
    seconds: float = 15.0


async def run_step(
    stack: DevStack,
    devices: int,
    per_device: int,
    duration: float,
    ceiling_s: float,
    api_load: ApiLoad | None = None,
) -> StepReport:
    report = StepReport(schedules=devices * per_device, duration_s=duration)
    seen: dict[str, list[float]] = {}
    tap = await nats.connect(stack.env["NETCRON_NATS_URL"])

    async def on_task(msg: Any) -> None:
        run_id = json.loads(msg.data)["run_id"]
        seen.setdefault(run_id, []).append(time.time())

    await tap.subscribe("netcron.tasks.>", cb=on_task)
    js = tap.jetstream()
    before = sum([(await js.stream_info(s)).state.last_seq for s in (TASKS_STREAM, RESULTS_STREAM)])
    headers = {"X-API-Key": stack.api_key}
    hosts: dict[str, str] = {}
    device_ids: list[str] = []
    workflow_ids: list[str] = []
    paths: list[str] = []
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as api:
        tag = uuid.uuid4().hex[:6]
        for d in range(devices):
            host = f"10.{d // 250}.{d % 250}.{len(hosts) % 250 + 1}"
            device = (
                (
                    await api.post(
                        "/devices",
                        json={"name": f"bench-{tag}-{d}", "host": host, "platform": "cisco_ios"},
                    )
                )
                .raise_for_status()
                .json()
            )
            device_ids.append(device["id"])
            command = (
                (
                    await api.post(
                        f"/devices/{device['id']}/commands",
                        json={"name": "v", "text": "show version"},
                    )
                )
                .raise_for_status()
                .json()
            )
            for _ in range(per_device):
                schedule = (
                    (
                        await api.post(
                            f"/devices/{device['id']}/commands/{command['id']}/schedules",
                            json={"cron": "* * * * * *", "ttl_seconds": 30},
                        )
                    )
                    .raise_for_status()
                    .json()
                )
                hosts[schedule["id"]] = host
                workflow_ids.append(schedule["workflow_id"])
                paths.append(
                    f"/devices/{device['id']}/commands/{command['id']}/schedules/{schedule['id']}"
                )
        pids = {name: proc.pid for name, proc in stack.processes.items()}
        for name, server in (("nats", stack.nats), ("temporal", stack.temporal)):
            if server is not None and server._proc is not None:
                pids[name] = server._proc.pid
        sampler = ProcessSampler(pids)
        window_start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        window_end = window_start + timedelta(seconds=duration)
        while datetime.now(UTC) < window_end + timedelta(seconds=3):
            sampler.sample()
            await asyncio.sleep(0.5)
        report.processes = sampler.report()
        if api_load is not None and api_load.rps > 0:
            report.api_latency_ms = await asyncio.to_thread(
                run_api_load,
                stack.api_url,
                stack.api_key,
                device_ids,
                api_load.rps,
                api_load.seconds,
            )
        for path in paths:
            await api.patch(path, json={"is_active": False})
    report.expected_runs = len(hosts) * int(duration)
    rows = await _final_rows(stack, list(hosts), window_start, window_end, report.expected_runs)
    fired = {r["run_id"]: r for r in rows if r["status"] in RAN}
    report.recorded_runs = len(fired)
    report.skipped = sum(1 for r in rows if r["status"] == "skipped")
    report.timed_out = sum(1 for r in rows if r["status"] == "timed_out")
    report.duplicated = (
        len(rows)
        - len({r["run_id"] for r in rows})
        + sum(1 for run_id, times in seen.items() if len(times) > 1 and run_id in fired)
    )
    # A fire that did not run (no row, skipped, timed out) is a missed run.
    report.missed = max(report.expected_runs - len(fired), 0)
    report.misattributed = sum(
        1
        for r in rows
        if r["status"] == "succeeded" and hostname(hosts[str(r["schedule_id"])]) not in _output(r)
    )
    report.runs_per_s = round(len(fired) / duration, 2)
    lags = []
    for run_id, times in seen.items():
        if run_id in fired:
            scheduled = fired[run_id]["scheduled_at"].timestamp()
            lags.append((times[0] - scheduled) * 1000)
            report.fire_lag_series.append(
                (round(scheduled - window_start.timestamp(), 3), round(lags[-1], 1))
            )
    report.fire_lag_ms = percentiles(lags)
    report.start_lag_ms = percentiles(
        [
            (r["started_at"] - r["scheduled_at"]).total_seconds() * 1000
            for r in rows
            if r["started_at"] is not None
        ]
    )
    e2e = [
        (r["updated_at"] - r["scheduled_at"]).total_seconds() * 1000
        for r in rows
        if r["status"] in ("succeeded", "failed")
    ]
    report.end_to_end_ms = percentiles(e2e)
    report.end_to_end_samples = [round(v, 1) for v in e2e]
    after = sum([(await js.stream_info(s)).state.last_seq for s in (TASKS_STREAM, RESULTS_STREAM)])
    await tap.close()
    total_runs = await _count_all(stack, list(hosts))
    report.nats_messages_per_run = round((after - before) / max(total_runs, 1), 2)
    report.history_events_per_run = await _events_per_run(stack, workflow_ids, total_runs)
    report.ceiling_runs_per_s = round(
        await measure_ceiling(stack.env["NETCRON_TEMPORAL_ADDRESS"], ceiling_s), 2
    )
    report.ratio_to_ceiling = round(report.runs_per_s / max(report.ceiling_runs_per_s, 0.01), 2)
    return report


#: Statuses of a run that ran: the command was carried out and its result recorded.
RAN = ("succeeded", "failed")
FINAL = (*RAN, "skipped", "timed_out", "canceled")


async def _final_rows(
    stack: DevStack,
    schedule_ids: list[str],
    start: datetime,
    end: datetime,
    expected: int,
    patience: float = 60.0,
) -> list[asyncpg.Record]:
    """The window's rows once every expected run has a final status (or patience ran out)."""
    deadline = time.monotonic() + patience
    while True:
        rows = await _rows(stack, schedule_ids, start, end)
        final = sum(1 for r in rows if r["status"] in FINAL)
        if final >= expected or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(1)


def _pg_url(stack: DevStack) -> str:
    return stack.env["NETCRON_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")


async def _rows(
    stack: DevStack, schedule_ids: list[str], start: datetime, end: datetime
) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_pg_url(stack))
    try:
        return list(
            await conn.fetch(
                "SELECT run_id, schedule_id, status, o.data AS output_data, scheduled_at,"
                " started_at, updated_at"
                " FROM command_results LEFT JOIN outputs o ON o.hash = output_hash"
                " WHERE schedule_id = ANY($1::uuid[])"
                " AND scheduled_at >= $2 AND scheduled_at < $3",
                schedule_ids,
                start,
                end,
            )
        )
    finally:
        await conn.close()


def _output(row: asyncpg.Record) -> str:
    """The run's stored output (its blob: for these untracked runs, the whole text)."""
    data = row["output_data"]
    return zlib.decompress(data).decode() if data is not None else ""


async def _count_all(stack: DevStack, schedule_ids: list[str]) -> int:
    conn = await asyncpg.connect(_pg_url(stack))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM command_results WHERE schedule_id = ANY($1::uuid[])"
            " AND status <> 'skipped'",
            schedule_ids,
        )
        return count
    finally:
        await conn.close()


async def _events_per_run(stack: DevStack, workflow_ids: list[str], runs: int) -> float:
    client = await Client.connect(
        stack.env["NETCRON_TEMPORAL_ADDRESS"],
        data_converter=data_converter(stack.env["NETCRON_SECRET_KEY"]),
    )
    events = 0
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        events += len(history.events)
    return round(events / max(runs, 1), 2)


def plot(reports: list[StepReport], path: Path) -> bool:
    """Fire lag over time and the end-to-end distribution, per step (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (lag_axis, e2e_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for report in reports:
        label = f"{report.schedules} schedules"
        series = sorted(report.fire_lag_series)
        lag_axis.plot([t for t, _ in series], [v for _, v in series], ".", ms=2, label=label)
        e2e_axis.hist(report.end_to_end_samples, bins=50, histtype="step", label=label)
    lag_axis.set(title="fire lag", xlabel="seconds into the window", ylabel="ms")
    e2e_axis.set(title="end-to-end latency", xlabel="ms", ylabel="runs")
    lag_axis.legend()
    e2e_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def summary(report: StepReport) -> str:
    cpu = ", ".join(
        f"{k} {v['cpu_s']}s/{v['peak_rss_mib']}MiB" for k, v in report.processes.items()
    )
    return (
        f"{report.schedules} schedules x {report.duration_s:.0f}s: "
        f"{report.recorded_runs}/{report.expected_runs} runs ({report.runs_per_s}/s, "
        f"{report.ratio_to_ceiling}x the {report.ceiling_runs_per_s}/s ceiling); "
        f"missed {report.missed} (skipped {report.skipped}, timed out {report.timed_out}), "
        f"duplicated {report.duplicated}, "
        f"misattributed {report.misattributed}; fire lag {report.fire_lag_ms}; "
        f"start lag {report.start_lag_ms}; end-to-end {report.end_to_end_ms}; "
        f"{report.history_events_per_run} history events "
        f"and {report.nats_messages_per_run} NATS messages per run; CPU/peak RSS: {cpu}"
        + "".join(f"; api {name} {figures}" for name, figures in report.api_latency_ms.items())
    )


def run_bench(
    *,
    devices: int,
    schedules: int,
    duration: float,
    delay: float,
    ramp: list[int],
    out: Path,
    ceiling_s: float = 10.0,
    api_load: ApiLoad | None = None,
) -> list[StepReport]:
    """Start the stack, run each step (a total schedule count), write JSON and PNG."""
    data_dir = Path(tempfile.mkdtemp(prefix="netcron-bench-"))
    stack = DevStack(
        settings=Settings(_env_file=None),
        data_dir=data_dir,
        api_port=free_port(None),
        with_ui=False,
        log_dir=data_dir / "logs",
        service_env={
            "NETCRON_EMULATED_DELAY_MIN": str(delay),
            "NETCRON_EMULATED_DELAY_MAX": str(delay),
            "NETCRON_LOG_LEVEL": "WARNING",
            "NETCRON_RECONCILE_INTERVAL": "0",
        },
    )
    steps = ramp or [devices * schedules]
    reports: list[StepReport] = []
    try:
        stack.start()
        for total in steps:
            per_device = max(1, total // devices) if ramp else schedules
            count = max(1, total // per_device) if ramp else devices
            report = asyncio.run(run_step(stack, count, per_device, duration, ceiling_s, api_load))
            reports.append(report)
            print(summary(report), flush=True)
    finally:
        stack.stop()
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "taken_at": stamp,
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "steps": [
            {
                k: v
                for k, v in asdict(r).items()
                if k not in ("fire_lag_series", "end_to_end_samples")
            }
            for r in reports
        ],
    }
    (out / f"bench-{stamp}.json").write_text(json.dumps(payload, indent=2))
    if plot(reports, out / f"bench-{stamp}.png"):
        print(f"wrote {out}/bench-{stamp}.json and .png")
    else:
        print(f"wrote {out}/bench-{stamp}.json (install matplotlib for the plot)")
    return reports
