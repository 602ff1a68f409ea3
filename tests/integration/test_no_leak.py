"""A known device password appears nowhere but in the executor's memory.

Not in any api response, any service's log (at DEBUG), any message on the broker, or
any Temporal history: neither raw (what Temporal stores) nor decoded with the key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError
from temporalio.client import Client

from netcron.dev import DevStack
from netcron.messages import RESULTS_STREAM, TASKS_STREAM

from .test_pipeline import eventually

pytestmark = pytest.mark.integration

PASSWORD = "Leak-Canary-7f3a9c1e"
ENABLE = "Enable-Canary-51bd02aa"


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
                "host": "192.0.2.77",
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
    await api.patch(f"/devices/{device['id']}", json={"password": PASSWORD + "-2"})

    async def three_runs() -> bool:
        body = (
            await api.get(f"/devices/{device['id']}/results", params={"status": "succeeded"})
        ).json()
        return len(body["items"]) >= 3

    await eventually(three_runs)
    await api.get(f"/devices/{device['id']}")
    await api.get("/devices")
    await asyncio.sleep(0.5)
    await tap.close()
    return {"device": device, "schedule": schedule, "broker": seen}


def _secrets() -> list[bytes]:
    return [PASSWORD.encode(), ENABLE.encode()]


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
