"""`netcron bench --fleet N [--compare M]`: one job over N devices, on the embedded stack.

Starts the stack as `netcron bench` does (emulated delay 0.2-1.0 s, the executor's
concurrency raised), writes N devices straight into PostgreSQL, creates a job over them
through the api with a cron that fires once, a few seconds later, and follows that fire
from its scheduled time: when every run is recorded final, recorded device-runs per
second, correctness from ``command_results`` (exactly one run per device, on the right
device, succeeded; the executor's execution log for commands run twice), the api's GET
latency while the fire runs (locust, as `netcron bench`), CPU and peak RSS per process,
and the job workflow's history events. The trivial-workflow ceiling is measured after
the fire, on the same Temporal server.

With ``--compare M`` it then fires M of the same devices twice, one way after the
other: as M per-device schedules (a command and a schedule each, written in bulk, their
workflows started as the api starts them), all on the same cron second; and as one job
over the same M devices. For each: the start lag of the last device and the CPU per
device-run. A measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import psutil
from nats.aio.client import Client as NatsClient
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from netcron.api.orchestrator import TemporalOrchestrator, for_each
from netcron.api.specs import current_specs
from netcron.bench import ProcessSampler, measure_ceiling, percentiles
from netcron.bench_fleet_db import (
    Seeded,
    count_final_of_fire,
    count_final_of_schedules,
    pg_url,
    rows_of_fire,
    rows_of_schedules,
    seed_devices,
    seed_schedules,
)
from netcron.bench_fleet_report import FireFigures, FleetReport, render, summary
from netcron.bench_load import run_api_load
from netcron.codec import data_converter
from netcron.config import Settings
from netcron.db.models import Schedule
from netcron.db.session import create_engine, create_sessionmaker
from netcron.dev import DevStack
from netcron.devstack import free_port
from netcron.executor.drivers.emulated import hostname
from netcron.executor.executions import read_executions
from netcron.jobspec import fire_id_for, job_workflow_id_for
from netcron.runspec import ScheduleInput, workflow_id_for

Check = Callable[[asyncpg.Connection], Awaitable[bool]]
#: Seconds between creating a job and its one fire: the workflow starts and sleeps.
JOB_LEAD = 10.0
#: Schedule workflows started per second, for choosing their fire second: about 130
#: starts a second here, the worker's first workflow tasks (~60/s) behind them; aimed
#: lower, so that all of them are asleep when it comes.
SCHEDULE_STARTS_PER_S = 40.0
#: How long a fire may take before the bench stops waiting for it.
PATIENCE = 600.0
#: Schedule workflows whose history is fetched to count events per run.
HISTORIES_SAMPLED = 50


@dataclass
class FleetOptions:
    devices: int = 10_000
    compare: int = 0
    max_in_flight: int = 1_000
    executor_concurrency: int = 1_000
    delay_min: float = 0.2
    delay_max: float = 1.0
    ceiling_s: float = 10.0
    api_rps: float = 20.0
    api_seconds: float = 10.0
    out: Path = Path("docs/bench")


def once_at(at: datetime) -> str:
    """A 6-field cron (with seconds) that fires at ``at`` and next a year later."""
    return f"{at.second} {at.minute} {at.hour} {at.day} {at.month} *"


def stack_pids(stack: DevStack) -> dict[str, int]:
    """The services, the embedded servers, and PostgreSQL's postmaster (its backends
    are its children)."""
    pids = {name: proc.pid for name, proc in stack.processes.items()}
    for name, server in (("nats", stack.nats), ("temporal", stack.temporal)):
        if server is not None and server._proc is not None:
            pids[name] = server._proc.pid
    pidfile = stack.data_dir / "postgres" / "postmaster.pid"
    if pidfile.exists():
        pids["postgres"] = int(pidfile.read_text().split()[0])
    return pids


class Tap:
    """When each run's task and final result went over the broker (first seen)."""

    def __init__(self) -> None:
        self.tasks: dict[str, float] = {}
        self.results: dict[str, float] = {}

    async def start(self, url: str) -> NatsClient:
        nc = await nats.connect(url)

        async def on_task(msg: Any) -> None:
            self.tasks.setdefault(json.loads(msg.data)["run_id"], time.time())

        async def on_result(msg: Any) -> None:
            body = json.loads(msg.data)
            if body["status"] not in ("running", "queued"):
                self.results.setdefault(body["run_id"], time.time())

        await nc.subscribe("netcron.tasks.>", cb=on_task)
        await nc.subscribe("netcron.fires.>", cb=on_result)
        await nc.subscribe("netcron.results.>", cb=on_result)
        return nc

    def stages(self, rows: list[asyncpg.Record]) -> dict[str, dict[str, float]]:
        picked, published, recorded = [], [], []
        for r in rows:
            task, result = self.tasks.get(r["run_id"]), self.results.get(r["run_id"])
            if task is not None and r["started_at"] is not None:
                picked.append((r["started_at"].timestamp() - task) * 1000)
            if result is not None and r["finished_at"] is not None:
                published.append((result - r["finished_at"].timestamp()) * 1000)
                recorded.append((r["updated_at"].timestamp() - result) * 1000)
        return {
            "task_to_start": percentiles(picked),
            "finish_to_result": percentiles(published),
            "result_to_recorded": percentiles(recorded),
        }


class Bench:
    """The stack, an api client and a database connection, for one benchmark run."""

    def __init__(self, stack: DevStack, options: FleetOptions, api: httpx.AsyncClient) -> None:
        self.stack = stack
        self.options = options
        self.api = api
        self.database_url = stack.env["NETCRON_DATABASE_URL"]
        self.executions = Path(stack.env["NETCRON_EXECUTOR_EXECUTION_LOG"])
        self.tag = uuid.uuid4().hex[:6]
        self.tap = Tap()

    async def temporal(self) -> Client:
        return await Client.connect(
            self.stack.env["NETCRON_TEMPORAL_ADDRESS"],
            data_converter=data_converter(self.stack.env["NETCRON_SECRET_KEY"]),
        )

    async def follow(
        self,
        figures: FireFigures,
        at: datetime,
        done: Check,
        load_paths: dict[str, str] | None = None,
        opened: Check | None = None,
    ) -> None:
        """From just before ``at`` until ``done``: CPU and RSS, and the api's latency
        (the read load starts once ``opened``: a GET of a fire not open yet is a 404)."""
        await _sleep_until(at - timedelta(seconds=2))
        self.tap = Tap()
        tap = await self.tap.start(self.stack.env["NETCRON_NATS_URL"])
        sampler = ProcessSampler(stack_pids(self.stack))
        sampler.sample()
        figures.idle_rss_mib = {k: round(v, 1) for k, v in sampler.peak_rss.items()}
        load: asyncio.Task[dict[str, dict[str, float]]] | None = None
        waiting = bool(load_paths) and self.options.api_rps > 0
        deadline = time.monotonic() + PATIENCE
        conn = await asyncpg.connect(pg_url(self.database_url))
        try:
            while time.monotonic() < deadline:
                sampler.sample()
                if waiting and (opened is None or await opened(conn)):
                    waiting = False
                    load = asyncio.create_task(self._load(load_paths or {}))
                if datetime.now(UTC) > at and await done(conn):
                    break
                await asyncio.sleep(0.1 if waiting else 0.5)
            else:
                figures.notes.append(f"gave up waiting after {PATIENCE:.0f}s")
        finally:
            await conn.close()
            await tap.close()
        figures.processes = sampler.report()
        figures.cpu_s = round(sum(p["cpu_s"] for p in figures.processes.values()), 2)
        if load is not None:
            figures.api_latency_ms = await load

    async def _load(self, paths: dict[str, str]) -> dict[str, dict[str, float]]:
        return await asyncio.to_thread(
            run_api_load,
            self.stack.api_url,
            self.stack.api_key,
            [],
            self.options.api_rps,
            self.options.api_seconds,
            paths,
        )

    def judge(
        self, figures: FireFigures, rows: list[asyncpg.Record], at: datetime, hosts: Seeded
    ) -> None:
        """Correctness and timing from the runs recorded for the fire."""
        expected = set(hosts.hosts)
        per_device = Counter(r["device_id"] for r in rows)
        succeeded = [r for r in rows if r["status"] == "succeeded"]
        figures.recorded = sum(1 for r in rows if r["finished_at"] is not None)
        figures.succeeded = len(succeeded)
        figures.missed = len(expected - {r["device_id"] for r in succeeded})
        runs = {r["run_id"] for r in rows}
        twice = sum(
            1
            for (run_id, _), n in read_executions(self.executions).items()
            if n > 1 and run_id in runs
        )
        figures.duplicated = sum(n - 1 for n in per_device.values()) + twice
        figures.misattributed = sum(
            1
            for r in succeeded
            if r["device_id"] not in expected
            or hostname(hosts.hosts[r["device_id"]]) not in (r["output"] or "")
        )
        starts = [(r["started_at"] - at).total_seconds() * 1000 for r in rows if r["started_at"]]
        figures.start_lag_ms = percentiles(starts)
        if starts:
            figures.first_start_lag_ms = round(min(starts), 1)
            figures.last_start_lag_ms = round(max(starts), 1)
        ran = [r for r in rows if r["started_at"] and r["finished_at"]]
        if ran:
            busy = sum((r["finished_at"] - r["started_at"]).total_seconds() for r in ran)
            span = max(r["finished_at"] for r in ran) - min(r["started_at"] for r in ran)
            figures.run_s = round(busy / len(ran), 3)
            figures.mean_in_flight = round(busy / max(span.total_seconds(), 0.001), 1)
        ends = [r["updated_at"] for r in rows if r["finished_at"] is not None]
        if ends and len(ends) == len(rows) == len(expected):
            figures.all_recorded_s = round((max(ends) - at).total_seconds(), 2)
            figures.runs_per_s = round(figures.recorded / figures.all_recorded_s, 1)
        figures.cpu_ms_per_run = round(figures.cpu_s * 1000 / max(figures.recorded, 1), 2)
        figures.stages_ms = self.tap.stages(rows)

    async def job_fire(
        self, kind: str, selector: dict[str, str], hosts: Seeded, *, load: bool
    ) -> FireFigures:
        """Create a job over ``selector`` firing once, JOB_LEAD seconds on; follow the fire."""
        figures = FireFigures(kind=kind, devices=len(hosts.hosts))
        at = _whole_second(datetime.now(UTC) + timedelta(seconds=JOB_LEAD))
        figures.scheduled_at = at.isoformat()
        response = await self.api.post(
            "/jobs",
            json={
                "name": f"bench-{kind}-{self.tag}",
                "command": "show version",
                "target": {"labels": selector},
                "cron": once_at(at),
                "ttl_seconds": 300,
                "starting_deadline_seconds": 300,
                "concurrency": {"max_in_flight": self.options.max_in_flight},
            },
        )
        response.raise_for_status()
        job_id = uuid.UUID(response.json()["id"])
        fire_id = fire_id_for(job_id, at)
        paths = {
            "GET /devices": "/devices",
            "GET /jobs/{id}/fires/{fire_id}": f"/jobs/{job_id}/fires/{fire_id}",
        }

        async def done(conn: asyncpg.Connection) -> bool:
            return await count_final_of_fire(conn, fire_id) >= len(hosts.hosts)

        async def opened(conn: asyncpg.Connection) -> bool:
            return bool(await conn.fetchval("SELECT 1 FROM job_fires WHERE id = $1", fire_id))

        await self.follow(figures, at, done, paths if load else None, opened)
        conn = await asyncpg.connect(pg_url(self.database_url))
        try:
            rows = await rows_of_fire(conn, fire_id)
            fire = await _finished_fire(conn, fire_id)
        finally:
            await conn.close()
        self.judge(figures, rows, at, hosts)
        if fire is not None and fire["finished_at"] is not None:
            figures.fire_finished_s = round((fire["finished_at"] - at).total_seconds(), 2)
        client = await self.temporal()
        handle = client.get_workflow_handle(job_workflow_id_for(job_id))
        events = [event async for event in handle.fetch_history_events()]
        fires = sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED for e in events)
        figures.history_events = len(events)
        figures.history_events_per_fire = round(len(events) / max(fires, 1), 1)
        await self.api.post(f"/jobs/{job_id}/pause")
        return figures

    async def schedules_fire(self, hosts: Seeded) -> FireFigures:
        """One schedule per device, all on one cron second; their workflows started in
        bulk, as the api starts them."""
        count = len(hosts.hosts)
        figures = FireFigures(kind="schedules", devices=count)
        lead = count / SCHEDULE_STARTS_PER_S + 10
        at = _whole_second(datetime.now(UTC) + timedelta(seconds=lead))
        figures.scheduled_at = at.isoformat()
        began = time.monotonic()
        seeded_at = datetime.now(UTC)
        ids = await seed_schedules(self.database_url, list(hosts.hosts), once_at(at), ttl=600)
        client = await self.temporal()
        logging.getLogger("netcron.api.orchestrator").setLevel(logging.WARNING)  # a line each
        orchestrator = TemporalOrchestrator(client, self.stack.settings.temporal_task_queue)
        engine = create_engine(self.database_url)
        async with create_sessionmaker(engine)() as session:
            specs = await current_specs(session, Schedule.id.in_(ids))
        await engine.dispose()

        async def start(spec: Any) -> None:
            # From when the rows were written: a workflow whose first task runs after the
            # fire second fires it late instead of waiting a year (the api's start has no
            # last_fire_at; with 3,000 first tasks queued, some ran past the second).
            await orchestrator.start(ScheduleInput(spec=spec, last_fire_at=seeded_at))

        await for_each(specs, start)
        figures.setup_s = round(time.monotonic() - began, 1)
        await _first_tasks_done(client, self.stack.settings, deadline=at + timedelta(minutes=5))
        asleep = (datetime.now(UTC) - at).total_seconds()
        figures.notes.append(
            f"every schedule workflow was asleep {-asleep:.0f} s before the fire"
            if asleep < 0
            else f"schedule workflows were still starting {asleep:.0f} s after the fire"
        )

        async def done(conn: asyncpg.Connection) -> bool:
            return await count_final_of_schedules(conn, ids, at) >= count

        await self.follow(figures, at, done)
        conn = await asyncpg.connect(pg_url(self.database_url))
        try:
            rows = await rows_of_schedules(conn, ids, at)
        finally:
            await conn.close()
        self.judge(figures, rows, at, hosts)
        events = 0
        for schedule_id in ids[:HISTORIES_SAMPLED]:
            handle = client.get_workflow_handle(workflow_id_for(schedule_id))
            events += len([e async for e in handle.fetch_history_events()])
        figures.history_events = round(events * count / min(count, HISTORIES_SAMPLED))
        figures.history_events_per_fire = round(events / min(count, HISTORIES_SAMPLED), 1)
        return figures


async def _first_tasks_done(client: Client, settings: Settings, deadline: datetime) -> None:
    """Until the worker has taken every queued workflow task (twice seen empty)."""
    empty = 0
    while empty < 2 and datetime.now(UTC) < deadline:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                report_stats=True,
            )
        )
        empty = empty + 1 if response.stats.approximate_backlog_count == 0 else 0
        await asyncio.sleep(0.5)


async def _finished_fire(conn: asyncpg.Connection, fire_id: uuid.UUID) -> asyncpg.Record | None:
    """The fire's row, once closed (the dispatcher closes it just after the last record)."""
    for _ in range(40):
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT started_at, finished_at FROM job_fires WHERE id = $1", fire_id
        )
        if row is not None and row["finished_at"] is not None:
            return row
        await asyncio.sleep(0.25)
    return None


def _whole_second(at: datetime) -> datetime:
    return at.replace(microsecond=0) + timedelta(seconds=1)


async def _sleep_until(at: datetime) -> None:
    left = (at - datetime.now(UTC)).total_seconds()
    if left > 0:
        await asyncio.sleep(left)


async def _run(stack: DevStack, options: FleetOptions) -> FleetReport:
    headers = {"X-API-Key": stack.api_key}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        bench = Bench(stack, options, api)
        compare = min(options.compare, options.devices)
        began = time.monotonic()
        hosts = await seed_devices(bench.database_url, options.devices, bench.tag, compare)
        seeded_s = time.monotonic() - began
        print(f"seeded {options.devices} devices in {seeded_s:.1f} s", flush=True)
        fleet = await bench.job_fire("job", {"fleet": bench.tag}, hosts, load=True)
        fleet.setup_s = round(seeded_s, 1)
        print(summary(fleet), flush=True)
        logging.getLogger("temporalio.worker").setLevel(logging.WARNING)
        ceiling = await measure_ceiling(stack.env["NETCRON_TEMPORAL_ADDRESS"], options.ceiling_s)
        report = FleetReport(
            options={k: str(v) for k, v in asdict(options).items()},
            fleet=fleet,
            ceiling_runs_per_s=round(ceiling, 1),
            ratio_to_ceiling=round(fleet.runs_per_s / max(ceiling, 0.01), 1),
        )
        print(f"ceiling: {report.ceiling_runs_per_s} trivial workflows/s", flush=True)
        if compare:
            subset = Seeded({d: hosts.hosts[d] for d in hosts.first(compare)})
            schedules = await bench.schedules_fire(subset)
            print(summary(schedules), flush=True)
            job = await bench.job_fire("job-compare", {"cmp": bench.tag}, subset, load=False)
            print(summary(job), flush=True)
            report.compare = [schedules, job]
    return report


def run_fleet_bench(options: FleetOptions) -> FleetReport:
    """Start the stack, run the fleet fire (and the side-by-side), write JSON."""
    data_dir = Path(tempfile.mkdtemp(prefix="netcron-bench-fleet-"))
    stack = DevStack(
        settings=Settings(_env_file=None),
        data_dir=data_dir,
        api_port=free_port(None),
        with_ui=False,
        log_dir=data_dir / "logs",
        service_env={
            "NETCRON_EMULATED_DELAY_MIN": str(options.delay_min),
            "NETCRON_EMULATED_DELAY_MAX": str(options.delay_max),
            "NETCRON_EXECUTOR_CONCURRENCY": str(options.executor_concurrency),
            "NETCRON_EXECUTOR_EXECUTION_LOG": str(data_dir / "executions.log"),
            "NETCRON_LOG_LEVEL": "WARNING",
            "NETCRON_RECONCILE_INTERVAL": "0",
        },
    )
    before = [round(x, 2) for x in psutil.getloadavg()]
    try:
        stack.start()
        report = asyncio.run(_run(stack, options))
        report.load_before = before
        report.load_after = [round(x, 2) for x in psutil.getloadavg()]
    finally:
        stack.stop()
    print(render(report), flush=True)
    options.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = options.out / f"fleet-{stamp}.json"
    payload = {
        "taken_at": stamp,
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        **asdict(report),
    }
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}; the stack's logs are in {data_dir / 'logs'}", flush=True)
    return report
