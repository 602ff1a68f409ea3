"""The results relay, with a real NATS and the real Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import nats
import pytest
from nats.js import JetStreamContext
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from netcron.broker.jetstream import ensure_streams, publish
from netcron.messages import RESULTS_STREAM, TASKS_STREAM, ResultMessage
from netcron.retry import wait_for
from netcron.runs import RunStatus
from netcron.runspec import WORKFLOW_NAME, ScheduleInput
from netcron.workflows.activities import ScheduleActivities
from netcron.workflows.relay import ResultsRelay
from netcron.workflows.schedule import ScheduleWorkflow

from .conftest import Stubs, make_spec, result_for, until


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url)
    stream = nc.jetstream()
    for name in (TASKS_STREAM, RESULTS_STREAM):
        with contextlib.suppress(Exception):
            await stream.delete_stream(name)
    await ensure_streams(stream)
    yield stream
    await nc.close()


@pytest.fixture
async def client(temporal_address: str) -> Client:
    async def connect() -> Client:
        return await Client.connect(temporal_address, data_converter=pydantic_data_converter)

    return await wait_for("the Temporal dev server", connect, timeout=30)


async def _results_left(js: JetStreamContext) -> int:
    return int((await js.stream_info(RESULTS_STREAM)).state.messages)


async def test_a_result_reaches_its_workflow_and_is_acked(
    js: JetStreamContext, client: Client
) -> None:
    stubs = Stubs()
    task_queue = f"relay-{uuid.uuid4()}"
    spec = make_spec(schedule_id=uuid.uuid4(), cron="* * * * * *", ttl_seconds=60)
    stop = asyncio.Event()
    async with (
        httpx.AsyncClient(base_url="http://127.0.0.1:9") as api,
        Worker(
            client,
            task_queue=task_queue,
            workflows=[ScheduleWorkflow],
            activities=[stubs.publish_task, stubs.record_run],
        ),
    ):
        handle = await client.start_workflow(
            WORKFLOW_NAME,
            ScheduleInput(spec=spec),
            id=f"schedule-{spec.schedule_id}",
            task_queue=task_queue,
        )
        relay = ResultsRelay(js, client, ScheduleActivities(js, api))
        relay_task = asyncio.create_task(relay.run(stop))
        try:
            await until(lambda: stubs.tasks)
            result = result_for(stubs.tasks[0])
            await publish(js, result.subject, result, result.msg_id)
            await until(lambda: stubs.records)
            assert stubs.records[0].record.run_id == result.run_id
            assert stubs.records[0].record.status == RunStatus.SUCCEEDED
            assert await _results_left(js) == 0
        finally:
            stop.set()
            await relay_task
            await handle.terminate()


async def test_a_result_for_an_unknown_schedule_is_acked_and_dropped(
    js: JetStreamContext, client: Client
) -> None:
    stop = asyncio.Event()
    task = make_spec(schedule_id=uuid.uuid4())
    orphan = ResultMessage.model_validate(
        {
            "run_id": f"{task.schedule_id}:1",
            "schedule_id": task.schedule_id,
            "device_id": task.device_id,
            "command_id": task.command_id,
            "scheduled_at": "2026-01-01T00:00:00Z",
            "status": "succeeded",
            "executor_id": "ex",
        }
    )
    await publish(js, orphan.subject, orphan, orphan.msg_id)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as api:
        relay = ResultsRelay(js, client, ScheduleActivities(js, api))
        relay_task = asyncio.create_task(relay.run(stop))
        try:
            for _ in range(100):
                if await _results_left(js) == 0:
                    break
                await asyncio.sleep(0.05)
            assert await _results_left(js) == 0
        finally:
            stop.set()
            await relay_task
