"""`netcron bench --fleet`: what it writes to and reads from PostgreSQL directly.

Devices (and, for the side-by-side, a command and a schedule per device) are written in
bulk: creating 10,000 devices through the api takes minutes and is not what is
measured. The runs are read back from ``command_results``, the record of truth.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import insert

from netcron.db.models import Command, Device, Schedule
from netcron.db.session import create_engine
from netcron.history.store import unpack
from netcron.runs import RunStatus
from netcron.runspec import workflow_id_for

BATCH = 2000
FINAL = tuple(status.value for status in RunStatus if status.is_final)


@dataclass(frozen=True)
class Seeded:
    """The bench's devices: id → host (each host unique, so output names its device)."""

    hosts: dict[uuid.UUID, str]

    def first(self, count: int) -> list[uuid.UUID]:
        return list(self.hosts)[:count]


def bench_host(index: int) -> str:
    return f"10.{index // 62_500}.{index // 250 % 250}.{index % 250 + 1}"


async def seed_devices(database_url: str, count: int, tag: str, compare: int) -> Seeded:
    """``count`` devices labelled ``fleet=<tag>``; the first ``compare`` also ``cmp=<tag>``."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    rows = []
    for index in range(count):
        labels = {"fleet": tag, "site": f"s{index % 20}"}
        if index < compare:
            labels["cmp"] = tag
        rows.append(
            {
                "id": uuid.uuid4(),
                "name": f"fleet-{tag}-{index:05d}",
                "host": bench_host(index),
                "port": 22,
                "platform": "cisco_ios",
                "labels": labels,
                "created_at": now,
                "updated_at": now,
            }
        )
    async with engine.begin() as connection:
        for start in range(0, count, BATCH):
            await connection.execute(insert(Device), rows[start : start + BATCH])
    await engine.dispose()
    return Seeded({row["id"]: row["host"] for row in rows})  # type: ignore[misc]


async def seed_schedules(
    database_url: str, devices: list[uuid.UUID], cron: str, ttl: int
) -> list[uuid.UUID]:
    """One ``show version`` command and one schedule on ``cron`` per device."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    commands = [
        {"id": uuid.uuid4(), "device_id": device_id, "name": "version", "text": "show version"}
        | {"params": {}, "timeout": 30.0}
        | stamps
        for device_id in devices
    ]
    schedules = []
    for command in commands:
        schedule_id = uuid.uuid4()
        schedules.append(
            {
                "id": schedule_id,
                "command_id": command["id"],
                "device_id": command["device_id"],
                "cron": cron,
                "is_active": True,
                "ttl_seconds": ttl,
                "starting_deadline_seconds": ttl,
                "workflow_id": workflow_id_for(schedule_id),
                "spec_version": 1,
                "params": {},
            }
            | stamps
        )
    async with engine.begin() as connection:
        for start in range(0, len(devices), BATCH):
            await connection.execute(insert(Command), commands[start : start + BATCH])
            await connection.execute(insert(Schedule), schedules[start : start + BATCH])
    await engine.dispose()
    return [row["id"] for row in schedules]  # type: ignore[misc]


def pg_url(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg", "postgresql")


_COLUMNS = (
    "r.run_id, r.device_id, r.status, o.data AS output_data, r.scheduled_at, r.started_at,"
    " r.finished_at, r.updated_at FROM command_results r"
    " LEFT JOIN outputs o ON o.hash = r.output_hash"
)


def _with_output(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    """Each row with its output text (from its blob: the whole text, these runs being
    untracked)."""
    return [
        {**dict(row), "output": unpack(row["output_data"]) if row["output_data"] else None}
        for row in rows
    ]


async def count_final_of_fire(conn: asyncpg.Connection, fire_id: uuid.UUID) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM command_results WHERE fire_id = $1 AND status = ANY($2::text[])",
        fire_id,
        list(FINAL),
    )
    return count


async def rows_of_fire(conn: asyncpg.Connection, fire_id: uuid.UUID) -> list[dict[str, Any]]:
    return _with_output(await conn.fetch(f"SELECT {_COLUMNS} WHERE r.fire_id = $1", fire_id))


async def count_final_of_schedules(
    conn: asyncpg.Connection, schedule_ids: list[uuid.UUID], at: datetime
) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM command_results WHERE schedule_id = ANY($1::uuid[])"
        " AND scheduled_at = $2 AND status = ANY($3::text[])",
        schedule_ids,
        at,
        list(FINAL),
    )
    return count


async def rows_of_schedules(
    conn: asyncpg.Connection, schedule_ids: list[uuid.UUID], at: datetime
) -> list[dict[str, Any]]:
    return _with_output(
        await conn.fetch(
            f"SELECT {_COLUMNS} WHERE r.schedule_id = ANY($1::uuid[]) AND r.scheduled_at >= $2",
            schedule_ids,
            at,
        )
    )
