"""What a run costs in Temporal history, on the real dev server (the design budget is 12)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from netcron.messages import TaskMessage
from netcron.retry import wait_for
from netcron.runs import RunStatus
from netcron.runspec import SIGNAL_RESULT, SIGNAL_STOP, WORKFLOW_NAME, RecordRequest, ScheduleInput
from netcron.workflows.schedule import ScheduleWorkflow

from .conftest import make_spec, result_for, until

RUNS = 4
EVENTS_PER_RUN_BUDGET = 12


@pytest.fixture(scope="module")
async def dev_client(temporal_address: str) -> AsyncIterator[Client]:
    async def connect() -> Client:
        return await Client.connect(temporal_address, data_converter=pydantic_data_converter)

    yield await wait_for("the Temporal dev server", connect, timeout=30)


async def test_a_happy_run_costs_at_most_twelve_history_events(dev_client: Client) -> None:
    workflow_id = f"schedule-{uuid.uuid4()}"
    records: list[RecordRequest] = []
    background: set[asyncio.Task[None]] = set()

    @activity.defn(name="publish_task")
    async def publish_task(task: TaskMessage) -> bool:
        """Plays executor and relay: the result is signalled right after the publish."""
        handle = dev_client.get_workflow_handle(workflow_id)
        signal = asyncio.create_task(handle.signal(SIGNAL_RESULT, result_for(task)))
        background.add(signal)
        return True

    @activity.defn(name="record_run")
    async def record_run(request: RecordRequest) -> None:
        records.append(request)

    task_queue = f"cost-{uuid.uuid4()}"
    async with Worker(
        dev_client,
        task_queue=task_queue,
        workflows=[ScheduleWorkflow],
        activities=[publish_task, record_run],
    ):
        handle = await dev_client.start_workflow(
            WORKFLOW_NAME,
            ScheduleInput(spec=make_spec(cron="* * * * * *")),
            id=workflow_id,
            task_queue=task_queue,
        )
        await until(lambda: len(records) >= RUNS, timeout=RUNS + 10)
        await handle.signal(SIGNAL_STOP)
        await handle.result()
    assert {r.record.status for r in records} == {RunStatus.SUCCEEDED}
    events = [event async for event in handle.fetch_history_events()]
    timers = [i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    markers = [
        i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    runs = len(markers) // 2
    span = events[timers[0] : markers[-1] + 1]
    per_run = len(span) / runs
    print(f"history events per run: {per_run:.1f} ({len(span)} events, {runs} runs)")
    assert per_run <= EVENTS_PER_RUN_BUDGET
