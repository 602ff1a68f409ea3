"""Races the database decides: the loser gets 404 or 409 with a problem document, never 500."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from netcron.api.orchestrator import InMemoryOrchestrator

from .test_results import _post, _record


async def test_a_run_recorded_while_its_device_is_deleted_is_a_404(
    app: FastAPI, client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    async with app.state.engine.connect() as deleting:
        await deleting.execute(
            text("DELETE FROM devices WHERE id = :id"), {"id": schedule["device_id"]}
        )
        # The record waits on the schedule's row lock until the delete commits, and
        # then finds no schedule.
        recording = asyncio.create_task(_post(client, schedule, _record(schedule, "running")))
        await asyncio.sleep(0.5)
        assert not recording.done()
        await deleting.commit()
    response = await recording
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == f"schedule {schedule['id']} does not exist"


async def test_a_schedule_created_while_its_device_is_deleted_is_a_404(
    app: FastAPI,
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    command: dict[str, Any],
) -> None:
    path = f"/devices/{command['device_id']}/commands/{command['id']}/schedules"
    async with app.state.engine.connect() as deleting:
        await deleting.execute(
            text("DELETE FROM devices WHERE id = :id"), {"id": command["device_id"]}
        )
        creating = asyncio.create_task(client.post(path, json={"cron": "* * * * *"}))
        await asyncio.sleep(0.5)
        await deleting.commit()
    response = await creating
    assert response.status_code == 404, response.text
    assert orchestrator.started == []


async def test_deleting_a_schedule_twice_at_once_answers_204_and_404(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    path = (
        f"/devices/{schedule['device_id']}/commands/{schedule['command_id']}"
        f"/schedules/{schedule['id']}"
    )
    responses = await asyncio.gather(client.delete(path), client.delete(path))
    assert sorted(r.status_code for r in responses) == [204, 404]
    assert uuid.UUID(schedule["id"]) not in orchestrator.running
