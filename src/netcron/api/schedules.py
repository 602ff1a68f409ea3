"""Schedules: when a command runs; each one is a ScheduleWorkflow in Temporal."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select

from netcron.api.commands import Params, get_command, validate_params
from netcron.api.deps import OrchestratorDep, SessionDep
from netcron.api.errors import FieldInvalid, NotFound, ServiceUnavailable
from netcron.api.orchestrator import OrchestratorUnavailable
from netcron.api.pagination import Limit, Offset, Page
from netcron.cron import (
    InvalidCron,
    InvalidTimezone,
    next_fire_times,
    validate_cron,
    validate_timezone,
)
from netcron.db.models import Command, Device, Schedule
from netcron.render import RenderError, render
from netcron.runspec import DeviceTarget, RunSpec, ScheduleInput, workflow_id_for

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/devices/{device_id}/commands/{command_id}/schedules", tags=["schedules"]
)

NEXT_FIRES_SHOWN = 5


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        max_length=128,
        examples=["*/5 * * * *", "*/10 * * * * *", "@hourly"],
        description="5-field cron, 6-field with a leading seconds field, or a macro.",
    )
    timezone: str = Field(
        "UTC", max_length=64, description="IANA timezone of the cron's wall clock."
    )
    params: Params = Field(default_factory=dict, description="Override the command's defaults.")
    is_active: bool = True
    ttl_seconds: int = Field(
        300, ge=1, le=86_400, description="How long a run may wait for its result."
    )
    overlap: Literal["skip", "allow"] = Field(
        "skip", description="skip: a fire while the previous run is pending is recorded as skipped."
    )
    starting_deadline_seconds: int = Field(
        60, ge=0, le=86_400, description="How late a missed fire may still run after an outage."
    )

    _params = field_validator("params")(validate_params)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            return validate_cron(value)
        except InvalidCron as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            validate_timezone(value)
        except InvalidTimezone as exc:
            raise ValueError(str(exc)) from None
        return value


class ScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_id: uuid.UUID
    command_id: uuid.UUID
    cron: str
    timezone: str
    params: dict[str, str]
    is_active: bool
    ttl_seconds: int
    overlap: str
    starting_deadline_seconds: int
    spec_version: int
    workflow_id: str
    next_fire_times: list[datetime]
    created_at: datetime
    updated_at: datetime


def to_read(schedule: Schedule, now: datetime | None = None) -> ScheduleRead:
    upcoming = (
        next_fire_times(
            schedule.cron, schedule.timezone, now or datetime.now(UTC), NEXT_FIRES_SHOWN
        )
        if schedule.is_active
        else []
    )
    return ScheduleRead.model_validate(
        {
            **{c.key: getattr(schedule, c.key) for c in Schedule.__table__.columns},
            "next_fire_times": upcoming,
        }
    )


def rendered_command(command: Command, params: dict[str, str]) -> str:
    try:
        return render(command.text, {**command.params, **params})
    except RenderError as exc:
        raise FieldInvalid(f"params.{exc.param}", str(exc)) from None


def build_spec(schedule: Schedule, device: Device, command: Command) -> RunSpec:
    """The snapshot the workflow fires from: it needs neither the api nor the database."""
    return RunSpec(
        version=schedule.spec_version,
        schedule_id=schedule.id,
        device_id=device.id,
        command_id=command.id,
        cron=schedule.cron,
        timezone=schedule.timezone,
        is_active=schedule.is_active,
        ttl_seconds=schedule.ttl_seconds,
        overlap="allow" if schedule.overlap == "allow" else "skip",
        starting_deadline_seconds=schedule.starting_deadline_seconds,
        device=DeviceTarget(
            host=device.host,
            port=device.port,
            platform=device.platform,
            username=device.username,
            credentials=device.credentials,
        ),
        command=rendered_command(command, schedule.params),
        command_timeout=command.timeout,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ScheduleRead)
async def create_schedule(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    body: ScheduleCreate,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    response: Response,
) -> ScheduleRead:
    """Store the schedule and start its workflow in one step: neither exists without the other."""
    command = await get_command(session, device_id, command_id)
    device = await session.get_one(Device, device_id)
    schedule_id = uuid.uuid4()
    schedule = Schedule(
        id=schedule_id,
        device_id=device_id,
        command_id=command_id,
        workflow_id=workflow_id_for(schedule_id),
        spec_version=1,
        **body.model_dump(),
    )
    spec = build_spec(schedule, device, command)
    session.add(schedule)
    await session.flush()
    try:
        await orchestrator.start(ScheduleInput(spec=spec))
    except OrchestratorUnavailable as exc:
        log.warning("schedule not created: %s", exc, extra={"schedule_id": schedule_id})
        raise ServiceUnavailable(
            "Temporal is unavailable, so the schedule was not created; try again later"
        ) from None
    await session.refresh(schedule)
    response.headers["Location"] = (
        f"/devices/{device_id}/commands/{command_id}/schedules/{schedule_id}"
    )
    log.info("created schedule %r", schedule.cron, extra={"schedule_id": schedule_id})
    return to_read(schedule)


@router.get("", response_model=Page[ScheduleRead])
async def list_schedules(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ScheduleRead]:
    await get_command(session, device_id, command_id)
    where = Schedule.command_id == command_id
    total = await session.scalar(select(func.count()).select_from(Schedule).where(where)) or 0
    rows = await session.scalars(
        select(Schedule)
        .where(where)
        .order_by(Schedule.created_at, Schedule.id)
        .limit(limit)
        .offset(offset)
    )
    now = datetime.now(UTC)
    return Page(items=[to_read(row, now) for row in rows], total=total, limit=limit, offset=offset)


@router.get("/{schedule_id}", response_model=ScheduleRead)
async def read_schedule(
    device_id: uuid.UUID, command_id: uuid.UUID, schedule_id: uuid.UUID, session: SessionDep
) -> ScheduleRead:
    await get_command(session, device_id, command_id)
    schedule = await session.get(Schedule, schedule_id)
    if schedule is None or schedule.command_id != command_id:
        raise NotFound("schedule", schedule_id)
    return to_read(schedule)
