"""The schedule workflow's two local activities: publish a task, record a run."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
from nats.js import JetStreamContext
from temporalio import activity
from temporalio.exceptions import ApplicationError

from netcron.broker.jetstream import publish
from netcron.messages import ResultMessage, TaskMessage
from netcron.observability.metrics import END_TO_END, FIRE_LAG, lag_seconds
from netcron.observability.tracing import RunContexts, inject, run_trace, tracer
from netcron.runs import RunStatus
from netcron.runspec import RecordRequest, RunRecord
from netcron.workflows.progress import ProgressRecords

log = logging.getLogger(__name__)


def progress_record(
    source: TaskMessage | ResultMessage, status: RunStatus, **fields: object
) -> RecordRequest:
    """A record of a run's progress (queued, running) from a broker message about it."""
    return RecordRequest(
        device_id=source.device_id,
        schedule_id=source.schedule_id,
        record=RunRecord.model_validate(
            {
                "run_id": source.run_id,
                "command_id": source.command_id,
                "status": status,
                "scheduled_at": source.scheduled_at,
                "attempt": source.attempt,
                **fields,
            }
        ),
    )


def result_path(request: RecordRequest) -> str:
    return f"/devices/{request.device_id}/schedules/{request.schedule_id}/result"


class ScheduleActivities:
    """Activities with their clients: JetStream for tasks, the api for records."""

    def __init__(self, js: JetStreamContext, api: httpx.AsyncClient) -> None:
        self.js = js
        self.api = api
        self.progress = ProgressRecords(self.post)
        #: The relay's trace context of each run, for its final record.
        self.traces = RunContexts()

    @activity.defn(name="publish_task")
    async def publish_task(self, task: TaskMessage) -> bool:
        """Publish with ``Nats-Msg-Id``; a retried publish is a broker-side duplicate."""
        with run_trace("netcron.fire", **_run_attributes(task)):
            fresh = await publish(self.js, task.subject, task, task.msg_id)
        if fresh and task.attempt == 1:
            FIRE_LAG.observe(lag_seconds(task.scheduled_at, datetime.now(UTC)))
        extra = {"run_id": task.run_id, "schedule_id": str(task.schedule_id)}
        log.debug("task published%s", "" if fresh else " (duplicate dropped)", extra=extra)
        # Recording `queued` is for people watching; the run must not wait for it.
        self.progress.defer(progress_record(task, RunStatus.QUEUED, command=task.command))
        return fresh

    @activity.defn(name="record_run")
    async def record_run(self, request: RecordRequest) -> None:
        """Record through the api; retried by the workflow until the api takes it."""
        self.progress.settle(request.record.run_id)
        with tracer().start_as_current_span(
            "netcron.record",
            context=self.traces.take(request.record.run_id),
            attributes={
                "netcron.run_id": request.record.run_id,
                "netcron.status": request.record.status.value,
            },
        ):
            await self.post(request)
        if request.record.status.is_final and request.record.started_at is not None:
            END_TO_END.observe(lag_seconds(request.record.scheduled_at, datetime.now(UTC)))
        log.info(
            "run %s recorded",
            request.record.status.value,
            extra={"run_id": request.record.run_id, "schedule_id": str(request.schedule_id)},
        )

    async def post(self, request: RecordRequest) -> None:
        response = await self.api.post(
            result_path(request),
            content=request.record.model_dump_json(),
            headers=dict(inject({"content-type": "application/json", "prefer": "return=minimal"})),
        )
        if response.status_code == 404:
            raise ApplicationError(
                "the schedule no longer exists", type="ScheduleGone", non_retryable=True
            )
        if response.status_code in (400, 409, 413, 422):
            raise ApplicationError(
                f"the api rejected the record: {response.status_code} {response.text[:500]}",
                type="RecordRejected",
                non_retryable=True,
            )
        response.raise_for_status()


def _run_attributes(task: TaskMessage) -> dict[str, str | int]:
    """What a run's spans say about it: ids and platform, never credentials or output."""
    return {
        "netcron.run_id": task.run_id,
        "netcron.schedule_id": str(task.schedule_id),
        "netcron.device_id": str(task.device_id),
        "netcron.platform": task.platform,
        "netcron.attempt": task.attempt,
    }
