"""Migration 0005 moves every run's output into the blob store, and back on downgrade."""

from __future__ import annotations

import asyncio
import uuid
import zlib

import asyncpg
from alembic import command
from sqlalchemy.engine import make_url

from netcron.db.migrate import alembic_config, upgrade

OUTPUTS = ["Cisco IOS XE Software\nr1 uptime is 2 days\n", "same text", "same text", None]


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _seed_at_0003(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        device, command_id, schedule = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO devices (id, name, host, port, platform, labels, has_password,"
            " has_private_key, has_enable_secret) VALUES ($1, 'd', 'h', 22, 'cisco_ios', '{}',"
            " false, false, false)",
            device,
        )
        await conn.execute(
            "INSERT INTO commands (id, device_id, name, text, params, timeout)"
            " VALUES ($1, $2, 'v', 'show version', '{}', 30)",
            command_id,
            device,
        )
        await conn.execute(
            "INSERT INTO schedules (id, command_id, device_id, cron, timezone, params, is_active,"
            " ttl_seconds, overlap, starting_deadline_seconds, spec_version, workflow_id)"
            " VALUES ($1, $2, $3, '* * * * *', 'UTC', '{}', true, 300, 'skip', 60, 1, 'w')",
            schedule,
            command_id,
            device,
        )
        for index, output in enumerate(OUTPUTS):
            await conn.execute(
                "INSERT INTO command_results (id, run_id, schedule_id, device_id, command_id,"
                " scheduled_at, status, attempt, output, output_truncated)"
                " VALUES ($1, $2, $3, $4, $5, now(), 'succeeded', 1, $6, false)",
                uuid.uuid4(),
                f"run-{index}",
                schedule,
                device,
                command_id,
                output,
            )
    finally:
        await conn.close()


async def test_existing_outputs_move_into_the_blob_store_and_back(postgres_url: str) -> None:
    name = f"migration_{uuid.uuid4().hex[:8]}"
    await _admin(postgres_url, f"CREATE DATABASE {name}")
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url, "0003")
    await _seed_at_0003(url)
    await asyncio.to_thread(upgrade, url, "0005")
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        blobs = {
            row["hash"]: zlib.decompress(row["data"]).decode()
            for row in await conn.fetch("SELECT hash, data FROM outputs")
        }
        runs = await conn.fetch("SELECT run_id, output_hash FROM command_results ORDER BY run_id")
        assert sorted(blobs.values()) == sorted({o for o in OUTPUTS if o is not None})
        assert [blobs.get(row["output_hash"]) for row in runs] == OUTPUTS
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0003")
        back = await conn.fetch("SELECT output FROM command_results ORDER BY run_id")
        assert [row["output"] for row in back] == OUTPUTS
    finally:
        await conn.close()
        await _admin(postgres_url, f"DROP DATABASE {name} WITH (FORCE)")
