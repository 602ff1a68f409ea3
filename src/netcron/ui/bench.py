"""`netcron bench --ui`: the console's server time per page over a large inventory.

Starts an embedded PostgreSQL, migrates it, writes 10,000 devices (a command and a
schedule each), 1,000,000 runs (schedule runs every 5 minutes back from now, and the
runs of a few job fires; their outputs as content-addressed blobs, a few versions per
device) straight into it with COPY, then serves the api in this process
(Temporal replaced by the in-memory double, no NATS) and times each console page, in
process, over repeated requests: p50, p95 and the slowest. A measurement, not a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from netcron.api.app import create_app
from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.config import Settings
from netcron.crypto import generate_key
from netcron.db.migrate import upgrade
from netcron.db.session import create_engine
from netcron.devstack import EmbeddedPostgres
from netcron.history.store import digest, pack
from netcron.platforms import PLATFORMS
from netcron.runspec import workflow_id_for

KEY = "bench-console-key-0123456789"
SITES = [f"site{n:02d}" for n in range(20)]
ROLES = ["access", "core", "edge", "dist"]
RUN_EVERY = timedelta(minutes=5)
JOBS = 4
FIRES_PER_JOB = 5
JOB_DEVICES = 500

CONFIG = """!
! Last configuration change at {clock}
version 17.9
hostname {name}
interface GigabitEthernet0/1
 description uplink to {site}-core
 ip address 10.{a}.{b}.1 255.255.255.0
interface GigabitEthernet0/2
 shutdown
ntp server 10.0.0.{ntp}
snmp-server community {community} RO
end
"""


@dataclass
class PageTiming:
    page: str
    path: str
    requests: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    status: int


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _copy(engine: AsyncEngine, table: str, columns: list[str], rows: Any) -> None:
    """COPY ``rows`` in; a column the schema does not have (yet, or any more) is left out."""
    async with engine.connect() as connection:
        present = set(
            await connection.scalars(
                text("SELECT column_name FROM information_schema.columns WHERE table_name = :t"),
                {"t": table},
            )
        )
        keep = [index for index, column in enumerate(columns) if column in present]
        if not keep:
            return
        if len(keep) < len(columns):
            columns = [columns[index] for index in keep]
            rows = [tuple(row[index] for index in keep) for row in rows]
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(table, records=rows, columns=columns)
        await connection.commit()


def _runs(
    devices: list[tuple[uuid.UUID, str, str]],
    commands: dict[uuid.UUID, uuid.UUID],
    schedules: dict[uuid.UUID, uuid.UUID],
    per_device: int,
    now: datetime,
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(7)
    newest = now.replace(second=0, microsecond=0)
    newest -= timedelta(minutes=newest.minute % 5)
    # Oldest first, every device's run of one fire before the next fire's: the order the
    # api records them in, so the table's pages follow time as they do in production.
    for step in reversed(range(per_device)):
        for index, (device_id, name, site) in enumerate(devices):
            schedule_id = schedules[device_id]
            at = newest - step * RUN_EVERY
            roll = rng.random()
            status = "succeeded" if roll < 0.97 else "failed" if roll < 0.99 else "timed_out"
            failed = status != "succeeded"
            # the configuration changes about once a day per device
            version = (per_device - step + index) // 288
            older = (per_device - step - 1 + index) // 288
            changed = None if failed else step == per_device - 1 or version != older
            output = (
                None
                if failed
                else CONFIG.format(
                    clock=f"{version:04d}",
                    name=name,
                    site=site,
                    a=index % 250,
                    b=version % 250,
                    ntp=1 + version % 3,
                    community="public",
                )
            )
            yield (
                uuid.uuid4(),
                f"{schedule_id}:{int(at.timestamp())}",
                schedule_id,
                device_id,
                commands[device_id],
                None,
                None,
                at,
                at + timedelta(milliseconds=3),
                at + timedelta(milliseconds=200 + rng.randrange(600)),
                status,
                1,
                output,
                False,
                "unreachable" if status == "failed" else "timeout" if failed else None,
                f"no answer from {name}" if failed else None,
                f"executor-{index % 3}:{1000 + index % 3}",
                "show running-config",
                digest(output) if output else None,
                changed,
                2 if changed else 0 if changed is not None else None,
                2 if changed else 0 if changed is not None else None,
            )


RUN_COLUMNS = [
    "id",
    "run_id",
    "schedule_id",
    "device_id",
    "command_id",
    "job_id",
    "fire_id",
    "scheduled_at",
    "started_at",
    "finished_at",
    "status",
    "attempt",
    "output",
    "output_truncated",
    "error_kind",
    "error",
    "executor_id",
    "command",
    "output_hash",
    "changed",
    "lines_added",
    "lines_removed",
]


async def seed(engine: AsyncEngine, devices: int, runs: int) -> dict[str, Any]:
    """``devices`` devices with a command and schedule each, and ``runs`` runs in all."""
    now = datetime.now(UTC)
    started = time.monotonic()
    device_rows = []
    listed: list[tuple[uuid.UUID, str, str]] = []
    for index in range(devices):
        device_id = uuid.uuid4()
        site, role = SITES[index % len(SITES)], ROLES[index % len(ROLES)]
        name = f"{site}-{role}-{index:05d}"
        labels = json.dumps({"site": site, "role": role})
        platform = PLATFORMS[index % len(PLATFORMS)]
        device_rows.append(
            (
                device_id,
                name,
                f"10.{index // 250 % 250}.{index % 250}.1",
                22,
                platform,
                labels,
                False,
                False,
                False,
            )
        )
        listed.append((device_id, name, site))
    await _copy(
        engine,
        "devices",
        [
            *("id", "name", "host", "port", "platform", "labels"),
            *("has_password", "has_private_key", "has_enable_secret"),
        ],
        device_rows,
    )
    commands = {device_id: uuid.uuid4() for device_id, _, _ in listed}
    await _copy(
        engine,
        "commands",
        ["id", "device_id", "name", "text", "params", "timeout", "track_changes"],
        [(c, d, "config", "show running-config", "{}", 30.0, True) for d, c in commands.items()],
    )
    schedules = {device_id: uuid.uuid4() for device_id, _, _ in listed}
    await _copy(
        engine,
        "schedules",
        [
            "id",
            "command_id",
            "device_id",
            "cron",
            "timezone",
            "params",
            "is_active",
            "ttl_seconds",
            "overlap",
            "starting_deadline_seconds",
            "spec_version",
            "workflow_id",
        ],
        [
            (
                s,
                commands[d],
                d,
                "*/5 * * * *",
                "UTC",
                "{}",
                True,
                300,
                "skip",
                60,
                1,
                workflow_id_for(s),
            )
            for d, s in schedules.items()
        ],
    )
    job_runs = JOBS * FIRES_PER_JOB * JOB_DEVICES
    per_device = max(1, (runs - job_runs) // devices)
    batch: list[tuple[Any, ...]] = []
    stored: set[bytes] = set()
    for row in _runs(listed, commands, schedules, per_device, now):
        batch.append(row)
        if len(batch) == 50_000:
            await _copy_runs(engine, batch, stored)
            batch = []
    if batch:
        await _copy_runs(engine, batch, stored)
    await _seed_jobs(engine, listed, now, stored)
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
        await connection.commit()
        counted = await connection.scalar(text("SELECT count(*) FROM command_results"))
    return {
        "devices": devices,
        "runs": counted,
        "schedule_runs_per_device": per_device,
        "seconds": round(time.monotonic() - started, 1),
    }


async def _seed_jobs(
    engine: AsyncEngine,
    devices: list[tuple[uuid.UUID, str, str]],
    now: datetime,
    stored: set[bytes],
) -> None:
    rows, fires, runs = [], [], []
    for number in range(JOBS):
        job_id = uuid.uuid4()
        site = SITES[number]
        rows.append(
            (
                job_id,
                f"{site}-backup",
                "show running-config",
                json.dumps({"all": True}),
                "0 2 * * *",
                "UTC",
                f"job-{job_id}",
            )
        )
        for day in range(FIRES_PER_JOB):
            fire_id = uuid.uuid4()
            at = (now - timedelta(days=day)).replace(hour=2, minute=0, second=0, microsecond=0)
            fires.append((fire_id, job_id, at, at, at + timedelta(seconds=40), JOB_DEVICES))
            for device_id, name, _ in devices[:JOB_DEVICES]:
                runs.append(
                    (
                        uuid.uuid4(),
                        f"{fire_id}:{device_id}",
                        None,
                        device_id,
                        None,
                        job_id,
                        fire_id,
                        at,
                        at,
                        at + timedelta(seconds=1),
                        "succeeded",
                        1,
                        f"{name} ok",
                        False,
                        None,
                        None,
                        "executor-0:1000",
                        "show running-config",
                        digest(f"{name} ok"),
                        None,
                        None,
                        None,
                    )
                )
    await _copy(
        engine, "jobs", ["id", "name", "command", "target", "cron", "timezone", "workflow_id"], rows
    )
    await _copy(
        engine,
        "job_fires",
        ["id", "job_id", "scheduled_at", "started_at", "finished_at", "total"],
        fires,
    )
    await _copy_runs(engine, runs, stored)


async def _copy_runs(engine: AsyncEngine, rows: list[tuple[Any, ...]], stored: set[bytes]) -> None:
    """Runs, after the blobs of outputs not stored yet (configuration history's store)."""
    output = RUN_COLUMNS.index("output")
    blobs = []
    for row in rows:
        if row[output] is not None:
            key = digest(row[output])
            if key not in stored:
                stored.add(key)
                blobs.append((key, len(row[output].encode()), pack(row[output])))
    if blobs:
        await _copy(engine, "outputs", ["hash", "size", "data"], blobs)
    await _copy(engine, "command_results", RUN_COLUMNS, rows)


async def _pick(engine: AsyncEngine) -> dict[str, str]:
    """Ids for the pages that need them: a device in the middle, its latest run, a job."""
    async with engine.connect() as connection:
        device_id = await connection.scalar(
            text(
                "SELECT id FROM devices ORDER BY name"
                " OFFSET (SELECT count(*) / 2 FROM devices) LIMIT 1"
            )
        )
        run_id = await connection.scalar(
            text(
                "SELECT run_id FROM command_results WHERE device_id = :d AND status = 'succeeded'"
                " ORDER BY scheduled_at DESC LIMIT 1"
            ),
            {"d": device_id},
        )
        job_id, fire_id = (
            await connection.execute(text("SELECT job_id, id FROM job_fires LIMIT 1"))
        ).one()
    return {"device": str(device_id), "run": str(run_id), "job": str(job_id), "fire": str(fire_id)}


def console_pages(ids: dict[str, str]) -> dict[str, str]:
    device, run = ids["device"], ids["run"]
    return {
        "overview": "/ui",
        "devices": "/ui/devices",
        "devices, name search": "/ui/devices?q=core-0042",
        "devices, label search": "/ui/devices?labels=site:site07+role:dist",
        "devices, page 100": "/ui/devices?offset=5000",
        "device": f"/ui/devices/{device}",
        "run": f"/ui/devices/{device}/runs/{run}",
        "diff (unified)": f"/ui/devices/{device}/runs/{run}/diff",
        "diff (side by side)": f"/ui/devices/{device}/runs/{run}/diff?view=side",
        "jobs": "/ui/jobs",
        "job": f"/ui/jobs/{ids['job']}",
        "fire": f"/ui/jobs/{ids['job']}/fires/{ids['fire']}",
    }


async def time_pages(app: Any, pages: dict[str, str], repeat: int) -> list[PageTiming]:
    timings = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        form = await client.get("/ui/login")
        token = form.text.split('name="token" value="', 1)[1].split('"', 1)[0]
        signed = await client.post("/ui/login", data={"api_key": KEY, "token": token})
        if signed.status_code != 303:
            raise RuntimeError(f"sign-in answered {signed.status_code}: {signed.text[:300]}")
        if "run" in pages and "hostname " not in (await client.get(pages["run"])).text:
            raise RuntimeError("the run page shows no output: the seeded outputs did not land")
        if (
            "device" in pages
            and "Configuration history" not in (await client.get(pages["device"])).text
        ):
            raise RuntimeError("the device page lists no configuration versions")
        for name, path in pages.items():
            elapsed = []
            status = 0
            for attempt in range(repeat + 3):
                began = time.perf_counter()
                response = await client.get(path)
                took = (time.perf_counter() - began) * 1000
                status = response.status_code
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}: {response.text[:300]}")
                if attempt >= 3:  # the first requests warm caches and pools
                    elapsed.append(took)
            timings.append(
                PageTiming(
                    page=name,
                    path=path,
                    requests=repeat,
                    p50_ms=round(statistics.median(elapsed), 1),
                    p95_ms=round(_percentile(elapsed, 0.95), 1),
                    max_ms=round(max(elapsed), 1),
                    status=status,
                )
            )
            print(
                f"  {name:24} p50 {timings[-1].p50_ms:7.1f} ms  p95 "
                f"{timings[-1].p95_ms:7.1f} ms  (HTTP {status})",
                flush=True,
            )
    return timings


async def _run(database_url: str, devices: int, runs: int, repeat: int) -> dict[str, Any]:
    engine = create_engine(database_url)
    print(f"seeding {devices} devices and {runs} runs …", flush=True)
    seeded = await seed(engine, devices, runs)
    print(f"seeded in {seeded['seconds']} s", flush=True)
    ids = await _pick(engine)
    await engine.dispose()
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        secret_key=generate_key(),
        api_keys=f"bench:{KEY}:read+write",
        nats_url="nats://127.0.0.1:1",
    )
    app = create_app(settings, orchestrator=InMemoryOrchestrator(), reconcile=False)
    pages = console_pages(ids)
    async with app.router.lifespan_context(app):
        # Right after COPY no page of the table is marked all-visible yet, so counting the
        # last hour reads the heap; autovacuum marks an insert-mostly table soon after.
        print("before VACUUM (the visibility map still empty):", flush=True)
        cold = await time_pages(app, {"overview": pages["overview"]}, repeat)
        await _vacuum(database_url)
        print("after VACUUM ANALYZE:", flush=True)
        timings = await time_pages(app, pages, repeat)
    return {
        "seed": seeded,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "before_vacuum": [asdict(t) for t in cold],
        "pages": [asdict(t) for t in timings],
    }


async def _vacuum(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))
    await engine.dispose()


def run_bench_ui(out: Path, *, devices: int, runs: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="netcron-bench-ui-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "postgres")
        database_url = postgres.start()
        try:
            upgrade(database_url)
            report = asyncio.run(_run(database_url, devices, runs, repeat))
        finally:
            postgres.stop()
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    path = out / f"ui-{stamp}.json"
    path.write_text(json.dumps({"at": stamp, "repeat": repeat, **report}, indent=2))
    print(f"load average (1 min) at the end: {report['load_average_1m']}", flush=True)
    worst = max(report["pages"], key=lambda p: p["p95_ms"])
    print(f"slowest page at p95: {worst['page']} {worst['p95_ms']} ms; wrote {path}", flush=True)
