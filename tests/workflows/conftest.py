"""Workflow tests: Temporal's time-skipping server, a real worker, stubbed activities."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from netcron.devstack import find_binary
from netcron.firelead import FireLead
from netcron.messages import ResultMessage, TaskMessage
from netcron.runs import RunStatus
from netcron.runspec import (
    SIGNAL_RESULT,
    WORKFLOW_NAME,
    DeviceTarget,
    RecordRequest,
    RunSpec,
    ScheduleInput,
)
from netcron.workflows.schedule import ScheduleWorkflow

SCHEDULE_ID = uuid.UUID("11111111-1111-1111-1111-111111111111")
DEVICE_ID = uuid.UUID("22222222-2222-2222-2222-222222222222")
COMMAND_ID = uuid.UUID("33333333-3333-3333-3333-333333333333")


def make_spec(**changes: object) -> RunSpec:
    spec = RunSpec(
        version=1,
        schedule_id=SCHEDULE_ID,
        device_id=DEVICE_ID,
        command_id=COMMAND_ID,
        cron="* * * * *",
        ttl_seconds=30,
        device=DeviceTarget(host="10.0.0.1", port=22, platform="cisco_ios", credentials="token"),
        command="show version",
    )
    return spec.model_copy(update=changes)


@dataclass
class Stubs:
    """Stand-ins for the two local activities, recording what the workflow asked."""

    tasks: list[TaskMessage] = field(default_factory=list)
    records: list[RecordRequest] = field(default_factory=list)
    schedule_gone: bool = False
    #: Until this time.monotonic(), record_run fails as it does while the api is down.
    refuse_records_until: float = 0.0
    #: Seconds each record takes (the api's round trip).
    record_delay: float = 0.0

    @activity.defn(name="publish_task")
    async def publish_task(self, task: TaskMessage) -> bool:
        self.tasks.append(task)
        return True

    @activity.defn(name="record_run")
    async def record_run(self, request: RecordRequest) -> None:
        if self.schedule_gone:
            raise ApplicationError("gone", type="ScheduleGone", non_retryable=True)
        if time.monotonic() < self.refuse_records_until:
            raise ConnectionRefusedError("the api is down")
        await asyncio.sleep(self.record_delay)
        self.records.append(request)

    def statuses(self) -> list[RunStatus]:
        return [request.record.status for request in self.records]


async def until(check: Callable[[], object], timeout: float = 10) -> None:
    """Wait in real time for a condition the worker will make true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.02)


def result_for(task: TaskMessage, status: RunStatus = RunStatus.SUCCEEDED) -> ResultMessage:
    return ResultMessage.for_task(task, status, "test-executor", output="ok")


async def send_result(handle: WorkflowHandle[object, object], result: ResultMessage) -> None:
    await handle.signal(SIGNAL_RESULT, result)


@dataclass
class Harness:
    env: WorkflowEnvironment
    client: Client
    stubs: Stubs
    task_queue: str
    handles: list[WorkflowHandle[object, object]] = field(default_factory=list)

    async def start(
        self,
        spec: RunSpec,
        last_fire_at: datetime | None = None,
        fire_lead: FireLead | None = None,
    ) -> WorkflowHandle[object, object]:
        handle: WorkflowHandle[object, object] = await self.client.start_workflow(
            WORKFLOW_NAME,
            ScheduleInput(spec=spec, last_fire_at=last_fire_at, fire_lead=fire_lead or FireLead()),
            id=f"schedule-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )
        self.handles.append(handle)
        return handle

    async def terminate_all(self) -> None:
        """A workflow left running without its worker would stall the shared test clock."""
        for handle in self.handles:
            with contextlib.suppress(Exception):
                await handle.terminate()


@pytest.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """One test server per test (0.2 s): a shared clock lets one test stall the next."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=find_binary("temporal-test-server"),
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment) -> AsyncIterator[Harness]:
    stubs = Stubs()
    task_queue = f"test-{uuid.uuid4()}"
    async with Worker(
        time_skipping.client,
        task_queue=task_queue,
        workflows=[ScheduleWorkflow],
        activities=[stubs.publish_task, stubs.record_run],
    ):
        harness = Harness(time_skipping, time_skipping.client, stubs, task_queue)
        yield harness
        await harness.terminate_all()
