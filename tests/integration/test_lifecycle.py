"""Schedule lifecycle on the whole real stack: pause, resume, run now, edits, deletes, repair."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from netcron.dev import DevStack

from .test_pipeline import eventually

pytestmark = pytest.mark.integration


async def _create(api: httpx.AsyncClient, cron: str, text: str = "show version") -> dict[str, Any]:
    device = (
        await api.post(
            "/devices",
            json={
                "name": f"lc-{uuid.uuid4().hex[:8]}",
                "host": "192.0.2.20",
                "platform": "arista_eos",
            },
        )
    ).json()
    command = (
        await api.post(f"/devices/{device['id']}/commands", json={"name": "c", "text": text})
    ).json()
    response = await api.post(
        f"/devices/{device['id']}/commands/{command['id']}/schedules", json={"cron": cron}
    )
    assert response.status_code == 201, response.text
    schedule: dict[str, Any] = response.json()
    return schedule


def _path(schedule: dict[str, Any]) -> str:
    return (
        f"/devices/{schedule['device_id']}/commands/{schedule['command_id']}"
        f"/schedules/{schedule['id']}"
    )


async def _runs(
    api: httpx.AsyncClient, schedule: dict[str, Any], **params: Any
) -> list[dict[str, Any]]:
    response = await api.get(
        f"/devices/{schedule['device_id']}/results",
        params={"schedule_id": schedule["id"], "limit": 500, **params},
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_pause_stops_the_runs_and_resume_restarts_them(api: httpx.AsyncClient) -> None:
    schedule = await _create(api, "* * * * * *")

    async def succeeded() -> list[dict[str, Any]]:
        return await _runs(api, schedule, status="succeeded")

    await eventually(succeeded)
    assert (await api.patch(_path(schedule), json={"is_active": False})).status_code == 200
    await asyncio.sleep(1.5)
    paused_count = len(await _runs(api, schedule))
    await asyncio.sleep(3)
    assert len(await _runs(api, schedule)) == paused_count
    assert (await api.patch(_path(schedule), json={"is_active": True})).status_code == 200

    async def more() -> bool:
        return (
            len(await _runs(api, schedule, status="succeeded")) > paused_count - 1
            and len(await _runs(api, schedule)) > paused_count
        )

    assert await eventually(more)


async def test_run_now_gives_a_result_within_seconds(api: httpx.AsyncClient) -> None:
    schedule = await _create(api, "0 0 1 1 *")
    response = await api.post(f"{_path(schedule)}/runs")
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]

    async def done() -> dict[str, Any] | None:
        run = await api.get(f"/devices/{schedule['device_id']}/results/{run_id}")
        body: dict[str, Any] = run.json()
        return body if run.status_code == 200 and body["status"] == "succeeded" else None

    run = await eventually(done, timeout=10)
    assert "Arista" in run["output"]


async def test_a_command_change_shows_in_the_next_fire(api: httpx.AsyncClient) -> None:
    schedule = await _create(api, "* * * * * *")
    await eventually(lambda: _runs(api, schedule, status="succeeded"))
    path = f"/devices/{schedule['device_id']}/commands/{schedule['command_id']}"
    assert (await api.patch(path, json={"text": "show clock"})).status_code == 200

    async def changed() -> list[dict[str, Any]]:
        return [
            r
            for r in await _runs(api, schedule, status="succeeded")
            if r["command"] == "show clock"
        ]

    await eventually(changed)


async def test_a_deleted_schedule_records_nothing_more(
    api: httpx.AsyncClient, temporal: Client
) -> None:
    schedule = await _create(api, "* * * * * *")
    await eventually(lambda: _runs(api, schedule, status="succeeded"))
    assert (await api.delete(_path(schedule))).status_code == 204
    description = await temporal.get_workflow_handle(schedule["workflow_id"]).describe()
    # It takes the stop and ends (completed); terminated if no worker took it in time.
    ended = (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.TERMINATED)
    assert description.status in ended
    await asyncio.sleep(2.5)
    assert await _runs(api, schedule) == []


@pytest.mark.disruptive
async def test_reconciliation_delivers_a_change_made_while_temporal_was_down(
    api: httpx.AsyncClient, temporal: Client, stack: DevStack
) -> None:
    schedule = await _create(api, "0 0 1 1 *")
    assert stack.temporal is not None
    port = stack.temporal.port
    stack.temporal.stop()
    try:
        response = await api.patch(_path(schedule), json={"cron": "* * * * * *"})
        assert response.status_code == 200
        assert response.json()["spec_version"] == 2
    finally:
        stack.temporal.start(preferred_port=port)
    handle = temporal.get_workflow_handle(schedule["workflow_id"])

    async def delivered() -> bool:
        try:
            state = await handle.query("state", result_type=dict)
        except Exception:
            return False
        return bool(state["version"] == 2)

    assert await eventually(delivered, timeout=45)

    async def fired() -> list[dict[str, Any]]:
        return await _runs(api, schedule, status="succeeded")

    await eventually(fired, timeout=60)
