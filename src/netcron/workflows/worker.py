"""`netcron worker`: the Temporal worker (schedules, jobs and their fires) and the results relay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import httpx
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from netcron.broker.jetstream import connect_nats, ensure_streams
from netcron.config import Settings
from netcron.observability.backlog import sample_backlog_forever
from netcron.observability.metrics import WORKER, serve_metrics
from netcron.shutdown import stop_event
from netcron.temporal_client import connect_temporal
from netcron.workflows.activities import ScheduleActivities
from netcron.workflows.fire import FireActivities
from netcron.workflows.job import JobWorkflow
from netcron.workflows.relay import ResultsRelay
from netcron.workflows.schedule import ScheduleWorkflow

log = logging.getLogger(__name__)

#: How long a workflow task waits on this worker's own (sticky) queue before any worker
#: may take it. The SDK's 10 s is how long every schedule of a crashed worker stood still
#: (`netcron chaos`); a live worker takes its tasks within milliseconds.
STICKY_TIMEOUT = timedelta(seconds=3)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Poll for schedule workflows and relay results until ``stop`` is set.

    Workflows run outside Temporal's sandbox here: the sandbox re-runs every activation
    through its import and proxy machinery, and at 30 runs/s it cost 11 % of the worker's
    CPU and most of the fire lag's tail (p99 113 ms, 32 ms without it). The workflow tests
    run it inside the sandbox (the test workers' default), which is where a
    non-deterministic call would be caught.
    """
    stop = stop or stop_event()
    temporal = await connect_temporal(settings)
    nc = await connect_nats(settings.nats_url, "netcron-worker", timeout=settings.connect_timeout)
    js = nc.jetstream()
    await ensure_streams(js)
    metrics = serve_metrics(WORKER, settings.metrics_port, "worker")
    sampler = asyncio.create_task(sample_backlog_forever(js)) if metrics else None
    key = settings.client_api_key()
    if not key:
        log.warning("no API key with the 'results' scope: the api will refuse run records")
    headers = {"X-API-Key": key} if key else {}
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=10, headers=headers) as api:
        activities = ScheduleActivities(js, api)
        fires = FireActivities(js, api)
        worker = Worker(
            temporal,
            task_queue=settings.temporal_task_queue,
            workflows=[ScheduleWorkflow, JobWorkflow],
            activities=[activities.publish_task, activities.record_run, fires.run_fire],
            max_concurrent_local_activities=256,
            sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        relay = ResultsRelay(js, temporal, activities)
        async with worker:
            log.info("worker is polling task queue %s", settings.temporal_task_queue)
            await relay.run(stop)
            log.info("worker is stopping")
            await activities.progress.flush()
    if sampler is not None:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    if metrics is not None:
        metrics.shutdown()
    await nc.close()
