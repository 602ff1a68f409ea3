"""`netcron bench --reconcile N`: how long a reconciliation pass takes over N schedules.

Starts embedded PostgreSQL and the Temporal dev server, writes N paused schedules
straight into the database, starts their workflows (a worker in this process runs
them), and then times three passes: one with nothing to repair, one after 1 % of the
schedules each lost their workflow, fell a spec version behind, or lost their row
(an orphaned workflow), and a clean one again. For each pass it reports the seconds,
the repairs by kind and the Temporal calls by kind: a measurement, not a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, update
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from netcron.api.orchestrator import RunningWorkflow, TemporalOrchestrator, for_each
from netcron.api.reconcile import ORPHAN_GRACE, reconcile
from netcron.api.specs import current_specs
from netcron.codec import data_converter
from netcron.crypto import generate_key
from netcron.db.migrate import upgrade
from netcron.db.models import Command, Device, Schedule
from netcron.db.session import create_engine, create_sessionmaker
from netcron.devstack import EmbeddedPostgres, EmbeddedTemporal
from netcron.messages import TaskMessage
from netcron.runspec import RecordRequest, ScheduleInput, workflow_id_for
from netcron.workflows.schedule import ScheduleWorkflow

TASK_QUEUE = "netcron-bench-reconcile"
PAGE = 1000


class CountingOrchestrator(TemporalOrchestrator):
    """Counts the Temporal calls a pass makes, by kind (a listing page counts once)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        super().__init__(client, task_queue)
        self.calls: Counter[str] = Counter()

    async def inventory(self) -> dict[uuid.UUID, RunningWorkflow]:
        found = await super().inventory()
        self.calls["list_page"] += max(1, math.ceil(len(found) / PAGE))
        return found

    async def is_running(self, schedule_id: uuid.UUID) -> bool:
        self.calls["describe"] += 1
        return await super().is_running(schedule_id)

    async def start(self, schedule: ScheduleInput) -> str:
        self.calls["start"] += 1
        return await super().start(schedule)

    async def update(self, spec: Any) -> int | None:
        self.calls["update"] += 1
        return await super().update(spec)

    async def stop(self, schedule_id: uuid.UUID) -> None:
        self.calls["stop"] += 1
        await super().stop(schedule_id)


@dataclass
class PassReport:
    name: str
    schedules: int
    seconds: float
    suspects: int
    started: int
    updated: int
    stopped: int
    temporal_calls: dict[str, int] = field(default_factory=dict)


async def _publish_nothing(task: TaskMessage) -> bool:
    return True


async def _record_nothing(request: RecordRequest) -> None:
    return None


def _stub_activities() -> list[Any]:
    from temporalio import activity

    return [
        activity.defn(name="publish_task")(_publish_nothing),
        activity.defn(name="record_run")(_record_nothing),
    ]


async def _serve_worker(address: str, key: str, count: int, stop: Any) -> None:
    client = await Client.connect(address, data_converter=data_converter(key))
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[ScheduleWorkflow],
        activities=_stub_activities(),
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=count + 100,
    )
    async with worker:
        await asyncio.to_thread(stop.wait)


def _worker_main(address: str, key: str, count: int, stop: Any) -> None:
    asyncio.run(_serve_worker(address, key, count, stop))


@contextlib.contextmanager
def _worker_process(address: str, key: str, count: int) -> Iterator[None]:
    """The schedule workflows' worker in a process of its own, as in a deployment: the
    pass is timed in the api's shoes, not beside 10,000 cached workflows."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    process = context.Process(target=_worker_main, args=(address, key, count, stop))
    process.start()
    try:
        yield
    finally:
        stop.set()
        process.join(30)
        if process.is_alive():
            process.kill()


async def _seed(database_url: str, count: int) -> list[uuid.UUID]:
    """``count`` paused schedules over count/100 devices, written in bulk."""
    engine = create_engine(database_url)
    devices = max(1, count // 100)
    now = datetime.now(UTC)
    device_rows = [
        {
            "id": uuid.uuid4(),
            "name": f"bench-{index:05d}",
            "host": "192.0.2.1",
            "port": 22,
            "platform": "cisco_ios",
            "labels": {},
            "created_at": now,
            "updated_at": now,
        }
        for index in range(devices)
    ]
    command_rows = [
        {
            "id": uuid.uuid4(),
            "device_id": row["id"],
            "name": "version",
            "text": "show version",
            "params": {},
            "timeout": 30.0,
            "created_at": now,
            "updated_at": now,
        }
        for row in device_rows
    ]
    schedule_rows = []
    for index in range(count):
        command = command_rows[index % devices]
        schedule_id = uuid.uuid4()
        schedule_rows.append(
            {
                "id": schedule_id,
                "command_id": command["id"],
                "device_id": command["device_id"],
                "cron": "*/5 * * * *",
                "is_active": False,
                "workflow_id": workflow_id_for(schedule_id),
                "spec_version": 1,
                "params": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    async with engine.begin() as connection:
        await connection.execute(insert(Device), device_rows)
        await connection.execute(insert(Command), command_rows)
        for start in range(0, count, 5000):
            await connection.execute(insert(Schedule), schedule_rows[start : start + 5000])
    await engine.dispose()
    return [uuid.UUID(str(row["id"])) for row in schedule_rows]


async def _timed_pass(
    name: str,
    sessionmaker: Any,
    orchestrator: CountingOrchestrator,
    orphan_grace: timedelta = ORPHAN_GRACE,
) -> PassReport:
    orchestrator.calls.clear()
    began = time.perf_counter()
    repairs = await reconcile(sessionmaker, orchestrator, orphan_grace=orphan_grace)
    seconds = time.perf_counter() - began
    report = PassReport(
        name=name,
        schedules=repairs.checked,
        seconds=round(seconds, 2),
        suspects=repairs.suspects,
        started=len(repairs.started),
        updated=len(repairs.updated),
        stopped=len(repairs.stopped),
        temporal_calls=dict(orchestrator.calls),
    )
    print(
        f"{name:>10}: {report.schedules} schedules in {report.seconds:.2f} s; "
        f"repairs started/updated/stopped {report.started}/{report.updated}/{report.stopped}; "
        f"Temporal calls {dict(sorted(report.temporal_calls.items()))}",
        flush=True,
    )
    return report


async def _run(count: int, database_url: str, address: str) -> list[PassReport]:
    key = generate_key()
    client = await Client.connect(address, data_converter=data_converter(key))
    orchestrator = CountingOrchestrator(client, TASK_QUEUE)
    began = time.perf_counter()
    ids = await _seed(database_url, count)
    print(f"seeded {count} schedules in {time.perf_counter() - began:.1f} s", flush=True)
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    reports: list[PassReport] = []
    with _worker_process(address, key, count):
        began = time.perf_counter()
        async with sessionmaker() as session:
            specs = await current_specs(session, Schedule.id.in_(ids))

        async def start(spec: Any) -> None:
            await orchestrator.start(ScheduleInput(spec=spec))

        await for_each(specs, start)
        print(f"started {count} workflows in {time.perf_counter() - began:.1f} s", flush=True)
        reports.append(await _timed_pass("clean", sessionmaker, orchestrator))

        drift = max(1, count // 100)
        lost, behind, orphaned = ids[:drift], ids[drift : 2 * drift], ids[2 * drift : 3 * drift]
        for schedule_id in lost:
            await client.get_workflow_handle(workflow_id_for(schedule_id)).terminate()
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Schedule)
                .where(Schedule.id.in_(behind))
                .values(spec_version=Schedule.spec_version + 1)
            )
            await session.execute(delete(Schedule).where(Schedule.id.in_(orphaned)))
        await asyncio.sleep(2)  # visibility is eventually consistent: let it see the drift
        # No grace for the orphans: the bench's workflows are all younger than 30 s.
        reports.append(await _timed_pass("1% drift", sessionmaker, orchestrator, timedelta(0)))
        reports.append(await _timed_pass("clean", sessionmaker, orchestrator))
    await engine.dispose()
    return reports


def run_bench_reconcile(count: int, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="netcron-bench-reconcile-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "postgres")
        temporal_server = EmbeddedTemporal(Path(tmp) / "temporal", headless=True)
        database_url = postgres.start()
        try:
            temporal_server.start(preferred_port=None)
            upgrade(database_url)
            reports = asyncio.run(_run(count, database_url, temporal_server.address))
        finally:
            temporal_server.stop()
            postgres.stop()
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    path = out / f"reconcile-{stamp}.json"
    passes = [asdict(report) for report in reports]
    path.write_text(json.dumps({"schedules": count, "at": stamp, "passes": passes}, indent=2))
    print(f"wrote {path}", flush=True)
