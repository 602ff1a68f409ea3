"""The contract of fleets: the api, the job workflow and the fire dispatcher.

A job's workflow holds only what deciding *when* to fire needs (:class:`JobSpec`);
*what* a fire does (the devices, the command, the caps, the retries) is read by the api
when the fire opens, because a selector is evaluated at each fire anyway. A fire is
driven by one activity (:class:`FireRequest` in, :class:`FireSummary` out), so its
Temporal history is the same few events whether it reaches one device or ten thousand.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from netcron.firelead import FireLead
from netcron.platforms import ErrorKind
from netcron.runs import RunStatus
from netcron.runspec import DeviceText, Identifier

JOB_WORKFLOW_NAME = "JobWorkflow"
FIRE_ACTIVITY = "run_fire"
#: Namespace of the deterministic fire ids of cron fires.
_FIRE_NAMESPACE = uuid.UUID("6b1e0a52-3c55-4f0e-9a53-2f4a3c1d7e10")


def job_workflow_id_for(job_id: UUID | str) -> str:
    return f"job-{job_id}"


def fire_id_for(job_id: UUID, scheduled_at: datetime) -> UUID:
    """A cron fire's id: the same fire always gets the same one, so a retried fire
    cannot make a second set of runs."""
    return uuid.uuid5(_FIRE_NAMESPACE, f"{job_id}:{int(scheduled_at.timestamp())}")


def fire_run_id(fire_id: UUID, device_id: UUID) -> str:
    """A job run's id: one run per device per fire."""
    return f"{fire_id}:{device_id}"


class JobSpec(BaseModel):
    """What the job's workflow needs to decide when to fire."""

    version: int = Field(1, ge=1)
    job_id: UUID
    cron: str
    timezone: str = "UTC"
    is_active: bool = True
    starting_deadline_seconds: int = Field(60, ge=0)


class JobInput(BaseModel):
    """The job workflow's argument: the spec, plus what survives ``continue_as_new``."""

    spec: JobSpec
    last_fire_at: datetime | None = None
    fire_lead: FireLead = Field(default_factory=FireLead)


class FireRequest(BaseModel):
    """Open (or resume) one fire and drive it until every device's run is final."""

    job_id: UUID
    fire_id: UUID
    scheduled_at: datetime
    manual: bool = False
    devices: list[UUID] | None = Field(
        None, description="Run now on these devices only (they must be targets)."
    )
    missed: list[datetime] = Field(
        default_factory=list, description="Earlier fire times that were missed (recorded)."
    )


class FireSummary(BaseModel):
    fire_id: UUID
    total: int
    counts: dict[str, int]


class PlannedRun(BaseModel):
    """One device's run in an open fire, as the dispatcher needs it."""

    run_id: str
    status: RunStatus
    attempt: int = 1
    groups: list[str] = Field(
        default_factory=list,
        description="The device's value of each per-label cap key, in the caps' order.",
    )


class FirePlan(BaseModel):
    """An open fire: its policies and the runs that are not final yet."""

    fire_id: UUID
    job_id: UUID
    total: int
    ttl_seconds: int
    max_in_flight: int
    per_label: dict[str, int]
    retry_max_attempts: int
    retry_backoff_seconds: float
    runs: list[PlannedRun]


class DispatchItem(BaseModel):
    run_id: Identifier = Field(max_length=200)
    attempt: int = Field(1, ge=1)


class DispatchRequest(BaseModel):
    items: list[DispatchItem] = Field(max_length=2000)


class Dispatched(BaseModel):
    """What became of each run asked for: ``published`` (with its deadline), ``gone``
    (the device or the fire was deleted), ``done`` (already final, or failed to render)."""

    published: dict[str, datetime] = Field(default_factory=dict)
    gone: list[str] = Field(default_factory=list)
    done: list[str] = Field(default_factory=list)


class FireRunRecord(BaseModel):
    """One device's run as the dispatcher records it (in batches)."""

    run_id: Identifier = Field(min_length=1, max_length=200)
    status: RunStatus
    attempt: int = Field(1, ge=1)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: DeviceText | None = None
    output_truncated: bool = False
    error: DeviceText | None = None
    error_kind: ErrorKind | None = None
    host_key: Identifier | None = Field(None, max_length=128)
    executor_id: Identifier | None = None
    parsed: list[dict[str, Any]] | None = None
    parse_error: DeviceText | None = None


class FireRecords(BaseModel):
    records: list[FireRunRecord] = Field(max_length=2000)


FireState = Literal["running", "finished", "missed"]
