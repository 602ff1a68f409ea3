"""The core pipeline end to end: API → Temporal → NATS → executor → result in PostgreSQL.

One schedule firing every 2 seconds is created once; each test checks one link of the
chain the assignment names, against the real services and servers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import httpx
import nats
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from netcron.dev import DevStack
from netcron.messages import ResultMessage, TaskMessage

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-integration-pa55"
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20) -> T:
    """Poll ``check`` until it returns something truthy; fail with the last state."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(0.2)


@dataclass
class Scheduled:
    device: dict[str, Any]
    command: dict[str, Any]
    schedule: dict[str, Any]
    tasks: list[TaskMessage] = field(default_factory=list)
    results: list[ResultMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)


@pytest.fixture(scope="module")
async def scheduled(stack: DevStack, api: httpx.AsyncClient) -> AsyncIterator[Scheduled]:
    """A device, a command and a 2-second schedule, with a tap on the broker's subjects."""
    tap = await nats.connect(stack.env["NETCRON_NATS_URL"])
    device = (
        await api.post(
            "/devices",
            json={
                "name": "it-router-1",
                "host": "192.0.2.10",
                "port": 22,
                "platform": "cisco_ios",
                "username": "admin",
                "password": PASSWORD,
            },
        )
    ).json()
    command = (
        await api.post(
            f"/devices/{device['id']}/commands", json={"name": "version", "text": "show version"}
        )
    ).json()
    state = Scheduled(device=device, command=command, schedule={})

    async def on_task(msg: Any) -> None:
        state.raw.append(msg.data)
        state.tasks.append(TaskMessage.model_validate_json(msg.data))

    async def on_result(msg: Any) -> None:
        state.raw.append(msg.data)
        state.results.append(ResultMessage.model_validate_json(msg.data))

    # Core subscriptions see every JetStream publish on these subjects without taking
    # the messages from the work-queue streams.
    await tap.subscribe("netcron.tasks.>", cb=on_task)
    await tap.subscribe("netcron.results.>", cb=on_result)
    response = await api.post(
        f"/devices/{device['id']}/commands/{command['id']}/schedules",
        json={"cron": "*/2 * * * * *", "timezone": "UTC"},
    )
    assert response.status_code == 201, response.text
    state.schedule = response.json()
    yield state
    await tap.close()


async def test_schedule_is_created(api: httpx.AsyncClient, scheduled: Scheduled) -> None:
    device_id, command_id = scheduled.device["id"], scheduled.command["id"]
    schedule_id = scheduled.schedule["id"]
    response = await api.get(f"/devices/{device_id}/commands/{command_id}/schedules/{schedule_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["cron"] == "*/2 * * * * *"
    assert body["is_active"] is True
    assert len(body["next_fire_times"]) >= 1


async def test_workflow_is_started_and_running(temporal: Client, scheduled: Scheduled) -> None:
    handle = temporal.get_workflow_handle(f"schedule-{scheduled.schedule['id']}")
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.workflow_type == "ScheduleWorkflow"


async def test_task_reaches_the_broker(scheduled: Scheduled) -> None:
    schedule_id = scheduled.schedule["id"]

    async def task_seen() -> TaskMessage | None:
        return next((t for t in scheduled.tasks if str(t.schedule_id) == schedule_id), None)

    task = await eventually(task_seen)
    assert task.command == "show version"
    assert task.platform == "cisco_ios"
    assert task.run_id.startswith(f"{schedule_id}:")
    assert task.credentials and PASSWORD not in task.credentials


async def test_result_comes_back_to_the_workflow(temporal: Client, scheduled: Scheduled) -> None:
    handle = temporal.get_workflow_handle(f"schedule-{scheduled.schedule['id']}")

    async def result_signalled() -> list[str] | None:
        signals = [
            event.workflow_execution_signaled_event_attributes.signal_name
            async for event in handle.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        return [name for name in signals if name == "result"] or None

    assert await eventually(result_signalled)
    final = [r for r in scheduled.results if r.status.is_final]
    assert final, "no final result was published on the results stream"


async def test_codec_endpoint_shows_the_stored_workflow_input_decoded(
    api: httpx.AsyncClient, temporal: Client, scheduled: Scheduled
) -> None:
    handle = temporal.get_workflow_handle(f"schedule-{scheduled.schedule['id']}")
    (started,) = [
        event.workflow_execution_started_event_attributes
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    ]
    stored = started.input.payloads
    assert stored[0].metadata["encoding"] == b"binary/encrypted"
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in stored
        ]
    }
    response = await api.post("/codec/decode", json=body, headers={"X-Namespace": "default"})
    assert response.status_code == 200, response.text
    decoded = response.json()["payloads"][0]
    assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
    spec = json.loads(base64.b64decode(decoded["data"]))
    assert scheduled.schedule["id"] in json.dumps(spec)
    assert PASSWORD not in json.dumps(spec)


async def test_result_row_is_in_postgres_and_listed(
    api: httpx.AsyncClient, stack: DevStack, scheduled: Scheduled
) -> None:
    device_id = scheduled.device["id"]

    async def three_succeeded() -> list[dict[str, Any]] | None:
        response = await api.get(f"/devices/{device_id}/results")
        assert response.status_code == 200
        runs = [r for r in response.json()["items"] if r["status"] == "succeeded"]
        return runs if len(runs) >= 3 else None

    runs = await eventually(three_succeeded)
    run = runs[0]
    assert run["schedule_id"] == scheduled.schedule["id"]
    assert "Cisco IOS" in run["output"]
    assert run["started_at"] and run["finished_at"] and run["executor_id"]
    url = stack.env["NETCRON_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT status, output_hash, device_id::text FROM command_results WHERE run_id = $1",
            run["run_id"],
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["status"] == "succeeded"
    assert row["device_id"] == device_id


async def test_every_fire_is_recorded_once(api: httpx.AsyncClient, scheduled: Scheduled) -> None:
    device_id = scheduled.device["id"]
    response = await api.get(f"/devices/{device_id}/results", params={"limit": 500})
    run_ids = [r["run_id"] for r in response.json()["items"]]
    assert run_ids, "no runs recorded"
    assert len(run_ids) == len(set(run_ids))
    fired = sorted({int(run_id.rsplit(":", 1)[1]) for run_id in run_ids})
    assert all(second % 2 == 0 for second in fired), fired


async def test_password_never_travels_in_plain_text(scheduled: Scheduled) -> None:
    assert scheduled.raw, "nothing was captured on the broker"
    assert not [raw for raw in scheduled.raw if PASSWORD.encode() in raw]
    assert PASSWORD not in json.dumps(scheduled.device)


async def test_deleting_the_device_ends_its_workflow(
    api: httpx.AsyncClient, temporal: Client, scheduled: Scheduled
) -> None:
    response = await api.delete(f"/devices/{scheduled.device['id']}")
    assert response.status_code == 204
    handle = temporal.get_workflow_handle(f"schedule-{scheduled.schedule['id']}")
    description = await handle.describe()
    assert description.status != WorkflowExecutionStatus.RUNNING
    assert (await api.get(f"/devices/{scheduled.device['id']}/results")).status_code == 404
