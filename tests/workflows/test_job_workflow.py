"""JobWorkflow on Temporal's time-skipping server: when fires happen, and what each asks for.

The fire itself is the ``run_fire`` activity (tested in ``test_fire.py``); here it is a
stub that records the requests and finishes when the test lets it.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from netcron.jobspec import (
    FIRE_ACTIVITY,
    JOB_WORKFLOW_NAME,
    FireRequest,
    FireSummary,
    JobInput,
    JobSpec,
    fire_id_for,
)
from netcron.runspec import UPDATE_SPEC, UPDATE_STOP, UPDATE_TRIGGER
from netcron.workflows.job import JobWorkflow
from tests.workflows.conftest import until

JOB_ID = uuid.UUID("55555555-5555-5555-5555-555555555555")


@dataclass
class FireStub:
    requests: list[FireRequest] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    hold: bool = False

    @activity.defn(name=FIRE_ACTIVITY)
    async def run_fire(self, request: FireRequest) -> FireSummary:
        self.requests.append(request)
        if self.hold:
            while not self.release.is_set():
                activity.heartbeat()
                await asyncio.sleep(0.05)
        return FireSummary(fire_id=request.fire_id, total=3, counts={"succeeded": 3})


@dataclass
class JobHarness:
    env: WorkflowEnvironment
    client: Client
    stub: FireStub
    task_queue: str

    async def start(self, **spec: object) -> WorkflowHandle[object, object]:
        job = JobInput(spec=JobSpec(job_id=JOB_ID, **spec))  # type: ignore[arg-type]
        return await self.client.start_workflow(
            JOB_WORKFLOW_NAME, job, id=f"job-{uuid.uuid4()}", task_queue=self.task_queue
        )


@pytest.fixture
async def jobs(time_skipping: WorkflowEnvironment) -> AsyncIterator[JobHarness]:
    stub = FireStub()
    task_queue = f"test-{uuid.uuid4()}"
    async with Worker(
        time_skipping.client,
        task_queue=task_queue,
        workflows=[JobWorkflow],
        activities=[stub.run_fire],
    ):
        yield JobHarness(time_skipping, time_skipping.client, stub, task_queue)


async def test_each_cron_time_is_one_fire_with_its_own_deterministic_id(jobs: JobHarness) -> None:
    handle = await jobs.start(cron="*/10 * * * *")
    await jobs.env.sleep(timedelta(minutes=35))
    await until(lambda: len(jobs.stub.requests) >= 3)
    times = [request.scheduled_at for request in jobs.stub.requests[:3]]
    assert all(at.minute % 10 == 0 and at.second == 0 for at in times)
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(minutes=10)] * 2
    for request in jobs.stub.requests:
        assert request.fire_id == fire_id_for(JOB_ID, request.scheduled_at)
        assert request.devices is None and not request.manual
    await handle.execute_update(UPDATE_STOP)
    await handle.result()


async def test_run_now_drives_the_fire_the_api_opened_narrowed_to_its_devices(
    jobs: JobHarness,
) -> None:
    handle = await jobs.start(cron="0 0 1 1 *")
    devices = [uuid.uuid4(), uuid.uuid4()]
    fire = FireRequest(
        job_id=JOB_ID,
        fire_id=uuid.uuid4(),
        scheduled_at=datetime.now(UTC),
        manual=True,
        devices=devices,
    )
    answer = await handle.execute_update(UPDATE_TRIGGER, fire, result_type=str)
    assert answer == str(fire.fire_id)
    await until(lambda: len(jobs.stub.requests) == 1)
    [request] = jobs.stub.requests
    assert request.devices == devices and request.manual and request.fire_id == fire.fire_id
    await handle.terminate()


async def test_a_paused_job_does_not_fire_and_resumes_without_catching_up(
    jobs: JobHarness,
) -> None:
    handle = await jobs.start(cron="* * * * *", is_active=False)
    await jobs.env.sleep(timedelta(minutes=5))
    assert jobs.stub.requests == []
    resumed = JobSpec(job_id=JOB_ID, cron="* * * * *", version=2)
    assert await handle.execute_update(UPDATE_SPEC, resumed, result_type=int) == 1
    await jobs.env.sleep(timedelta(seconds=61))
    await until(lambda: len(jobs.stub.requests) >= 1)
    assert all(r.missed == [] for r in jobs.stub.requests)
    await handle.terminate()


async def test_a_fire_still_running_does_not_hold_the_next_one_back(jobs: JobHarness) -> None:
    # A running activity stops the test server's clock from skipping: real seconds here.
    jobs.stub.hold = True
    handle = await jobs.start(cron="*/2 * * * * *")
    await until(lambda: len(jobs.stub.requests) >= 2, timeout=10)
    state = await handle.query("state")
    assert len(state["fires"]) >= 2
    # Overlap is per device (the api skips a device whose run is pending), so fires overlap.
    assert len({r.fire_id for r in jobs.stub.requests}) == len(jobs.stub.requests)
    jobs.stub.release.set()
    await handle.terminate()


async def test_a_fire_costs_a_few_history_events_and_no_wake_up_of_its_own(
    jobs: JobHarness,
) -> None:
    handle = await jobs.start(cron="* * * * *")
    await jobs.env.sleep(timedelta(minutes=10, seconds=30))
    await until(lambda: len(jobs.stub.requests) >= 10)
    await handle.execute_update(UPDATE_STOP)
    await handle.result()
    events = [event async for event in handle.fetch_history_events()]
    fires = sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED for e in events)
    assert fires >= 10
    # 10 on a quiet machine: the timer, the activity's three events, two workflow tasks.
    assert len(events) / fires <= 30
    canceled = sum(e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED for e in events)
    assert canceled <= 1  # the stop's wake-up only: a fire's end does not wake the loop
