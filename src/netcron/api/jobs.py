"""Jobs: one command on every device a label selector matches; each is a JobWorkflow."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.auth import read_or_write
from netcron.api.commands import Params, one_line, validate_params
from netcron.api.deps import OrchestratorDep, SessionDep
from netcron.api.devices import DeviceRead, Name
from netcron.api.errors import Conflict, FieldInvalid, NotFound, ServiceUnavailable
from netcron.api.events import emit
from netcron.api.fires import FireRead, open_fire, read_fire
from netcron.api.orchestrator import Orchestrator, OrchestratorUnavailable, WorkflowGone
from netcron.api.pagination import Limit, Offset, Page
from netcron.api.patch import not_null
from netcron.api.schedules import _cron, _timezone
from netcron.api.specs import job_spec
from netcron.cron import next_fire_times
from netcron.db.models import Device, Job, JobFire
from netcron.events import Event
from netcron.fleet.selector import LabelKey, Target
from netcron.history.options import CheckedParseSpec, ParseSpec, Patterns
from netcron.jobspec import FireRequest, JobInput, job_workflow_id_for

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(read_or_write)], prefix="/jobs", tags=["jobs"])

NEXT_FIRES_SHOWN = 5


class Concurrency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_in_flight: int = Field(
        100, ge=1, le=10_000, description="Devices running at once in one fire."
    )
    per_label: dict[LabelKey, Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=dict,
        max_length=8,
        examples=[{"site": 10}],
        description="At most this many devices at once per value of the label.",
    )


class JobPolicy(BaseModel):
    """The fields a job is created with; every one may be changed with PATCH."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    command: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        examples=["show running-config"],
        description="CLI line; `{name}`, `{host}`, `{platform}`, label keys and params fill "
        "its placeholders per device.",
    )
    params: Params | None = None
    target: Target | None = None
    cron: str | None = Field(None, max_length=128, examples=["0 2 * * *"])
    timezone: str | None = Field(None, max_length=64)
    is_active: bool | None = None
    ttl_seconds: int | None = Field(
        None, ge=1, le=86_400, description="How long one device's run may take once started."
    )
    overlap: Literal["skip", "allow"] | None = Field(
        None, description="skip (default): a device whose last run is pending is skipped."
    )
    starting_deadline_seconds: int | None = Field(None, ge=0, le=86_400)
    retry_max_attempts: int | None = Field(None, ge=1, le=10)
    retry_backoff_seconds: float | None = Field(None, ge=0, le=3600)
    timeout: float | None = Field(None, gt=0, le=3600, description="Seconds the command may take.")
    concurrency: Concurrency | None = None
    track_changes: bool | None = Field(
        None, description="Compare each device's output with its previous one (a version)."
    )
    ignore_lines: Patterns | None = Field(
        None, description="Regexes of lines left out of the comparison, beside the platform's."
    )
    mask: Patterns | None = Field(
        None, description="Regexes of secrets to mask, beside the platform's defaults."
    )
    parse: CheckedParseSpec | None = Field(
        None, description="textfsm (ntc-templates) or ttp with a template; null stops parsing."
    )

    _params = field_validator("params")(lambda value: validate_params(value) if value else value)
    _command = field_validator("command")(lambda value: one_line(value) if value else value)
    _cron = field_validator("cron")(_cron)
    _timezone = field_validator("timezone")(_timezone)
    _not_null = field_validator(
        *(
            name
            for name in (
                "name",
                "command",
                "params",
                "target",
                "cron",
                "timezone",
                "is_active",
                "ttl_seconds",
                "overlap",
                "starting_deadline_seconds",
                "retry_max_attempts",
                "retry_backoff_seconds",
                "timeout",
                "concurrency",
                "track_changes",
                "ignore_lines",
                "mask",
            )
        ),
        mode="before",
    )(not_null)

    def changes(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "target":
                values["target"] = value.model_dump(mode="json")
            elif name == "parse":
                values["parse"] = value.model_dump(exclude_none=True) if value else None
            elif name == "concurrency":
                # Only what the body names: a PATCH of the per-label caps keeps the rest.
                values |= {field: getattr(value, field) for field in value.model_fields_set}
            else:
                values[name] = value
        return values


class JobCreate(JobPolicy):
    name: Name
    command: str = Field(min_length=1, max_length=4096, examples=["show running-config"])
    target: Target
    cron: str = Field(max_length=128, examples=["0 2 * * *"])

    def values(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            "params": {},
            "timezone": "UTC",
            "is_active": True,
            "ttl_seconds": 300,
            "overlap": "skip",
            "starting_deadline_seconds": 60,
            "retry_max_attempts": 1,
            "retry_backoff_seconds": 10.0,
            "timeout": 30.0,
            "max_in_flight": 100,
            "per_label": {},
            "track_changes": False,
            "ignore_lines": [],
            "mask": [],
            "parse": None,
        }
        return defaults | self.changes()


class ConcurrencyRead(BaseModel):
    max_in_flight: int
    per_label: dict[str, int]


class JobRead(BaseModel):
    id: uuid.UUID
    name: str
    command: str
    params: dict[str, str]
    target: Target
    cron: str
    timezone: str
    is_active: bool
    state: Literal["active", "paused"]
    ttl_seconds: int
    overlap: str
    starting_deadline_seconds: int
    retry_max_attempts: int
    retry_backoff_seconds: float
    timeout: float
    concurrency: ConcurrencyRead
    track_changes: bool
    ignore_lines: list[str]
    mask: list[str]
    parse: ParseSpec | None
    spec_version: int
    workflow_id: str
    next_fire_times: list[datetime]
    last_fire: FireRead | None
    created_at: datetime
    updated_at: datetime


async def to_read(session: AsyncSession, job: Job) -> JobRead:
    now = datetime.now(UTC)
    last = await session.scalar(
        select(JobFire)
        .where(JobFire.job_id == job.id)
        .order_by(JobFire.scheduled_at.desc(), JobFire.created_at.desc())
        .limit(1)
    )
    columns = {c.key: getattr(job, c.key) for c in Job.__table__.columns}
    return JobRead.model_validate(
        columns
        | {
            "state": "active" if job.is_active else "paused",
            "concurrency": {"max_in_flight": job.max_in_flight, "per_label": job.per_label},
            "next_fire_times": (
                next_fire_times(job.cron, job.timezone, now, NEXT_FIRES_SHOWN)
                if job.is_active
                else []
            ),
            "last_fire": await read_fire(session, last, states=False) if last else None,
        }
    )


async def get_job(session: AsyncSession, job_id: uuid.UUID, *, lock: bool = False) -> Job:
    job = await session.get(
        Job,
        job_id,
        with_for_update={"key_share": True} if lock else None,
        populate_existing=lock,
    )
    if job is None:
        raise NotFound("job", job_id)
    return job


async def check_devices(session: AsyncSession, target: Target, field: str) -> None:
    """Every device a selector names by id exists (422 naming the first that does not)."""
    if not target.devices:
        return
    known = set(await session.scalars(select(Device.id).where(Device.id.in_(target.devices))))
    for index, device_id in enumerate(target.devices):
        if device_id not in known:
            raise FieldInvalid(f"{field}[{index}]", f"device {device_id} does not exist")


async def check_name_free(session: AsyncSession, name: str, job_id: uuid.UUID | None) -> None:
    taken = await session.scalar(select(Job.id).where(Job.name == name))
    if taken is not None and taken != job_id:
        raise Conflict(f"a job named {name!r} exists already")


def _event(kind: str, job: Job, **data: Any) -> Event:
    return Event(
        type=kind,
        job_id=job.id,
        data={"name": job.name, "state": "active" if job.is_active else "paused", **data},
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobRead)
async def create_job(
    body: JobCreate,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    response: Response,
    request: Request,
    background: BackgroundTasks,
) -> JobRead:
    """Store the job and start its workflow in one step: neither exists without the other."""
    await check_devices(session, body.target, "target.devices")
    await check_name_free(session, body.name, None)
    job_id = uuid.uuid4()
    job = Job(id=job_id, workflow_id=job_workflow_id_for(job_id), spec_version=1, **body.values())
    session.add(job)
    await session.flush()
    try:
        await orchestrator.start_job(JobInput(spec=job_spec(job)))
    except OrchestratorUnavailable as exc:
        log.warning("job not created: %s", exc, extra={"job_id": job_id})
        raise ServiceUnavailable(
            "Temporal is unavailable, so the job was not created; try again later"
        ) from None
    await session.refresh(job)
    response.headers["Location"] = f"/jobs/{job_id}"
    log.info("created job %r (%s)", job.name, job.cron, extra={"job_id": job_id})
    emit(background, request, _event("job.created", job))
    return await to_read(session, job)


@router.get("", response_model=Page[JobRead])
async def list_jobs(session: SessionDep, limit: Limit = 50, offset: Offset = 0) -> Page[JobRead]:
    total = await session.scalar(select(func.count()).select_from(Job)) or 0
    rows = await session.scalars(
        select(Job).order_by(Job.created_at, Job.id).limit(limit).offset(offset)
    )
    items = [await to_read(session, job) for job in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobRead)
async def read_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
    return await to_read(session, await get_job(session, job_id))


async def push_job_spec(orchestrator: Orchestrator, job: Job) -> None:
    """Hand the committed spec over; a workflow that is gone is started again."""
    spec = job_spec(job)
    try:
        try:
            await orchestrator.update_job(spec)
        except WorkflowGone:
            await orchestrator.start_job(JobInput(spec=spec))
    except OrchestratorUnavailable as exc:
        log.warning(
            "job spec v%d not delivered (%s); reconciliation will deliver it",
            spec.version,
            exc,
            extra={"job_id": job.id},
        )


async def _change(
    session: AsyncSession,
    orchestrator: Orchestrator,
    request: Request,
    background: BackgroundTasks,
    job_id: uuid.UUID,
    changes: dict[str, Any],
) -> JobRead:
    """Apply ``changes`` under the job's lock (a new spec version), hand the spec over
    after the commit, and announce it."""
    job = await get_job(session, job_id, lock=True)  # the version is read under the lock
    if "name" in changes:
        await check_name_free(session, changes["name"], job_id)
    if "target" in changes:
        await check_devices(session, Target.model_validate(changes["target"]), "target.devices")
    was_active = job.is_active
    for name, value in changes.items():
        setattr(job, name, value)
    job.spec_version += 1
    await session.commit()
    await push_job_spec(orchestrator, job)
    await session.refresh(job)
    kind = "job.updated"
    if was_active != job.is_active:
        kind = "job.resumed" if job.is_active else "job.paused"
    log.info("updated job: %s", ", ".join(sorted(changes)), extra={"job_id": job_id})
    emit(background, request, _event(kind, job))
    return await to_read(session, job)


@router.patch("/{job_id}", response_model=JobRead)
async def update_job(
    job_id: uuid.UUID,
    body: JobPolicy,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> JobRead:
    """Change a job; fires from the next one on use it (a fire under way keeps its plan)."""
    return await _change(session, orchestrator, request, background, job_id, body.changes())


@router.post("/{job_id}/pause", response_model=JobRead)
async def pause_job(
    job_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> JobRead:
    """No more fires until resumed; a fire under way finishes."""
    return await _change(session, orchestrator, request, background, job_id, {"is_active": False})


@router.post("/{job_id}/resume", response_model=JobRead)
async def resume_job(
    job_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> JobRead:
    return await _change(session, orchestrator, request, background, job_id, {"is_active": True})


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_job(
    job_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    """End the workflow (and the fires it drives) first, then the rows: a deleted job
    publishes nothing more, and its runs go with it."""
    job = await get_job(session, job_id)
    try:
        await orchestrator.stop_job(job_id)
    except OrchestratorUnavailable as exc:
        raise ServiceUnavailable(
            f"cannot stop the job's workflow, so the job was kept: {exc}"
        ) from None
    job = await get_job(session, job_id, lock=True)
    emit(background, request, _event("job.deleted", job))
    await session.delete(job)
    log.info("deleted job", extra={"job_id": job_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT, background=background)


@router.get("/{job_id}/targets", response_model=Page[DeviceRead])
async def list_targets(
    job_id: uuid.UUID, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[DeviceRead]:
    """The devices the selector matches now: what the next fire would run on."""
    job = await get_job(session, job_id)
    where = Target.model_validate(job.target).condition()
    total = await session.scalar(select(func.count()).select_from(Device).where(where)) or 0
    rows = await session.scalars(
        select(Device).where(where).order_by(Device.name).limit(limit).offset(offset)
    )
    items = [DeviceRead.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


class RunNow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[uuid.UUID] | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="Only these devices (each must be a target now); all targets if left out.",
    )


class FireAccepted(BaseModel):
    fire_id: uuid.UUID
    total: int
    fire_url: str


@router.post("/{job_id}/runs", status_code=status.HTTP_202_ACCEPTED, response_model=FireAccepted)
async def run_now(
    job_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    response: Response,
    request: Request,
    background: BackgroundTasks,
    body: RunNow | None = None,
) -> FireAccepted:
    """Fire the job now, outside the cron (paused jobs too), on all targets or some."""
    await get_job(session, job_id, lock=True)
    fire = FireRequest(
        job_id=job_id,
        fire_id=uuid.uuid4(),
        scheduled_at=datetime.now(UTC),
        manual=True,
        devices=body.devices if body else None,
    )
    opened = await open_fire(session, fire, field="devices")
    try:
        await orchestrator.trigger_job(fire)
    except WorkflowGone as exc:
        raise Conflict(f"the job's workflow is not running yet ({exc}); retry shortly") from None
    except OrchestratorUnavailable:
        raise ServiceUnavailable("Temporal is unavailable; the fire was not started") from None
    url = f"/jobs/{job_id}/fires/{fire.fire_id}"
    response.headers["Location"] = url
    log.info("fire requested by hand", extra={"job_id": job_id, "fire_id": fire.fire_id})
    for event in opened.events:
        emit(background, request, event)
    return FireAccepted(fire_id=fire.fire_id, total=opened.fire.total, fire_url=url)
