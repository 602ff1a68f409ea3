"""The contract between the api and the schedule workflow.

The api starts ``ScheduleWorkflow`` with a :class:`RunSpec` and sends a newer one with
every change; the workflow records each run back through the api with a
:class:`RunRecord`. Neither side imports the other's code: the workflow is addressed by
name, and payloads travel through Temporal's pydantic data converter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from netcron.firelead import FireLead
from netcron.history.options import ChangeTracking, HistoryOptions
from netcron.platforms import ErrorKind, HostKeyPolicy
from netcron.runs import RunStatus

#: The most attempts a run may have (its retry policy's bound).
MAX_ATTEMPTS = 10

WORKFLOW_NAME = "ScheduleWorkflow"
SIGNAL_UPDATE = "update"
SIGNAL_RESULT = "result"
SIGNAL_STOP = "stop"
UPDATE_TRIGGER = "trigger"
UPDATE_SPEC = "apply_spec"
UPDATE_STOP = "stop_firing"
QUERY_STATE = "state"
#: Memo key holding the spec version a workflow fires from: one visibility listing
#: tells reconciliation every workflow's version, without a query per workflow.
MEMO_SPEC_VERSION = "spec_version"


def workflow_id_for(schedule_id: UUID | str) -> str:
    return f"schedule-{schedule_id}"


class DeviceTarget(BaseModel):
    """Where and how to reach the device; credentials stay a Fernet token."""

    host: str
    port: int
    platform: str
    username: str | None = None
    credentials: str | None = None
    host_key_policy: HostKeyPolicy = HostKeyPolicy.TRUST_ON_FIRST_USE
    host_key: str | None = None
    session_limit: int = 1
    connect_timeout: float = 10.0


class RunSpec(BaseModel):
    """Everything a schedule needs to fire without the api or the database."""

    version: int = Field(1, ge=1, description="Grows with every change the api makes.")
    schedule_id: UUID
    device_id: UUID
    command_id: UUID
    cron: str
    timezone: str = "UTC"
    is_active: bool = True
    ttl_seconds: int = Field(300, ge=1)
    overlap: Literal["skip", "allow"] = "skip"
    starting_deadline_seconds: int = Field(60, ge=0)
    retry_max_attempts: int = Field(
        1, ge=1, le=MAX_ATTEMPTS, description="Attempts per run, the first included."
    )
    retry_backoff_seconds: float = Field(
        10.0, ge=0, description="Wait before the second attempt; doubles for each one after."
    )
    device: DeviceTarget
    command: str = Field(description="The command text with its params filled in.")
    command_timeout: float = Field(30.0, gt=0)
    history: HistoryOptions = Field(
        default_factory=HistoryOptions,
        description="The command's change tracking, masks and parsing, applied to each run.",
    )


class ScheduleInput(BaseModel):
    """The workflow's argument: the spec, plus what survives ``continue_as_new``."""

    spec: RunSpec
    last_fire_at: datetime | None = Field(
        None, description="The last cron time handled; None on a schedule's first start."
    )
    fire_lead: FireLead = Field(
        default_factory=FireLead, description="How early the fire timer aims (learned)."
    )


def _without_nul(value: str) -> str:
    """Identifiers: PostgreSQL text cannot hold NUL, and no real one has it."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _nul_replaced(value: str) -> str:
    """Device output may hold NUL bytes; PostgreSQL text cannot, so they become U+FFFD."""
    return value.replace("\x00", "\ufffd")


Identifier = Annotated[str, AfterValidator(_without_nul)]
DeviceText = Annotated[str, AfterValidator(_nul_replaced)]


class RunRecord(BaseModel):
    """A run's state as the workflow records it (``POST .../schedules/{id}/result``).

    Writes are upserts keyed by ``run_id``; a status that would move the run backwards,
    or replace a final one, is ignored by the api.
    """

    run_id: Identifier = Field(min_length=1, max_length=200)
    command_id: UUID
    status: RunStatus
    scheduled_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempt: int = Field(1, ge=1, le=MAX_ATTEMPTS)
    output: DeviceText | None = None
    output_truncated: bool = False
    error: DeviceText | None = None
    error_kind: ErrorKind | None = None
    host_key: Identifier | None = Field(
        None, max_length=128, description="Fingerprint of the host key the device presented."
    )
    executor_id: Identifier | None = None
    command: Identifier | None = None
    tracking: ChangeTracking | None = Field(
        None, description="Set when the command tracks changes: how to normalize the output."
    )
    parsed: list[dict[str, Any]] | None = None
    parse_error: DeviceText | None = None


class RecordRequest(BaseModel):
    """Input of the workflow's ``record_run`` activity."""

    device_id: UUID
    schedule_id: UUID
    record: RunRecord
