"""The api's port to Temporal: start, update and stop schedule workflows.

:class:`TemporalOrchestrator` is the real one; :class:`InMemoryOrchestrator` is the
double that HTTP tests use when they are about HTTP behaviour, not Temporal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from netcron.codec import data_converter
from netcron.config import Settings
from netcron.jobspec import (
    JOB_WORKFLOW_NAME,
    FireRequest,
    JobInput,
    JobSpec,
    job_workflow_id_for,
)
from netcron.observability.tracing import temporal_interceptors
from netcron.runspec import (
    MEMO_SPEC_VERSION,
    SIGNAL_UPDATE,
    UPDATE_SPEC,
    UPDATE_STOP,
    UPDATE_TRIGGER,
    WORKFLOW_NAME,
    RunSpec,
    ScheduleInput,
    workflow_id_for,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

RPC_TIMEOUT = timedelta(seconds=5)
#: How long the api waits for a workflow to take a spec or a stop before it falls back
#: (a durable signal for a spec, termination for a stop).
HANDOFF_TIMEOUT = timedelta(seconds=3)
#: The signal that follows a handoff no worker took: a request answers within both.
SIGNAL_TIMEOUT = timedelta(seconds=2)
#: A page of the visibility listing holds 1,000 workflows with their memos.
LISTING_PAGE = 1000
LISTING_TIMEOUT = timedelta(seconds=30)
#: Temporal calls one api request or reconciliation pass makes at once.
CALLS_AT_ONCE = 16


def _within(limit: timedelta) -> asyncio.Timeout:
    """A bound on one call, retries included: the SDK retries an unreachable server with
    backoff, and its ``rpc_timeout`` bounds each attempt, not the call."""
    return asyncio.timeout(limit.total_seconds())


class OrchestratorUnavailable(RuntimeError):
    """Temporal could not be reached; nothing was changed there."""


class WorkflowGone(RuntimeError):
    """The schedule's workflow is not running (reconciliation will start it again)."""


@dataclass(frozen=True)
class RunningWorkflow:
    """A running schedule workflow as Temporal's visibility lists it."""

    spec_version: int | None
    started_at: datetime


class Orchestrator(Protocol):
    async def start(self, schedule: ScheduleInput) -> str: ...

    async def start_job(self, job: JobInput) -> str: ...

    async def update_job(self, spec: JobSpec) -> int | None: ...

    async def stop_job(self, job_id: UUID) -> None: ...

    async def trigger_job(self, fire: FireRequest) -> None: ...

    async def update(self, spec: RunSpec) -> int | None: ...

    async def stop(self, schedule_id: UUID) -> None: ...

    async def is_running(self, schedule_id: UUID) -> bool: ...

    async def trigger(self, schedule_id: UUID) -> str: ...

    async def inventory(self) -> dict[UUID, RunningWorkflow]: ...

    async def job_inventory(self) -> dict[UUID, RunningWorkflow]: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


class TemporalOrchestrator:
    """Schedule workflows addressed by name, so the api imports no workflow code."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    @classmethod
    async def connect(cls, settings: Settings) -> TemporalOrchestrator:
        """A lazy client: the api starts (and answers reads) while Temporal is down."""
        client = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings.secret_key),
            interceptors=temporal_interceptors(),
            lazy=True,
        )
        return cls(client, settings.temporal_task_queue)

    async def start(self, schedule: ScheduleInput) -> str:
        workflow_id = workflow_id_for(schedule.spec.schedule_id)
        await self._start(WORKFLOW_NAME, schedule, workflow_id, schedule.spec.version)
        return workflow_id

    async def start_job(self, job: JobInput) -> str:
        workflow_id = job_workflow_id_for(job.spec.job_id)
        await self._start(JOB_WORKFLOW_NAME, job, workflow_id, job.spec.version)
        return workflow_id

    async def _start(self, name: str, arg: BaseModel, workflow_id: str, version: int) -> None:
        try:
            async with _within(RPC_TIMEOUT):
                await self.client.start_workflow(
                    name,
                    arg,
                    id=workflow_id,
                    task_queue=self.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    memo={MEMO_SPEC_VERSION: version},
                    rpc_timeout=RPC_TIMEOUT,
                )
        except RPCError as exc:
            raise OrchestratorUnavailable(
                f"Temporal refused to start {workflow_id}: {exc}"
            ) from exc
        except Exception as exc:
            raise OrchestratorUnavailable(f"Temporal is unreachable: {exc}") from exc
        log.info("started workflow", extra={"workflow_id": workflow_id})

    async def update(self, spec: RunSpec) -> int | None:
        """Hand the workflow a newer spec and wait until it holds it; returns the version
        it held before (None when it went as a signal).

        Through an update, so that once this returns no fire decided under the old spec
        is still being published. When no worker takes it in time, the spec goes as a
        signal instead: durable, and applied before the workflow's next fire.
        """
        return await self._hand_over(workflow_id_for(spec.schedule_id), spec, spec.version)

    async def update_job(self, spec: JobSpec) -> int | None:
        """As :meth:`update`, for a job's workflow."""
        return await self._hand_over(job_workflow_id_for(spec.job_id), spec, spec.version)

    async def _hand_over(self, workflow_id: str, spec: BaseModel, version: int) -> int | None:
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            async with _within(HANDOFF_TIMEOUT):
                before: int = await handle.execute_update(
                    UPDATE_SPEC, spec, result_type=int, rpc_timeout=HANDOFF_TIMEOUT
                )
            return before
        except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
            log.warning(
                "no worker took spec v%d in time; sent it as a signal",
                version,
                extra={"workflow_id": handle.id},
            )
        except WorkflowUpdateFailedError as exc:
            raise OrchestratorUnavailable(f"{handle.id} refused the spec: {exc.cause}") from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowGone(f"{handle.id} is not running") from exc
            if exc.status != RPCStatusCode.DEADLINE_EXCEEDED:
                raise OrchestratorUnavailable(f"cannot update {handle.id}: {exc}") from exc
        except Exception as exc:
            raise OrchestratorUnavailable(f"cannot update {handle.id}: {exc}") from exc
        try:
            async with _within(SIGNAL_TIMEOUT):
                await handle.signal(SIGNAL_UPDATE, spec, rpc_timeout=SIGNAL_TIMEOUT)
        except Exception as exc:
            raise OrchestratorUnavailable(f"cannot update {handle.id}: {exc}") from exc
        return None

    async def stop(self, schedule_id: UUID) -> None:
        """Stop the workflow for good: a deleted schedule must never fire again.

        First the ``stop_firing`` update, which returns only once a publish in flight
        has finished and nothing more can be published; then termination, which also
        ends a workflow whose worker did not answer in time.
        """
        await self._stop(workflow_id_for(schedule_id), "schedule deleted")

    async def stop_job(self, job_id: UUID) -> None:
        """As :meth:`stop`; termination also cancels the fires the job's workflow drives."""
        await self._stop(job_workflow_id_for(job_id), "job deleted")

    async def _stop(self, workflow_id: str, reason: str) -> None:
        handle = self.client.get_workflow_handle(workflow_id)
        with contextlib.suppress(Exception):
            async with _within(HANDOFF_TIMEOUT):
                await handle.execute_update(UPDATE_STOP, rpc_timeout=HANDOFF_TIMEOUT)
        try:
            async with _within(RPC_TIMEOUT):
                await handle.terminate(reason=reason, rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return
            raise OrchestratorUnavailable(f"cannot stop {handle.id}: {exc}") from exc
        except Exception as exc:
            raise OrchestratorUnavailable(f"cannot stop {handle.id}: {exc}") from exc
        log.info("terminated workflow", extra={"workflow_id": handle.id})

    async def is_running(self, schedule_id: UUID) -> bool:
        handle = self.client.get_workflow_handle(workflow_id_for(schedule_id))
        try:
            async with _within(RPC_TIMEOUT):
                description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise OrchestratorUnavailable(str(exc)) from exc
        return bool(
            description.raw_description.workflow_execution_info.status
            == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
        )

    async def trigger(self, schedule_id: UUID) -> str:
        """Run now through the workflow's ``trigger`` update; returns the new run id."""
        run_id: str = await self._trigger(workflow_id_for(schedule_id))
        return run_id

    async def trigger_job(self, fire: FireRequest) -> None:
        """Fire the job now (the fire's row exists already: the api opened it)."""
        await self._trigger(job_workflow_id_for(fire.job_id), fire)

    async def _trigger(self, workflow_id: str, *args: BaseModel) -> str:
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            async with _within(RPC_TIMEOUT):
                answer: str = await handle.execute_update(
                    UPDATE_TRIGGER, args=list(args), result_type=str, rpc_timeout=RPC_TIMEOUT
                )
        except WorkflowUpdateFailedError as exc:
            raise WorkflowGone(f"{handle.id} refused the run: {exc.cause or exc}") from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowGone(f"{handle.id} is not running") from exc
            raise OrchestratorUnavailable(f"cannot reach {handle.id}: {exc}") from exc
        except Exception as exc:
            raise OrchestratorUnavailable(f"cannot reach {handle.id}: {exc}") from exc
        return answer

    async def inventory(self) -> dict[UUID, RunningWorkflow]:
        """Every running schedule workflow with its spec version: one visibility listing
        (a page per 1,000 workflows), no call per workflow.

        Pages are read raw and each page's memos decoded in one batch: the SDK's iterator
        builds a full execution object and decodes each memo on its own, which cost 40 %
        more than the listing itself.
        """
        return await self._inventory(WORKFLOW_NAME, "schedule-")

    async def job_inventory(self) -> dict[UUID, RunningWorkflow]:
        """Every running job workflow with its spec version, listed as schedules are."""
        return await self._inventory(JOB_WORKFLOW_NAME, "job-")

    async def _inventory(self, name: str, prefix: str) -> dict[UUID, RunningWorkflow]:
        query = f"WorkflowType = '{name}' AND ExecutionStatus = 'Running'"
        found: dict[UUID, RunningWorkflow] = {}
        token = b""
        try:
            while True:
                page = await self.client.workflow_service.list_workflow_executions(
                    ListWorkflowExecutionsRequest(
                        namespace=self.client.namespace,
                        page_size=LISTING_PAGE,
                        next_page_token=token,
                        query=query,
                    ),
                    retry=True,
                    timeout=LISTING_TIMEOUT,
                )
                found.update(await self._running(page.executions, prefix))
                token = page.next_page_token
                if not token:
                    return found
        except Exception as exc:
            raise OrchestratorUnavailable(str(exc)) from exc

    async def _running(
        self, executions: Sequence[WorkflowExecutionInfo], prefix: str
    ) -> dict[UUID, RunningWorkflow]:
        ids: list[UUID] = []
        kept: list[WorkflowExecutionInfo] = []
        for info in executions:
            with contextlib.suppress(ValueError):
                ids.append(UUID(info.execution.workflow_id.removeprefix(prefix)))
                kept.append(info)
        memos = [info.memo.fields.get(MEMO_SPEC_VERSION) for info in kept]
        known = [payload for payload in memos if payload is not None]
        versions = iter(await self.client.data_converter.decode(known))
        return {
            schedule_id: RunningWorkflow(
                spec_version=int(next(versions)) if payload is not None else None,
                started_at=info.start_time.ToDatetime(tzinfo=UTC),
            )
            for schedule_id, info, payload in zip(ids, kept, memos, strict=True)
        }

    async def ready(self) -> bool:
        try:
            await self.client.service_client.check_health(timeout=timedelta(seconds=2))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        return None


async def for_each(ids: Sequence[T], call: Callable[[T], Awaitable[object]]) -> None:
    """``call`` every id, ``CALLS_AT_ONCE`` at a time; then the first failure is raised."""
    gate = asyncio.Semaphore(CALLS_AT_ONCE)

    async def one(ident: T) -> None:
        async with gate:
            await call(ident)

    outcomes = await asyncio.gather(*(one(ident) for ident in ids), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


class InMemoryOrchestrator:
    """A test double: remembers what it was asked; ``available=False`` simulates an outage."""

    def __init__(self) -> None:
        self.available = True
        self.running: dict[UUID, RunSpec] = {}
        self.started: list[ScheduleInput] = []
        self.updated: list[RunSpec] = []
        self.stopped: list[UUID] = []
        self.triggered: list[UUID] = []
        self.jobs: dict[UUID, JobSpec] = {}
        self.fires: list[FireRequest] = []

    def _check(self) -> None:
        if not self.available:
            raise OrchestratorUnavailable("Temporal is unreachable (simulated)")

    async def start(self, schedule: ScheduleInput) -> str:
        self._check()
        self.started.append(schedule)
        self.running[schedule.spec.schedule_id] = schedule.spec
        return workflow_id_for(schedule.spec.schedule_id)

    async def update(self, spec: RunSpec) -> int | None:
        self._check()
        if spec.schedule_id not in self.running:
            raise WorkflowGone(f"schedule-{spec.schedule_id} is not running")
        before = self.running[spec.schedule_id].version
        self.updated.append(spec)
        if spec.version >= before:
            self.running[spec.schedule_id] = spec
        return before

    async def stop(self, schedule_id: UUID) -> None:
        self._check()
        self.stopped.append(schedule_id)
        self.running.pop(schedule_id, None)

    async def is_running(self, schedule_id: UUID) -> bool:
        self._check()
        return schedule_id in self.running

    async def trigger(self, schedule_id: UUID) -> str:
        self._check()
        if schedule_id not in self.running:
            raise WorkflowGone(f"schedule-{schedule_id} is not running")
        self.triggered.append(schedule_id)
        return f"{schedule_id}:0:manual-{len(self.triggered)}"

    async def start_job(self, job: JobInput) -> str:
        self._check()
        self.jobs[job.spec.job_id] = job.spec
        return job_workflow_id_for(job.spec.job_id)

    async def update_job(self, spec: JobSpec) -> int | None:
        self._check()
        if spec.job_id not in self.jobs:
            raise WorkflowGone(f"job-{spec.job_id} is not running")
        before = self.jobs[spec.job_id].version
        if spec.version >= before:
            self.jobs[spec.job_id] = spec
        return before

    async def stop_job(self, job_id: UUID) -> None:
        self._check()
        self.stopped.append(job_id)
        self.jobs.pop(job_id, None)

    async def trigger_job(self, fire: FireRequest) -> None:
        self._check()
        if fire.job_id not in self.jobs:
            raise WorkflowGone(f"job-{fire.job_id} is not running")
        self.fires.append(fire)

    async def inventory(self) -> dict[UUID, RunningWorkflow]:
        self._check()
        return {
            schedule_id: RunningWorkflow(spec.version, datetime.min.replace(tzinfo=UTC))
            for schedule_id, spec in self.running.items()
        }

    async def job_inventory(self) -> dict[UUID, RunningWorkflow]:
        self._check()
        return {
            job_id: RunningWorkflow(spec.version, datetime.min.replace(tzinfo=UTC))
            for job_id, spec in self.jobs.items()
        }

    async def ready(self) -> bool:
        return self.available

    async def close(self) -> None:
        return None
