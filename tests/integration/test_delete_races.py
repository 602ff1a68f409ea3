"""Deleted means deleted: a reconciliation pass that read a schedule before its delete."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from nats.aio.msg import Msg
from temporalio.client import Client, WorkflowExecutionStatus

from netcron.api.orchestrator import RunningWorkflow, TemporalOrchestrator
from netcron.api.reconcile import reconcile
from netcron.db.session import create_engine, create_sessionmaker
from netcron.dev import DevStack
from netcron.runspec import workflow_id_for

pytestmark = pytest.mark.integration


class HeldOrchestrator(TemporalOrchestrator):
    """Loses the workflow, lists Temporal, then holds the pass until released."""

    def __init__(self, client: Client, task_queue: str, lost: uuid.UUID) -> None:
        super().__init__(client, task_queue)
        self.lost = lost
        self.listed = asyncio.Event()
        self.release = asyncio.Event()

    async def inventory(self) -> dict[uuid.UUID, RunningWorkflow]:
        # The workflow disappears (a lost history, an operator's terminate) just before
        # the pass lists Temporal: the pass will want to start it again.
        await self.client.get_workflow_handle(workflow_id_for(self.lost)).terminate()
        running = await super().inventory()
        self.listed.set()
        await self.release.wait()
        return running


@pytest.fixture
async def tasks_seen(stack: DevStack) -> AsyncIterator[list[tuple[float, dict[str, Any]]]]:
    """Every task published to the broker while the test runs, with its arrival time."""
    seen: list[tuple[float, dict[str, Any]]] = []
    tap = await nats.connect(stack.env["NETCRON_NATS_URL"])

    async def on_task(msg: Msg) -> None:
        seen.append((time.monotonic(), json.loads(msg.data)))

    await tap.subscribe("netcron.tasks.>", cb=on_task)
    yield seen
    await tap.close()


async def test_a_pass_holding_a_deleted_schedule_does_not_start_its_workflow(
    stack: DevStack,
    api: httpx.AsyncClient,
    temporal: Client,
    tasks_seen: list[tuple[float, dict[str, Any]]],
) -> None:
    device = (
        await api.post(
            "/devices",
            json={"name": f"race-{uuid.uuid4().hex[:8]}", "host": "192.0.2.9", "platform": "linux"},
        )
    ).json()
    command = (
        await api.post(f"/devices/{device['id']}/commands", json={"name": "u", "text": "uptime"})
    ).json()
    schedule = (
        await api.post(
            f"/devices/{device['id']}/commands/{command['id']}/schedules",
            json={"cron": "* * * * * *"},
        )
    ).json()
    schedule_id = uuid.UUID(schedule["id"])
    orchestrator = HeldOrchestrator(temporal, stack.settings.temporal_task_queue, schedule_id)
    engine = create_engine(stack.env["NETCRON_DATABASE_URL"])
    try:
        sessionmaker = create_sessionmaker(engine)
        for _ in range(20):  # the api's own passes (every 2 s) may hold the lock a moment
            reconciling = asyncio.create_task(reconcile(sessionmaker, orchestrator))
            listed = asyncio.create_task(orchestrator.listed.wait())
            await asyncio.wait({reconciling, listed}, return_when=asyncio.FIRST_COMPLETED)
            if listed.done():
                break
            listed.cancel()
            await asyncio.sleep(0.3)

        response = await api.delete(f"/devices/{device['id']}")
        assert response.status_code == 204, response.text
        deleted_at = time.monotonic()

        orchestrator.release.set()
        repairs = await asyncio.wait_for(reconciling, 20)
    finally:
        await engine.dispose()

    assert not repairs.skipped, "another pass held the lock; the race was not exercised"
    assert schedule_id not in repairs.started
    description = await temporal.get_workflow_handle(workflow_id_for(schedule_id)).describe()
    assert description.status != WorkflowExecutionStatus.RUNNING
    await asyncio.sleep(2.5)  # two fires' worth of a `* * * * * *` schedule
    late = [
        task["run_id"]
        for at, task in tasks_seen
        if at > deleted_at and task["schedule_id"] == str(schedule_id)
    ]
    assert late == [], f"tasks published after the delete answered: {late}"
