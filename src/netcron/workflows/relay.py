"""The results relay: results from JetStream to the workflow that waits for them.

``running`` (which executors send only for commands that take a while) is recorded
straight through the api: a workflow needs only final results, and a signal per status
would cost history events on every run. A final result is signalled to
``schedule-<schedule_id>``. A message is acked only once the signal or
the record was accepted, so a crash here means redelivery, never a lost result.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from netcron.messages import RELAY_CONSUMER, RESULTS_STREAM, ResultMessage
from netcron.observability.tracing import extract, tracer
from netcron.runs import RunStatus
from netcron.runspec import SIGNAL_RESULT, workflow_id_for
from netcron.workflows.activities import ScheduleActivities, progress_record

log = logging.getLogger(__name__)

RETRY_DELAY = 2.0
#: How long a stopping relay waits for signals in flight (the worker stops within 10 s).
STOP_TIMEOUT = 5.0


class ResultsRelay:
    """A durable pull consumer shared by every worker replica."""

    def __init__(
        self,
        js: JetStreamContext,
        temporal: Client,
        activities: ScheduleActivities,
        batch: int = 64,
    ) -> None:
        self.js = js
        self.temporal = temporal
        self.activities = activities
        self.batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        subscription = await self.js.pull_subscribe_bind(
            durable=RELAY_CONSUMER, stream=RESULTS_STREAM
        )
        log.info("results relay is consuming %s", RESULTS_STREAM)
        in_flight: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            free = self.batch - len(in_flight)
            if free <= 0:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await subscription.fetch(free, timeout=1)
            except TimeoutError:
                continue
            except Exception as exc:
                log.warning("fetching results failed: %r", exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            # Handed on as they come: a result need not wait for the rest of its batch.
            for message in messages:
                task = asyncio.create_task(self.handle(message))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        if in_flight:
            # Unfinished deliveries are not acked: JetStream hands them to another relay.
            _, pending = await asyncio.wait(in_flight, timeout=STOP_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def handle(self, message: Msg) -> None:
        try:
            result = ResultMessage.model_validate_json(message.data)
        except ValidationError as exc:
            log.error("dropping a malformed result message: %s", exc.errors()[:3])
            await message.term()
            return
        extra = {"run_id": result.run_id, "schedule_id": str(result.schedule_id)}
        try:
            with tracer().start_as_current_span(
                "netcron.relay",
                context=extract(message.headers),
                kind=SpanKind.CONSUMER,
                attributes={"netcron.run_id": result.run_id, "netcron.status": result.status.value},
            ):
                if result.status == RunStatus.RUNNING:
                    await self._record_running(result)
                else:
                    self.activities.traces.remember(result.run_id)
                    await self._signal(result)
        except _Gone as gone:
            log.info("result dropped: %s", gone, extra=extra)
        except Exception as exc:
            log.warning("result not handed on, will retry: %s", exc, extra=extra)
            await message.nak(delay=RETRY_DELAY)
            return
        await message.ack()

    async def _signal(self, result: ResultMessage) -> None:
        if result.schedule_id is None:
            raise _Gone("a job run's result on the schedules' subject")
        handle = self.temporal.get_workflow_handle(workflow_id_for(result.schedule_id))
        try:
            await handle.signal(SIGNAL_RESULT, result)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise _Gone(f"workflow {handle.id} is not running") from None
            raise

    async def _record_running(self, result: ResultMessage) -> None:
        request = progress_record(
            result,
            RunStatus.RUNNING,
            started_at=result.started_at,
            executor_id=result.executor_id,
        )
        try:
            await self.activities.post(request)
        except ApplicationError as exc:
            raise _Gone(str(exc)) from None


class _Gone(Exception):
    """The result's schedule or run no longer exists: ack it, apply it nowhere."""
