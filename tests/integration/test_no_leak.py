"""A known device password appears nowhere but in the executor's memory.

Not in any api response, any service's log (at DEBUG), any message on the broker, or
any Temporal history: neither raw (what Temporal stores) nor decoded with the key. The
same holds for the secrets in a configuration that is backed up (masked by the
executor), and for every row in the database, stored outputs decompressed.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from nats.js.errors import NotFoundError
from temporalio.client import Client

from netcron.dev import DevStack
from netcron.executor.drivers.emulated import config_secrets
from netcron.messages import RESULTS_STREAM, TASKS_STREAM

from .test_pipeline import eventually

pytestmark = pytest.mark.integration

PASSWORD = "Leak-Canary-7f3a9c1e"
ENABLE = "Enable-Canary-51bd02aa"
HOST = "192.0.2.77"


@pytest.fixture(scope="module")
async def canary(api: httpx.AsyncClient, stack: DevStack) -> dict[str, Any]:
    """A device with known secrets, a schedule that ran, and every broker message seen."""
    tap = await nats.connect(stack.env["NETCRON_NATS_URL"])
    seen: list[bytes] = []

    async def keep(msg: Any) -> None:
        seen.append(msg.data)

    await tap.subscribe("netcron.>", cb=keep)
    device = (
        await api.post(
            "/devices",
            json={
                "name": "canary",
                "host": HOST,
                "platform": "cisco_xe",
                "username": "ops",
                "password": PASSWORD,
                "enable_secret": ENABLE,
            },
        )
    ).json()
    created = await api.post(
        f"/devices/{device['id']}/commands", json={"name": "v", "text": "show version"}
    )
    assert created.status_code == 201, created.text
    command = created.json()
    schedule = (
        await api.post(
            f"/devices/{device['id']}/commands/{command['id']}/schedules",
            json={"cron": "* * * * * *"},
        )
    ).json()
    backup = (
        await api.post(
            f"/devices/{device['id']}/commands",
            json={"name": "backup", "text": "show running-config", "track_changes": True},
        )
    ).json()
    await api.post(
        f"/devices/{device['id']}/commands/{backup['id']}/schedules", json={"cron": "* * * * * *"}
    )
    await api.patch(f"/devices/{device['id']}", json={"password": PASSWORD + "-2"})

    async def three_runs() -> bool:
        counts = []
        for ident in (command["id"], backup["id"]):
            body = (
                await api.get(
                    f"/devices/{device['id']}/results",
                    params={"status": "succeeded", "command_id": ident},
                )
            ).json()
            counts.append(len(body["items"]))
        return min(counts) >= 3

    await eventually(three_runs)
    await api.get(f"/devices/{device['id']}")
    await api.get("/devices")
    backups = (
        await api.get(
            f"/devices/{device['id']}/results",
            params={"command_id": backup["id"], "status": "succeeded"},
        )
    ).json()["items"]
    assert "snmp-server community <removed> RO" in backups[0]["output"]
    await api.get(f"/devices/{device['id']}/results/{backups[0]['run_id']}/diff")
    await api.get(f"/devices/{device['id']}/versions", params={"command_id": backup["id"]})
    await asyncio.sleep(0.5)
    await tap.close()
    return {"device": device, "schedule": schedule, "broker": seen, "backups": backups}


def _secrets() -> list[bytes]:
    return [PASSWORD.encode(), ENABLE.encode(), *(s.encode() for s in config_secrets(HOST))]


async def test_no_api_response_contains_a_secret(
    canary: dict[str, Any], api_responses: list[bytes]
) -> None:
    assert api_responses
    assert not [body for body in api_responses for secret in _secrets() if secret in body]


async def test_no_log_line_contains_a_secret(canary: dict[str, Any], stack: DevStack) -> None:
    assert stack.log_dir is not None
    logs = {path.name: path.read_bytes() for path in stack.log_dir.glob("*.log")}
    assert {"api.log", "worker.log", "executor.log"} <= set(logs)
    assert not [name for name, text in logs.items() for secret in _secrets() if secret in text]


async def test_no_broker_message_contains_a_secret(canary: dict[str, Any], stack: DevStack) -> None:
    assert canary["broker"], "the tap saw no message"
    left: list[bytes] = []
    nc = await nats.connect(stack.env["NETCRON_NATS_URL"])
    js = nc.jetstream()
    for stream in (TASKS_STREAM, RESULTS_STREAM):
        state = (await js.stream_info(stream)).state
        for seq in range(state.first_seq, state.last_seq + 1):
            try:
                left.append((await js.get_msg(stream, seq)).data or b"")
            except NotFoundError:
                continue
    await nc.close()
    messages = canary["broker"] + left
    assert not [m for m in messages for secret in _secrets() if secret in m]


async def test_no_temporal_history_contains_a_secret(
    canary: dict[str, Any], stack: DevStack, temporal: Client
) -> None:
    raw = await Client.connect(stack.env["NETCRON_TEMPORAL_ADDRESS"])
    workflow_id = canary["schedule"]["workflow_id"]
    stored = await raw.get_workflow_handle(workflow_id).fetch_history()
    stored_bytes = stored.to_json().encode()
    assert b"binary/encrypted" in stored_bytes or b"YmluYXJ5L2VuY3J5cHRlZA" in stored_bytes
    decoded = await temporal.get_workflow_handle(workflow_id).fetch_history()
    for history in (stored_bytes, decoded.to_json().encode()):
        assert not [secret for secret in _secrets() if secret in history]


async def test_backups_whose_clock_lines_moved_are_one_version(canary: dict[str, Any]) -> None:
    """Through the whole pipeline: the NVRAM time changes every run, the configuration not."""
    *later, first = canary["backups"]
    assert first["changed"] is True
    assert later and {run["changed"] for run in later} == {False}
    assert {run["content_hash"] for run in canary["backups"]} == {first["content_hash"]}
    assert len({run["output"] for run in canary["backups"]}) > 1


async def test_no_database_row_contains_a_secret(canary: dict[str, Any], stack: DevStack) -> None:
    url = stack.env["NETCRON_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url)
    try:
        tables = [
            row["tablename"]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        rows = [
            str(row[0]).encode()
            for table in tables
            for row in await conn.fetch(f'SELECT t::text FROM "{table}" t')
        ]
        blobs = [
            zlib.decompress(row["data"]) for row in await conn.fetch("SELECT data FROM outputs")
        ]
    finally:
        await conn.close()
    assert "outputs" in tables and blobs
    assert any(b"snmp-server community <removed>" in blob for blob in blobs)
    assert not [secret for secret in _secrets() for text in rows + blobs if secret in text]
