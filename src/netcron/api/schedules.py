"""Schedules: when a command runs; each one is a ScheduleWorkflow in Temporal."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.auth import read_or_write
from netcron.api.commands import Params, get_command, validate_params
from netcron.api.deps import OrchestratorDep, SessionDep
from netcron.api.errors import Conflict, NotFound, ServiceUnavailable
from netcron.api.events import emit
from netcron.api.orchestrator import OrchestratorUnavailable, WorkflowGone
from netcron.api.pagination import Limit, Offset, Page
from netcron.api.patch import not_null
from netcron.api.specs import (
    build_spec,
    current_specs,
    lock_schedules,
    push_specs,
    stop_schedules,
)
from netcron.cron import (
    InvalidCron,
    InvalidTimezone,
    next_fire_times,
    validate_cron,
    validate_timezone,
)
from netcron.db.models import CommandResult, Device, Schedule
from netcron.events import Event
from netcron.runs import RunStatus
from netcron.runspec import ScheduleInput, workflow_id_for

log = logging.getLogger(__name__)
router = APIRouter(
    dependencies=[Depends(read_or_write)],
    prefix="/devices/{device_id}/commands/{command_id}/schedules",
    tags=["schedules"],
)

NEXT_FIRES_SHOWN = 5


def _cron(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_cron(value)
    except InvalidCron as exc:
        raise ValueError(str(exc)) from None


def _timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        validate_timezone(value)
    except InvalidTimezone as exc:
        raise ValueError(str(exc)) from None
    return value


class SchedulePolicy(BaseModel):
    """The fields a schedule is created with; every one may be changed with PATCH."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(
        None,
        max_length=128,
        examples=["*/5 * * * *", "*/10 * * * * *", "@hourly"],
        description="5-field cron, 6-field with a leading seconds field, or a macro.",
    )
    timezone: str | None = Field(
        None, max_length=64, description="IANA timezone of the cron's wall clock (default UTC)."
    )
    params: Params | None = Field(None, description="Override the command's defaults.")
    is_active: bool | None = Field(None, description="false pauses the schedule.")
    ttl_seconds: int | None = Field(
        None, ge=1, le=86_400, description="How long a run may wait for its result (300)."
    )
    overlap: Literal["skip", "allow"] | None = Field(
        None, description="skip (default): a fire while a run is pending is recorded skipped."
    )
    starting_deadline_seconds: int | None = Field(
        None, ge=0, le=86_400, description="How late a missed fire may still run (60)."
    )
    retry_max_attempts: int | None = Field(
        None, ge=1, le=10, description="Attempts per run, the first included (1)."
    )
    retry_backoff_seconds: float | None = Field(
        None, ge=0, le=3600, description="Wait before a retry; doubles each time (10)."
    )

    _params = field_validator("params")(lambda value: validate_params(value) if value else value)
    _cron = field_validator("cron")(_cron)
    _timezone = field_validator("timezone")(_timezone)

    _not_null = field_validator("*", mode="before")(not_null)

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class ScheduleCreate(SchedulePolicy):
    cron: str = Field(
        max_length=128,
        examples=["*/5 * * * *", "*/10 * * * * *", "@hourly"],
        description="5-field cron, 6-field with a leading seconds field, or a macro.",
    )

    def values(self) -> dict[str, Any]:
        defaults = {
            "timezone": "UTC",
            "params": {},
            "is_active": True,
            "ttl_seconds": 300,
            "overlap": "skip",
            "starting_deadline_seconds": 60,
            "retry_max_attempts": 1,
            "retry_backoff_seconds": 10.0,
        }
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        return defaults | given


class LastRun(BaseModel):
    run_id: str
    status: RunStatus
    scheduled_at: datetime
    finished_at: datetime | None


class ScheduleRead(BaseModel):
    id: uuid.UUID
    device_id: uuid.UUID
    command_id: uuid.UUID
    cron: str
    timezone: str
    params: dict[str, str]
    is_active: bool
    state: Literal["active", "paused"]
    ttl_seconds: int
    overlap: str
    starting_deadline_seconds: int
    retry_max_attempts: int
    retry_backoff_seconds: float
    spec_version: int
    workflow_id: str
    next_fire_times: list[datetime]
    last_run: LastRun | None
    created_at: datetime
    updated_at: datetime


def to_read(schedule: Schedule, last: CommandResult | None, now: datetime) -> ScheduleRead:
    upcoming = (
        next_fire_times(schedule.cron, schedule.timezone, now, NEXT_FIRES_SHOWN)
        if schedule.is_active
        else []
    )
    columns = {c.key: getattr(schedule, c.key) for c in Schedule.__table__.columns}
    last_run = (
        LastRun(
            run_id=last.run_id,
            status=RunStatus(last.status),
            scheduled_at=last.scheduled_at,
            finished_at=last.finished_at,
        )
        if last
        else None
    )
    return ScheduleRead.model_validate(
        columns
        | {
            "next_fire_times": upcoming,
            "state": "active" if schedule.is_active else "paused",
            "last_run": last_run,
        }
    )


async def last_runs(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, CommandResult]:
    if not ids:
        return {}
    rows = await session.scalars(
        select(CommandResult)
        .where(CommandResult.schedule_id.in_(ids))
        .order_by(CommandResult.schedule_id, CommandResult.scheduled_at.desc())
        .ext(distinct_on(CommandResult.schedule_id))
    )
    return {row.schedule_id: row for row in rows if row.schedule_id is not None}


async def read_one(session: AsyncSession, schedule: Schedule) -> ScheduleRead:
    last = await last_runs(session, [schedule.id])
    return to_read(schedule, last.get(schedule.id), datetime.now(UTC))


async def get_schedule(
    session: AsyncSession,
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    schedule_id: uuid.UUID,
    *,
    lock: bool = False,
) -> Schedule:
    """The schedule; ``lock`` holds its row against concurrent changes and deletes."""
    await get_command(session, device_id, command_id)
    schedule = await session.get(
        Schedule,
        schedule_id,
        with_for_update={"key_share": True} if lock else None,
        populate_existing=lock,
    )
    if schedule is None or schedule.command_id != command_id:
        raise NotFound("schedule", schedule_id)
    return schedule


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ScheduleRead)
async def create_schedule(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    body: ScheduleCreate,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    response: Response,
    request: Request,
    background: BackgroundTasks,
) -> ScheduleRead:
    """Store the schedule and start its workflow in one step: neither exists without the other."""
    command = await get_command(session, device_id, command_id)
    device = await session.get(Device, device_id)
    if device is None:  # deleted since get_command looked (seen under test_concurrency)
        raise NotFound("device", device_id)
    schedule_id = uuid.uuid4()
    schedule = Schedule(
        id=schedule_id,
        device_id=device_id,
        command_id=command_id,
        workflow_id=workflow_id_for(schedule_id),
        spec_version=1,
        **body.values(),
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
    emit(background, request, _event("schedule.created", schedule))
    return to_read(schedule, None, datetime.now(UTC))


def _event(kind: str, schedule: Schedule) -> Event:
    return Event(
        type=kind,
        device_id=schedule.device_id,
        command_id=schedule.command_id,
        schedule_id=schedule.id,
        data={"cron": schedule.cron, "state": "active" if schedule.is_active else "paused"},
    )


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
    rows = list(
        await session.scalars(
            select(Schedule)
            .where(where)
            .order_by(Schedule.created_at, Schedule.id)
            .limit(limit)
            .offset(offset)
        )
    )
    last = await last_runs(session, [row.id for row in rows])
    now = datetime.now(UTC)
    items = [to_read(row, last.get(row.id), now) for row in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{schedule_id}", response_model=ScheduleRead)
async def read_schedule(
    device_id: uuid.UUID, command_id: uuid.UUID, schedule_id: uuid.UUID, session: SessionDep
) -> ScheduleRead:
    return await read_one(session, await get_schedule(session, device_id, command_id, schedule_id))


@router.patch("/{schedule_id}", response_model=ScheduleRead)
async def update_schedule(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    schedule_id: uuid.UUID,
    body: SchedulePolicy,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> ScheduleRead:
    """Change a schedule; the workflow takes it from its next fire (``is_active`` pauses)."""
    schedule = await get_schedule(session, device_id, command_id, schedule_id, lock=True)
    changes = body.changes()
    was_active = schedule.is_active
    for name, value in changes.items():
        setattr(schedule, name, value)
    kind = "schedule.updated"
    if was_active != schedule.is_active:
        kind = "schedule.resumed" if schedule.is_active else "schedule.paused"
    specs = await current_specs(session, Schedule.id == schedule_id, bump=True)
    await session.commit()
    await push_specs(orchestrator, specs)
    await session.refresh(schedule)
    log.info("updated schedule: %s", ", ".join(sorted(changes)), extra={"schedule_id": schedule_id})
    emit(background, request, _event(kind, schedule))
    return await read_one(session, schedule)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    schedule_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    """End the workflow first, then the row: a deleted schedule never records again."""
    schedule = await get_schedule(session, device_id, command_id, schedule_id)
    await stop_schedules(session, orchestrator, Schedule.id == schedule_id, "schedule")
    if not await lock_schedules(session, Schedule.id == schedule_id):
        raise NotFound("schedule", schedule_id)  # deleted meanwhile
    emit(background, request, _event("schedule.deleted", schedule))
    await session.delete(schedule)
    log.info("deleted schedule", extra={"schedule_id": schedule_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT, background=background)


class RunAccepted(BaseModel):
    run_id: str
    results_url: str


@router.post(
    "/{schedule_id}/runs", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted
)
async def run_now(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    schedule_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    response: Response,
) -> RunAccepted:
    """Run the schedule's command now, outside the cron (paused schedules too)."""
    await get_schedule(session, device_id, command_id, schedule_id)
    try:
        run_id = await orchestrator.trigger(schedule_id)
    except WorkflowGone as exc:
        if await session.scalar(select(Schedule.id).where(Schedule.id == schedule_id)) is None:
            raise NotFound("schedule", schedule_id) from None  # deleted meanwhile
        raise Conflict(
            f"the schedule's workflow is not running yet ({exc}); retry shortly"
        ) from None
    except OrchestratorUnavailable:
        raise ServiceUnavailable("Temporal is unavailable; the run was not started") from None
    url = f"/devices/{device_id}/results/{run_id}"
    response.headers["Location"] = url
    log.info("run requested by hand", extra={"schedule_id": schedule_id, "run_id": run_id})
    return RunAccepted(run_id=run_id, results_url=url)
