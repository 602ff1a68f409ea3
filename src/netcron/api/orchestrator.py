"""The api's port to Temporal: start, update and stop schedule workflows.

:class:`TemporalOrchestrator` is the real one; :class:`InMemoryOrchestrator` is the
double that HTTP tests use when they are about HTTP behaviour, not Temporal.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client, WorkflowQueryRejectedError, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from netcron.codec import data_converter
from netcron.config import Settings
from netcron.runspec import (
    QUERY_STATE,
    SIGNAL_UPDATE,
    UPDATE_TRIGGER,
    WORKFLOW_NAME,
    RunSpec,
    ScheduleInput,
    workflow_id_for,
)

log = logging.getLogger(__name__)

RPC_TIMEOUT = timedelta(seconds=5)


class OrchestratorUnavailable(RuntimeError):
    """Temporal could not be reached; nothing was changed there."""


class WorkflowGone(RuntimeError):
    """The schedule's workflow is not running (reconciliation will start it again)."""


class Orchestrator(Protocol):
    async def start(self, schedule: ScheduleInput) -> str: ...

    async def update(self, spec: RunSpec) -> None: ...

    async def stop(self, schedule_id: UUID) -> None: ...

    async def is_running(self, schedule_id: UUID) -> bool: ...

    async def trigger(self, schedule_id: UUID) -> str: ...

    async def spec_version(self, schedule_id: UUID) -> int | None: ...

    async def running_schedules(self, started_before: datetime | None = None) -> set[UUID]: ...

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
            lazy=True,
        )
        return cls(client, settings.temporal_task_queue)

    async def start(self, schedule: ScheduleInput) -> str:
        workflow_id = workflow_id_for(schedule.spec.schedule_id)
        try:
            await self.client.start_workflow(
                WORKFLOW_NAME,
                schedule,
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                rpc_timeout=RPC_TIMEOUT,
            )
        except RPCError as exc:
            raise OrchestratorUnavailable(
                f"Temporal refused to start {workflow_id}: {exc}"
            ) from exc
        except Exception as exc:
            raise OrchestratorUnavailable(f"Temporal is unreachable: {exc}") from exc
        log.info("started workflow", extra={"workflow_id": workflow_id})
        return workflow_id

    async def update(self, spec: RunSpec) -> None:
        handle = self.client.get_workflow_handle(workflow_id_for(spec.schedule_id))
        try:
            await handle.signal(SIGNAL_UPDATE, spec, rpc_timeout=RPC_TIMEOUT)
        except Exception as exc:
            raise OrchestratorUnavailable(f"cannot update {handle.id}: {exc}") from exc

    async def stop(self, schedule_id: UUID) -> None:
        """Terminate at once: a deleted schedule must never fire again."""
        handle = self.client.get_workflow_handle(workflow_id_for(schedule_id))
        try:
            await handle.terminate(reason="schedule deleted", rpc_timeout=RPC_TIMEOUT)
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
        handle = self.client.get_workflow_handle(workflow_id_for(schedule_id))
        try:
            run_id: str = await handle.execute_update(
                UPDATE_TRIGGER, result_type=str, rpc_timeout=RPC_TIMEOUT
            )
        except WorkflowUpdateFailedError as exc:
            raise WorkflowGone(f"{handle.id} refused the run: {exc.cause or exc}") from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowGone(f"{handle.id} is not running") from exc
            raise OrchestratorUnavailable(f"cannot reach {handle.id}: {exc}") from exc
        except Exception as exc:
            raise OrchestratorUnavailable(f"cannot reach {handle.id}: {exc}") from exc
        return run_id

    async def spec_version(self, schedule_id: UUID) -> int | None:
        """The spec version the running workflow holds; None when it is not running."""
        if not await self.is_running(schedule_id):
            return None
        handle = self.client.get_workflow_handle(workflow_id_for(schedule_id))
        try:
            state = await handle.query(QUERY_STATE, result_type=dict, rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise OrchestratorUnavailable(str(exc)) from exc
        except WorkflowQueryRejectedError:
            return None
        except Exception as exc:
            raise OrchestratorUnavailable(str(exc)) from exc
        version = state.get("version")
        return int(version) if version is not None else None

    async def running_schedules(self, started_before: datetime | None = None) -> set[UUID]:
        """Schedule ids of running ScheduleWorkflows (Temporal's visibility), optionally
        only those started before a moment (a schedule being created has its workflow
        started a moment before its row is committed)."""
        query = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"
        found: set[UUID] = set()
        try:
            async for execution in self.client.list_workflows(query, rpc_timeout=RPC_TIMEOUT):
                if started_before and execution.start_time > started_before:
                    continue
                ident = execution.id.removeprefix("schedule-")
                with contextlib.suppress(ValueError):
                    found.add(UUID(ident))
        except Exception as exc:
            raise OrchestratorUnavailable(str(exc)) from exc
        return found

    async def ready(self) -> bool:
        try:
            await self.client.service_client.check_health(timeout=timedelta(seconds=2))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        return None


class InMemoryOrchestrator:
    """A test double: remembers what it was asked; ``available=False`` simulates an outage."""

    def __init__(self) -> None:
        self.available = True
        self.running: dict[UUID, RunSpec] = {}
        self.started: list[ScheduleInput] = []
        self.updated: list[RunSpec] = []
        self.stopped: list[UUID] = []
        self.triggered: list[UUID] = []

    def _check(self) -> None:
        if not self.available:
            raise OrchestratorUnavailable("Temporal is unreachable (simulated)")

    async def start(self, schedule: ScheduleInput) -> str:
        self._check()
        self.started.append(schedule)
        self.running[schedule.spec.schedule_id] = schedule.spec
        return workflow_id_for(schedule.spec.schedule_id)

    async def update(self, spec: RunSpec) -> None:
        self._check()
        self.updated.append(spec)
        self.running[spec.schedule_id] = spec

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

    async def spec_version(self, schedule_id: UUID) -> int | None:
        self._check()
        spec = self.running.get(schedule_id)
        return spec.version if spec else None

    async def running_schedules(self, started_before: datetime | None = None) -> set[UUID]:
        self._check()
        return set(self.running)

    async def ready(self) -> bool:
        return self.available

    async def close(self) -> None:
        return None
