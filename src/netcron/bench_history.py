"""`netcron bench --history`: bytes on disk of a month of hourly backups, and read latency.

Seeds PostgreSQL directly, in batches (COPY): N devices, each with an hourly
``show running-config`` of about 40 KB tracked for changes, for D simulated days; every
day 1 % of the devices change a few lines. Each run's output carries the volatile lines
a real IOS backup has (the last-change stamps moving with each change and, on a share
``clock_drift`` of the devices, 1.0 by default, an ``ntp clock-period`` moving every
hour), so no two outputs of a drifting device are byte-identical: what is stored once is
the normalized text, and each run keeps only the volatile lines that differ from those
its blob was first stored with. The rows
are what ``record_run`` writes (checked: the first run of every device goes through
``normalize`` and must give the same hash and residue). Then it reports bytes on disk
against the bytes of every output, and p50/p99 of reading a device's history, a page of
its runs and a diff, through the api (ASGI, in this process). A measurement, not a test.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from netcron.api.app import create_app
from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.config import Settings
from netcron.crypto import generate_key
from netcron.db.migrate import upgrade
from netcron.db.models import Command, Device, Schedule
from netcron.db.session import create_engine
from netcron.devstack import EmbeddedPostgres
from netcron.history.diff import Diff
from netcron.history.normalize import normalize, relative_to
from netcron.history.store import Blob

START = datetime(2026, 10, 1, tzinfo=UTC)
KEY = "bench-history-key-0123456789"
#: Line numbers of the volatile lines in a generated configuration (see ``_config``).
LAST_CHANGE, NVRAM, CLOCK = 4, 5, 9


@dataclass
class Figures:
    devices: int
    days: int
    clock_drift: float
    runs: int = 0
    versions: int = 0
    config_bytes: int = 0
    raw_bytes: int = 0
    outputs_bytes: int = 0
    runs_bytes: int = 0
    runs_heap_bytes: int = 0
    runs_index_bytes: int = 0
    seed_seconds: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def stored_bytes(self) -> int:
        return self.outputs_bytes + self.runs_bytes

    def lines(self) -> list[str]:
        def share(part: int) -> str:
            return f"{100 * part / self.raw_bytes:.2f} %"

        out = [
            f"{self.devices} devices x {self.days} days of hourly backups: {self.runs:,} runs, "
            f"{self.versions:,} versions, config ~{self.config_bytes / 1000:.0f} KB, "
            f"{self.clock_drift:.0%} of devices with an ntp clock-period moving every hour "
            f"(seeded in {self.seed_seconds:.0f} s)",
            f"every output stored whole: {self.raw_bytes / 1e9:.2f} GB",
            f"outputs table (blobs, TOAST included): {self.outputs_bytes / 1e6:.1f} MB "
            f"= {share(self.outputs_bytes)}",
            f"runs table: {self.runs_bytes / 1e6:.1f} MB (heap {self.runs_heap_bytes / 1e6:.1f}"
            f", indexes {self.runs_index_bytes / 1e6:.1f}) = {share(self.runs_bytes)}",
            f"on disk in all: {self.stored_bytes / 1e6:.1f} MB = {share(self.stored_bytes)} "
            "of storing every output",
        ]
        for name, figures in self.latency_ms.items():
            out.append(f"{name}: p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms")
        return out


def _config(rng: random.Random, name: str, size: int) -> list[str]:
    """A plausible IOS configuration of about ``size`` bytes, volatile lines included."""
    lines = [
        "Building configuration...",
        "",
        f"Current configuration : {size} bytes",
        "!",
        "! Last configuration change at 09:00:00 UTC Wed Sep 30 2026 by netops",
        "! NVRAM config last updated at 09:00:05 UTC Wed Sep 30 2026 by netops",
        "!",
        "version 17.9",
        f"hostname {name}",
        "ntp clock-period 36028797018963968",
        "!",
    ]
    index = 0
    while sum(len(line) + 1 for line in lines) < size - 200:
        index += 1
        third, fourth = rng.randint(0, 255), rng.randint(1, 254)
        lines += [
            f"interface GigabitEthernet{1 + index // 48}/0/{index % 48}",
            f" description {rng.choice(['uplink', 'server', 'ap', 'printer', 'cam'])}-"
            f"{rng.randint(1, 9999)} {rng.choice(['rack', 'floor', 'room'])} {rng.randint(1, 99)}",
            f" switchport access vlan {rng.randint(2, 4000)}",
            f" ip address 10.{index % 256}.{third}.{fourth} 255.255.255.0",
            f" ip access-group ACL-{rng.randint(100, 199)} in",
            " spanning-tree portfast" if rng.random() < 0.5 else " no cdp enable",
            "!",
        ]
    lines += ["ip ssh version 2", "line vty 0 15", " transport input ssh", "!", "end", ""]
    return lines


def _change(rng: random.Random, lines: list[str], when: datetime) -> list[str]:
    """A few lines edited, and the change stamps moved."""
    changed = list(lines)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(12, len(changed) - 6)
        if changed[at].startswith(" description"):
            changed[at] = f" description changed-{rng.randint(1, 99999)}"
        else:
            changed.insert(at, f" ip helper-address 10.0.{rng.randint(0, 255)}.{rng.randint(1, 9)}")
    stamp = f"{when:%H:%M:%S} UTC {when:%a %b %d %Y}"
    changed[LAST_CHANGE] = f"! Last configuration change at {stamp} by netops"
    changed[NVRAM] = f"! NVRAM config last updated at {stamp} by netops"
    return changed


def _with_clock(lines: list[str], hour: int, drifts: bool) -> list[str]:
    if not drifts:
        return lines
    current = list(lines)
    current[CLOCK] = f"ntp clock-period {36028797018963968 + hour * 17}"
    return current


async def _seed(
    url: str, devices: int, days: int, size: int, clock_drift: float, figures: Figures
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Write the rows; the (device, command) pairs seeded."""
    engine = create_engine(url)
    rng = random.Random(13)
    device_ids = [uuid.uuid4() for _ in range(devices)]
    command_ids = [uuid.uuid4() for _ in range(devices)]
    schedule_ids = [uuid.uuid4() for _ in range(devices)]
    async with engine.begin() as connection:
        await connection.execute(
            insert(Device),
            [
                {
                    "id": d,
                    "name": f"sw-{i:04d}",
                    "host": f"10.0.{i // 250}.{i % 250 + 1}",
                    "platform": "cisco_ios",
                    "labels": {},
                }
                for i, d in enumerate(device_ids)
            ],
        )
        await connection.execute(
            insert(Command),
            [
                {
                    "id": c,
                    "device_id": d,
                    "name": "backup",
                    "text": "show running-config",
                    "params": {},
                    "track_changes": True,
                    "ignore_lines": [],
                    "mask": [],
                }
                for c, d in zip(command_ids, device_ids, strict=True)
            ],
        )
        await connection.execute(
            insert(Schedule),
            [
                {
                    "id": s,
                    "device_id": d,
                    "command_id": c,
                    "cron": "0 * * * *",
                    "params": {},
                    "workflow_id": f"schedule-{s}",
                }
                for s, c, d in zip(schedule_ids, command_ids, device_ids, strict=True)
            ],
        )
    configs = [_config(rng, f"sw-{i:04d}", size) for i in range(devices)]
    drifting = round(devices * clock_drift)
    figures.config_bytes = round(statistics.mean(len("\n".join(c)) for c in configs))
    blobs: dict[int, Blob] = {}
    previous: dict[int, str | None] = {i: None for i in range(devices)}
    raw_conn = await engine.raw_connection()
    copy: Any = raw_conn.driver_connection
    try:
        for day in range(days):
            changing = set(rng.sample(range(devices), max(1, devices // 100)))
            change_hour = {i: rng.randrange(24) for i in changing}
            stored: list[tuple[Any, ...]] = []
            runs: list[tuple[Any, ...]] = []
            for hour_of_day in range(24):
                hour = day * 24 + hour_of_day
                at = START + timedelta(hours=hour)
                for i in range(devices):
                    if change_hour.get(i) == hour_of_day:
                        configs[i] = _change(rng, configs[i], at - timedelta(minutes=5))
                        blobs.pop(i, None)
                    lines = _with_clock(configs[i], hour, i < drifting)
                    if i not in blobs:
                        normalized = normalize("\n".join(lines), "cisco_ios")
                        blobs[i] = Blob.of_normalized(normalized)
                        stored.append(
                            (
                                blobs[i].hash,
                                blobs[i].size,
                                blobs[i].data,
                                json.dumps(blobs[i].residue),
                            )
                        )
                    blob = blobs[i]
                    residue = {
                        "lines": len(lines),
                        "at": [[n, lines[n]] for n in (2, LAST_CHANGE, NVRAM, CLOCK)],
                    }
                    if hour == 0:
                        check = normalize("\n".join(lines), "cisco_ios")
                        assert check.residue() == residue
                        assert Blob.of_normalized(check).hash == blob.hash
                    kept = relative_to(residue, blob.residue)
                    changed = previous[i] != blob.text
                    added = removed = 0
                    if changed:
                        stats = Diff.of(previous[i], blob.text).stats()
                        added, removed = stats.added, stats.removed
                        figures.versions += 1
                    previous[i] = blob.text
                    figures.raw_bytes += len("\n".join(lines).encode())
                    runs.append(
                        (
                            uuid.uuid4(),
                            f"{schedule_ids[i]}:{int(at.timestamp())}",
                            schedule_ids[i],
                            device_ids[i],
                            command_ids[i],
                            at,
                            at + timedelta(seconds=1),
                            at + timedelta(seconds=3),
                            "succeeded",
                            1,
                            False,
                            "bench:1",
                            "show running-config",
                            blob.hash,
                            json.dumps(kept),
                            changed,
                            added,
                            removed,
                            at,
                            at,
                        )
                    )
            if stored:
                await copy.copy_records_to_table(
                    "outputs", records=stored, columns=["hash", "size", "data", "volatile"]
                )
            await copy.copy_records_to_table(
                "command_results",
                records=runs,
                columns=[
                    "id",
                    "run_id",
                    "schedule_id",
                    "device_id",
                    "command_id",
                    "scheduled_at",
                    "started_at",
                    "finished_at",
                    "status",
                    "attempt",
                    "output_truncated",
                    "executor_id",
                    "command",
                    "output_hash",
                    "output_volatile",
                    "changed",
                    "lines_added",
                    "lines_removed",
                    "created_at",
                    "updated_at",
                ],
            )
            figures.runs += len(runs)
            print(f"  day {day + 1}/{days}: {figures.runs:,} runs", flush=True)
    finally:
        raw_conn.close()
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
        sizes = (
            await connection.execute(
                text(
                    "SELECT pg_total_relation_size('outputs'),"
                    " pg_total_relation_size('command_results'),"
                    " pg_relation_size('command_results') + pg_relation_size("
                    "  (SELECT reltoastrelid FROM pg_class WHERE relname = 'command_results')),"
                    " pg_indexes_size('command_results')"
                )
            )
        ).one()
    figures.outputs_bytes, figures.runs_bytes, figures.runs_heap_bytes = (
        sizes[0],
        sizes[1],
        sizes[2],
    )
    figures.runs_index_bytes = sizes[3]
    await engine.dispose()
    return list(zip(device_ids, command_ids, strict=True))


async def _latencies(
    url: str, figures: Figures, samples: int, pairs: list[tuple[uuid.UUID, uuid.UUID]]
) -> None:
    settings = Settings(
        _env_file=None,
        database_url=url,
        secret_key=generate_key(),
        nats_url="nats://127.0.0.1:1",
        api_keys=KEY,
    )
    app = create_app(settings, orchestrator=InMemoryOrchestrator(), reconcile=False)
    rng = random.Random(7)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers={"X-API-Key": KEY}
        ) as client:
            runs: dict[uuid.UUID, list[str]] = {}

            async def versions() -> None:
                device, command = rng.choice(pairs)
                response = await client.get(
                    f"/devices/{device}/versions", params={"command_id": str(command)}
                )
                assert response.status_code == 200, response.text
                runs[device] = [item["run_id"] for item in response.json()["items"]]

            async def page() -> None:
                device, command = rng.choice(pairs)
                response = await client.get(
                    f"/devices/{device}/results",
                    params={"command_id": str(command), "limit": 24},
                )
                assert response.status_code == 200, response.text

            async def diff() -> None:
                device, _ = rng.choice(pairs)
                hour = START + timedelta(hours=rng.randrange(1, figures.days * 24))
                schedule_run = await client.get(
                    f"/devices/{device}/results",
                    params={"until": hour.isoformat(), "limit": 1, "fields": "run_id"},
                )
                run_id = schedule_run.json()["items"][0]["run_id"]
                started = time.perf_counter()
                response = await client.get(f"/devices/{device}/results/{run_id}/diff")
                assert response.status_code == 200, response.text
                diffs.append(time.perf_counter() - started)

            async def diff_versions() -> None:
                device = rng.choice([d for d, ids in runs.items() if len(ids) > 1] or [None])
                if device is None:
                    return
                ids = runs[device]
                response = await client.get(
                    f"/devices/{device}/results/{ids[0]}/diff",
                    params={"against": ids[-1]},
                    headers={"Accept": "text/x-diff"},
                )
                assert response.status_code == 200, response.text

            diffs: list[float] = []
            for name, call in (
                ("versions of a device (GET /versions)", versions),
                ("a day of a device's runs, outputs included (GET /results?limit=24)", page),
                ("diff of a run against the first version (text/x-diff)", diff_versions),
            ):
                figures.latency_ms[name] = await _timed(call, samples)
            for _ in range(samples + 10):
                await diff()
            figures.latency_ms["diff of any run against the previous one (JSON)"] = _summary(
                diffs[10:]
            )


async def _timed(call: Callable[[], Awaitable[None]], samples: int) -> dict[str, float]:
    for _ in range(10):
        await call()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return _summary(times)


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": 1000 * statistics.median(ordered), "p99": 1000 * p99}


async def _run(
    url: str, devices: int, days: int, size: int, clock_drift: float, samples: int
) -> Figures:
    figures = Figures(devices=devices, days=days, clock_drift=clock_drift)
    started = time.perf_counter()
    pairs = await _seed(url, devices, days, size, clock_drift, figures)
    figures.seed_seconds = time.perf_counter() - started
    await _latencies(url, figures, samples, pairs)
    return figures


def run_bench_history(
    out: Path,
    *,
    devices: int = 1000,
    days: int = 30,
    size: int = 40_000,
    clock_drift: float = 1.0,
    samples: int = 300,
    database_url: str | None = None,
) -> Figures:
    """Seed, measure, print and write ``history-<time>.json``; a fresh embedded PostgreSQL
    unless ``database_url`` names a migrated, empty one."""
    with tempfile.TemporaryDirectory(prefix="netcron-bench-history-") as tmp:
        postgres = None if database_url else EmbeddedPostgres(Path(tmp) / "postgres")
        url = database_url or (postgres.start() if postgres else "")
        try:
            if postgres is not None:
                upgrade(url)
            figures = asyncio.run(_run(url, devices, days, size, clock_drift, samples))
        finally:
            if postgres is not None:
                postgres.stop()
    for line in figures.lines():
        print(line, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    path = out / f"history-{stamp}.json"
    report = asdict(figures) | {"stored_bytes": figures.stored_bytes}
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}", flush=True)
    return figures
