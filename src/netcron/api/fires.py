"""Fires of jobs: opened, dispatched and recorded in batches, and read back as summaries.

The internal endpoints are the fire dispatcher's (``workflows/fire.py``): it opens a
fire (the api evaluates the selector and makes one run per device), asks for batches
of runs to be published, records their results in batches, and finishes the fire.
The api publishes a job run's task itself, inside the transaction that marks the run
``queued``: a device delete waits for that transaction, and once it has committed no
task for the device can be published any more (deleted means deleted, for fleets too).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Table, and_, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.auth import read_or_write, results_scope
from netcron.api.deps import OrchestratorDep, SessionDep, SettingsDep
from netcron.api.errors import FieldInvalid, NotFound, ServiceUnavailable
from netcron.api.events import publish_events
from netcron.api.pagination import Limit, Offset, Page
from netcron.broker.jetstream import publish
from netcron.db.models import CommandResult, Device, Job, JobFire, Output
from netcron.events import Event
from netcron.fleet.caps import UNLABELLED
from netcron.fleet.selector import Target
from netcron.history.changes import Change, blob_for, compare_with_previous
from netcron.history.options import ChangeTracking, ParseSpec
from netcron.history.series import Series
from netcron.history.store import Blob
from netcron.jobspec import (
    Dispatched,
    DispatchRequest,
    FirePlan,
    FireRecords,
    FireRequest,
    FireRunRecord,
    FireState,
    FireSummary,
    PlannedRun,
    fire_id_for,
    fire_run_id,
)
from netcron.messages import TaskMessage
from netcron.observability.metrics import RUNS_RECORDED
from netcron.platforms import ErrorKind, HostKeyPolicy
from netcron.render import RenderError, render
from netcron.runs import RunStatus, rank

log = logging.getLogger(__name__)
router = APIRouter(tags=["fires"])
internal = APIRouter(
    prefix="/internal/fires", tags=["internal"], dependencies=[Depends(results_scope)]
)

#: A late fire still runs within this many seconds even when the deadline is lower.
MIN_STARTING_DEADLINE = 1.0
SLOWEST_SHOWN = 5
_PENDING = [RunStatus.SCHEDULED.value, RunStatus.QUEUED.value, RunStatus.RUNNING.value]
_RUNS = cast(Table, CommandResult.__table__)


class DeviceRun(BaseModel):
    """One device's run in a fire."""

    device_id: uuid.UUID
    device_name: str | None
    run_id: str
    status: RunStatus
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    error: str | None
    error_kind: ErrorKind | None


class FireRead(BaseModel):
    id: uuid.UUID
    job_id: uuid.UUID
    state: FireState
    manual: bool
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    total: int
    counts: dict[str, int]
    slowest: list[DeviceRun]
    runs: Page[DeviceRun] | None = None


@dataclass
class Opened:
    fire: JobFire
    events: list[Event] = field(default_factory=list)


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def _device_run(row: CommandResult, name: str | None) -> DeviceRun:
    return DeviceRun(
        device_id=row.device_id,
        device_name=name,
        run_id=row.run_id,
        status=RunStatus(row.status),
        attempt=row.attempt,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_seconds=_duration(row.started_at, row.finished_at),
        error=row.error,
        error_kind=ErrorKind(row.error_kind) if row.error_kind else None,
    )


async def fire_counts(
    session: AsyncSession, fire_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Runs by status of each fire: one grouped query over the fires' index."""
    counts: dict[uuid.UUID, dict[str, int]] = {fire_id: {} for fire_id in fire_ids}
    if not fire_ids:
        return counts
    rows = await session.execute(
        select(CommandResult.fire_id, CommandResult.status, func.count())
        .where(CommandResult.fire_id.in_(fire_ids))
        .group_by(CommandResult.fire_id, CommandResult.status)
    )
    for fire_id, status, count in rows:
        counts[cast(uuid.UUID, fire_id)][status] = count
    return counts


async def slowest_runs(session: AsyncSession, fire_id: uuid.UUID) -> list[DeviceRun]:
    """The runs that took longest (one still running counts up to now).

    The few are chosen from the runs alone, then joined to their devices: joining all
    of a fire's runs first made PostgreSQL read every device (10,000 in a fleet's fire)
    for the names of five.
    """
    elapsed = func.coalesce(CommandResult.finished_at, func.now()) - CommandResult.started_at
    slowest = (
        select(CommandResult.id)
        .where(CommandResult.fire_id == fire_id, CommandResult.started_at.is_not(None))
        .order_by(elapsed.desc())
        .limit(SLOWEST_SHOWN)
    )
    rows = await session.execute(
        select(CommandResult, Device.name)
        .join(Device, Device.id == CommandResult.device_id)
        .where(CommandResult.id.in_(slowest))
        .order_by(elapsed.desc())
    )
    return [_device_run(row, name) for row, name in rows]


async def read_fire(
    session: AsyncSession,
    fire: JobFire,
    *,
    states: bool,
    limit: int = 50,
    offset: int = 0,
    status: RunStatus | None = None,
    counts: dict[str, int] | None = None,
) -> FireRead:
    if counts is None:
        counts = (await fire_counts(session, [fire.id]))[fire.id]
    state: FireState = "missed" if fire.missed else "finished" if fire.finished_at else "running"
    runs: Page[DeviceRun] | None = None
    if states:
        where = [CommandResult.fire_id == fire.id]
        if status is not None:
            where.append(CommandResult.status == status.value)
        total = await session.scalar(select(func.count()).select_from(CommandResult).where(*where))
        # The page is chosen on narrow rows (id and name), then read in full: sorting
        # the whole rows (output included) of 10,000 runs cost most of a fleet's GET.
        page = (
            select(CommandResult.id)
            .join(Device, Device.id == CommandResult.device_id)
            .where(*where)
            .order_by(Device.name, CommandResult.run_id)
            .limit(limit)
            .offset(offset)
        )
        rows = await session.execute(
            select(CommandResult, Device.name)
            .join(Device, Device.id == CommandResult.device_id)
            .where(CommandResult.id.in_(page))
            .order_by(Device.name, CommandResult.run_id)
        )
        runs = Page(
            items=[_device_run(row, name) for row, name in rows],
            total=total or 0,
            limit=limit,
            offset=offset,
        )
    return FireRead(
        id=fire.id,
        job_id=fire.job_id,
        state=state,
        manual=fire.manual,
        scheduled_at=fire.scheduled_at,
        started_at=fire.started_at,
        finished_at=fire.finished_at,
        duration_seconds=_duration(fire.started_at, fire.finished_at),
        total=sum(counts.values()),
        counts=counts,
        slowest=await slowest_runs(session, fire.id) if states or fire.finished_at else [],
        runs=runs,
    )


@router.get(
    "/jobs/{job_id}/fires",
    response_model=Page[FireRead],
    dependencies=[Depends(read_or_write)],
)
async def list_fires(
    job_id: uuid.UUID, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[FireRead]:
    """The job's fires, newest first, each with its counts."""
    if await session.get(Job, job_id) is None:
        raise NotFound("job", job_id)
    where = JobFire.job_id == job_id
    total = await session.scalar(select(func.count()).select_from(JobFire).where(where)) or 0
    fires = list(
        await session.scalars(
            select(JobFire)
            .where(where)
            .order_by(JobFire.scheduled_at.desc(), JobFire.created_at.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    counts = await fire_counts(session, [fire.id for fire in fires])
    items = [await read_fire(session, fire, states=False, counts=counts[fire.id]) for fire in fires]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/jobs/{job_id}/fires/{fire_id}",
    response_model=FireRead,
    dependencies=[Depends(read_or_write)],
)
async def read_one_fire(
    job_id: uuid.UUID,
    fire_id: uuid.UUID,
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
    status: RunStatus | None = Query(
        None, description="Only the devices whose run is in this status."
    ),
) -> FireRead:
    """One fire: counts, duration, the slowest devices and each device's run (paged)."""
    fire = await session.get(JobFire, fire_id)
    if fire is None or fire.job_id != job_id:
        raise NotFound("fire", fire_id)
    return await read_fire(session, fire, states=True, limit=limit, offset=offset, status=status)


def _fire_event(kind: str, fire: JobFire, **data: Any) -> Event:
    return Event(
        type=kind,
        job_id=fire.job_id,
        fire_id=fire.id,
        data={"scheduled_at": fire.scheduled_at.isoformat(), "manual": fire.manual, **data},
    )


async def open_fire(session: AsyncSession, request: FireRequest, *, field: str) -> Opened:
    """Make the fire and one run per target device, once (a second call finds them).

    A device whose previous run of this job has not ended is skipped (overlap: skip);
    a fire that opens past its starting deadline records every run as skipped.
    """
    job = await session.get(
        Job, request.job_id, with_for_update={"key_share": True}, populate_existing=True
    )
    if job is None:
        raise NotFound("job", request.job_id)
    existing = await session.get(JobFire, request.fire_id)
    if existing is not None:
        return Opened(existing)
    now = datetime.now(UTC)
    await _record_missed(session, job, request.missed, now)
    targets = await _targets(session, job, request.devices, field)
    late = (now - request.scheduled_at).total_seconds()
    missed = not request.manual and late > max(job.starting_deadline_seconds, MIN_STARTING_DEADLINE)
    busy = set() if job.overlap == "allow" or missed else await _busy_devices(session, job.id)
    fire = JobFire(
        id=request.fire_id,
        job_id=job.id,
        scheduled_at=request.scheduled_at,
        started_at=now,
        manual=request.manual,
        total=len(targets),
    )
    session.add(fire)
    await session.flush()
    rows = []
    for device_id in targets:
        skip = None
        if missed:
            skip = (
                f"missed: the fire opened {late:.0f}s late "
                f"(starting_deadline_seconds={job.starting_deadline_seconds})"
            )
        elif device_id in busy:
            skip = "the device's previous run of this job was still pending (overlap: skip)"
        rows.append(
            {
                "id": uuid.uuid4(),
                "run_id": fire_run_id(fire.id, device_id),
                "job_id": job.id,
                "fire_id": fire.id,
                "device_id": device_id,
                "scheduled_at": request.scheduled_at,
                "status": RunStatus.SKIPPED.value if skip else RunStatus.SCHEDULED.value,
                "finished_at": now if skip else None,
                "error": skip,
                "attempt": 1,
                "output_truncated": False,
            }
        )
    for start in range(0, len(rows), 2000):
        await session.execute(
            insert(_RUNS).on_conflict_do_nothing(index_elements=[_RUNS.c.run_id]),
            rows[start : start + 2000],
        )
    skipped = sum(row["status"] == RunStatus.SKIPPED.value for row in rows)
    if skipped:
        RUNS_RECORDED.labels(RunStatus.SKIPPED.value, "").inc(skipped)
    log.info(
        "fire opened on %d device(s)%s",
        len(targets),
        f", {len(busy)} skipped (still pending)" if busy else "",
        extra={"job_id": job.id, "fire_id": fire.id},
    )
    event = _fire_event("fire.started", fire, total=len(targets), name=job.name)
    return Opened(fire, [event])


async def _targets(
    session: AsyncSession, job: Job, narrowed: list[uuid.UUID] | None, field: str
) -> list[uuid.UUID]:
    where = Target.model_validate(job.target).condition()
    if narrowed is not None:
        where = and_(where, Device.id.in_(narrowed))
    # Held until the runs are inserted: a device deleted meanwhile would fail the insert.
    found = list(
        await session.scalars(
            select(Device.id)
            .where(where)
            .order_by(Device.id)
            .with_for_update(read=True, key_share=True)
        )
    )
    if narrowed is None:
        return found
    matched = set(found)
    for index, device_id in enumerate(narrowed):
        if device_id not in matched:
            raise FieldInvalid(
                f"{field}[{index}]", f"device {device_id} is not a target of this job"
            )
    return sorted(set(narrowed))


async def _busy_devices(session: AsyncSession, job_id: uuid.UUID) -> set[uuid.UUID]:
    """Devices with a run of this job still pending in a fire that has not finished."""
    rows = await session.scalars(
        select(CommandResult.device_id)
        .join(JobFire, JobFire.id == CommandResult.fire_id)
        .where(
            JobFire.job_id == job_id,
            JobFire.finished_at.is_(None),
            CommandResult.status.in_(_PENDING),
        )
        .distinct()
    )
    return set(rows)


async def _record_missed(
    session: AsyncSession, job: Job, times: list[datetime], now: datetime
) -> None:
    """Fires missed while no worker could fire them: a row each, with no runs."""
    if not times:
        return
    await session.execute(
        insert(JobFire)
        .values(
            [
                {
                    "id": fire_id_for(job.id, at),
                    "job_id": job.id,
                    "scheduled_at": at,
                    "started_at": now,
                    "finished_at": now,
                    "missed": True,
                    "total": 0,
                }
                for at in times
            ]
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def _plan(session: AsyncSession, job: Job, fire: JobFire) -> FirePlan:
    keys = list(job.per_label)
    rows = await session.execute(
        select(CommandResult.run_id, CommandResult.status, CommandResult.attempt, Device.labels)
        .join(Device, Device.id == CommandResult.device_id)
        .where(CommandResult.fire_id == fire.id, CommandResult.status.in_(_PENDING))
        .order_by(CommandResult.run_id)
    )
    runs = [
        PlannedRun(
            run_id=run_id,
            status=RunStatus(status),
            attempt=attempt,
            groups=[str(labels.get(key, UNLABELLED)) for key in keys],
        )
        for run_id, status, attempt, labels in rows
    ]
    return FirePlan(
        fire_id=fire.id,
        job_id=job.id,
        total=fire.total,
        ttl_seconds=job.ttl_seconds,
        max_in_flight=job.max_in_flight,
        per_label=job.per_label,
        retry_max_attempts=job.retry_max_attempts,
        retry_backoff_seconds=job.retry_backoff_seconds,
        runs=runs,
    )


@internal.post("", response_model=FirePlan)
async def open_fire_route(
    body: FireRequest, session: SessionDep, request: Request, background: BackgroundTasks
) -> FirePlan:
    """Open a fire (or find it open): the dispatcher's first call, repeated on a resume."""
    opened = await open_fire(session, body, field="devices")
    job = await session.get_one(Job, body.job_id)
    plan = await _plan(session, job, opened.fire)
    if opened.events:
        background.add_task(publish_events, request.app, opened.events)
    return plan


async def _fire_and_job(session: AsyncSession, fire_id: uuid.UUID) -> tuple[JobFire, Job]:
    row = (
        await session.execute(
            select(JobFire, Job)
            .join(Job, Job.id == JobFire.job_id)
            .where(JobFire.id == fire_id)
            .with_for_update(of=JobFire, key_share=True, read=True)
        )
    ).first()
    if row is None:
        raise NotFound("fire", fire_id)
    return row[0], row[1]


def _render(job: Job, device: Device) -> str:
    params = {
        **{str(k): str(v) for k, v in device.labels.items()},
        "name": device.name,
        "host": device.host,
        "platform": device.platform,
        **job.params,
    }
    return render(job.command, params)


@internal.post("/{fire_id}/dispatch", response_model=Dispatched)
async def dispatch(
    fire_id: uuid.UUID, body: DispatchRequest, session: SessionDep, request: Request
) -> Dispatched:
    """Publish these runs' tasks and mark them queued, in one transaction.

    The rows are locked while their tasks are published, so a device delete (which must
    lock them to delete them) either comes first, and nothing is published for the
    device, or waits until the publish is done.
    """
    fire, job = await _fire_and_job(session, fire_id)
    nc = request.app.state.nats
    if nc is None or not nc.is_connected:
        raise ServiceUnavailable("NATS is not connected; nothing was published")
    wanted = {item.run_id: item.attempt for item in body.items}
    rows = await session.execute(
        select(CommandResult, Device)
        .join(Device, Device.id == CommandResult.device_id)
        .where(CommandResult.fire_id == fire_id, CommandResult.run_id.in_(wanted))
        .order_by(CommandResult.run_id)
        .with_for_update(of=CommandResult)
    )
    answer = Dispatched()
    found: set[str] = set()
    now = datetime.now(UTC)
    deadline = now + timedelta(seconds=job.ttl_seconds)
    tasks: list[TaskMessage] = []
    rendered: list[dict[str, Any]] = []
    for run, device in rows:
        found.add(run.run_id)
        attempt = wanted[run.run_id]
        status = RunStatus(run.status)
        fresh = attempt == 1 and status == RunStatus.SCHEDULED
        retry = attempt == run.attempt + 1 and not status.is_final
        if not (fresh or retry):
            if status.is_final:
                answer.done.append(run.run_id)
            continue
        try:
            command = _render(job, device)
        except RenderError as exc:
            rendered.append(
                {
                    "id": run.id,
                    "status": RunStatus.FAILED.value,
                    "finished_at": now,
                    "error": f"cannot render the command for this device: {exc}",
                    "attempt": attempt,
                }
            )
            answer.done.append(run.run_id)
            continue
        tasks.append(
            TaskMessage(
                run_id=run.run_id,
                device_id=device.id,
                job_id=job.id,
                fire_id=fire.id,
                attempt=attempt,
                scheduled_at=fire.scheduled_at,
                deadline=deadline,
                platform=device.platform,
                host=device.host,
                port=device.port,
                username=device.username,
                credentials=device.credentials,
                command=command,
                timeout=job.timeout,
                connect_timeout=device.connect_timeout,
                host_key_policy=HostKeyPolicy(device.host_key_policy),
                host_key=device.host_key,
                session_limit=device.session_limit,
                mask=job.mask,
                parse=ParseSpec.model_validate(job.parse) if job.parse else None,
            )
        )
        rendered.append(
            {"id": run.id, "status": RunStatus.QUEUED.value, "attempt": attempt, "command": command}
        )
        answer.published[run.run_id] = deadline
    answer.gone = [run_id for run_id in wanted if run_id not in found]
    js = nc.jetstream()
    try:
        await asyncio.gather(*(publish(js, task.subject, task, task.msg_id) for task in tasks))
    except Exception as exc:
        raise ServiceUnavailable(
            f"tasks not published ({exc}); nothing was marked queued"
        ) from None
    if rendered:
        await session.execute(update(CommandResult), rendered)
    return answer


_RECORD = text(
    """
    UPDATE command_results AS r SET
        status = v.status,
        attempt = v.attempt,
        started_at = COALESCE(v.started_at, r.started_at),
        finished_at = COALESCE(v.finished_at, r.finished_at),
        output_hash = COALESCE(v.output_hash, r.output_hash),
        output_volatile = CASE WHEN v.output_hash IS NULL THEN r.output_volatile
                               ELSE v.output_volatile END,
        output_truncated = v.output_truncated OR r.output_truncated,
        parsed = COALESCE(v.parsed, r.parsed),
        parse_error = COALESCE(v.parse_error, r.parse_error),
        error = v.error,
        error_kind = v.error_kind,
        executor_id = COALESCE(v.executor_id, r.executor_id),
        updated_at = now()
    FROM unnest(
        CAST(:run_ids AS text[]), CAST(:statuses AS text[]), CAST(:ranks AS int[]),
        CAST(:attempts AS int[]), CAST(:started AS timestamptz[]),
        CAST(:finished AS timestamptz[]), CAST(:hashes AS bytea[]),
        CAST(CAST(:volatiles AS text[]) AS jsonb[]), CAST(:truncated AS boolean[]),
        CAST(CAST(:parsed AS text[]) AS jsonb[]), CAST(:parse_errors AS text[]),
        CAST(:errors AS text[]), CAST(:kinds AS text[]), CAST(:executors AS text[])
    ) AS v(run_id, status, rank, attempt, started_at, finished_at, output_hash,
           output_volatile, output_truncated, parsed, parse_error, error, error_kind,
           executor_id)
    WHERE r.run_id = v.run_id AND r.fire_id = :fire_id
      AND r.status IN ('scheduled', 'queued', 'running')
      AND v.attempt >= r.attempt
      AND (v.rank > CASE r.status WHEN 'scheduled' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END
           OR v.attempt > r.attempt)
    RETURNING r.run_id, r.device_id, r.command_id, r.schedule_id, r.job_id, r.fire_id,
              r.status, r.attempt, r.started_at, r.finished_at, r.error, r.error_kind
    """
)


def _latest(records: list[FireRunRecord]) -> list[FireRunRecord]:
    """One record per run: the furthest along (a batch may hold running and final)."""
    kept: dict[str, FireRunRecord] = {}
    for record in records:
        held = kept.get(record.run_id)
        if held is None or (record.attempt, rank(record.status)) > (
            held.attempt,
            rank(held.status),
        ):
            kept[record.run_id] = record
    return list(kept.values())


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value)


async def _blobs(session: AsyncSession, job: Job, records: list[FireRunRecord]) -> dict[str, Blob]:
    """Each output as stored (normalized when the job tracks changes), the new ones
    inserted in one statement."""
    platforms: dict[str, str] = {}
    if job.track_changes:
        rows = await session.execute(
            select(CommandResult.run_id, Device.platform)
            .join(Device, Device.id == CommandResult.device_id)
            .where(CommandResult.run_id.in_([r.run_id for r in records if r.output]))
        )
        platforms = {run_id: platform for run_id, platform in rows}
    blobs: dict[str, Blob] = {}
    for record in records:
        tracking = None
        if record.run_id in platforms and record.status == RunStatus.SUCCEEDED:
            tracking = ChangeTracking(
                platform=platforms[record.run_id], ignore_lines=job.ignore_lines
            )
        blob = blob_for(record.output, tracking, record.run_id)
        if blob is not None:
            blobs[record.run_id] = blob
    distinct = {blob.hash: blob for blob in blobs.values()}
    if distinct:
        await session.execute(
            insert(Output)
            .values(
                [
                    {"hash": b.hash, "size": b.size, "data": b.data, "volatile": b.residue}
                    for b in distinct.values()
                ]
            )
            .on_conflict_do_nothing(index_elements=["hash"])
        )
    return blobs


async def _compare(
    session: AsyncSession, run_ids: list[str], blobs: dict[str, Blob]
) -> list[tuple[CommandResult, Change]]:
    """Tracked runs that succeeded: compared with each device's previous run of the job."""
    tracked = [run_id for run_id in run_ids if run_id in blobs and blobs[run_id].normalized]
    if not tracked:
        return []
    rows = await session.scalars(select(CommandResult).where(CommandResult.run_id.in_(tracked)))
    changes = []
    with session.no_autoflush:
        for row in rows:
            change = await compare_with_previous(session, row, blobs[row.run_id], Series.of(row))
            if change is not None:
                changes.append((row, change))
    await session.flush()
    return changes


@internal.post("/{fire_id}/results", status_code=204, response_class=Response)
async def record_results(
    fire_id: uuid.UUID,
    body: FireRecords,
    session: SessionDep,
    settings: SettingsDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    """Record a batch of the fire's runs in one statement (and their new outputs in one
    more); a run that is final already, or that would move backwards, is left as it is.
    A job that tracks changes compares each successful run with the device's previous
    one, as a schedule's record does."""
    from netcron.api.results import (
        BLOB_KEY,
        RunFacts,
        cap_output,
        changed_event,
        learn_host_key,
        run_event,
    )

    _fire, job = await _fire_and_job(session, fire_id)
    records = [cap_output(r, settings.output_max_bytes) for r in _latest(body.records)]
    try:
        blobs = await _blobs(session, job, records)
        moved = (
            await session.execute(
                _RECORD,
                {
                    "fire_id": fire_id,
                    "run_ids": [r.run_id for r in records],
                    "statuses": [r.status.value for r in records],
                    "ranks": [rank(r.status) for r in records],
                    "attempts": [r.attempt for r in records],
                    "started": [r.started_at for r in records],
                    "finished": [r.finished_at for r in records],
                    "hashes": [
                        blobs[r.run_id].hash if r.run_id in blobs else None for r in records
                    ],
                    "volatiles": [
                        _json(blobs[r.run_id].residue) if r.run_id in blobs else None
                        for r in records
                    ],
                    "truncated": [r.output_truncated for r in records],
                    "parsed": [_json(r.parsed) for r in records],
                    "parse_errors": [r.parse_error for r in records],
                    "errors": [r.error for r in records],
                    "kinds": [r.error_kind.value if r.error_kind else None for r in records],
                    "executors": [r.executor_id for r in records],
                },
            )
        ).all()
    except IntegrityError as exc:
        if BLOB_KEY not in str(exc.orig):
            raise
        # retention swept an output between its insert and the update: record again
        raise ServiceUnavailable("an output was swept while it was recorded; send again") from None
    changes = await _compare(session, [row.run_id for row in moved], blobs)
    for row in moved:
        if RunStatus(row.status).is_final:
            RUNS_RECORDED.labels(row.status, row.error_kind or "").inc()
    by_run = {r.run_id: r for r in records}
    events = [run_event(cast(RunFacts, row), by_run[row.run_id].output) for row in moved]
    events += [changed_event(row, change) for row, change in changes]
    keys: dict[uuid.UUID, str] = {}
    for row in moved:
        if (key := by_run[row.run_id].host_key) is not None:
            keys[row.device_id] = key
    if keys:
        unknown = await session.scalars(
            select(Device.id).where(Device.id.in_(keys), Device.host_key.is_(None))
        )
        for device_id in unknown:
            await learn_host_key(session, orchestrator, background, device_id, keys[device_id])
    if events:
        background.add_task(publish_events, request.app, events)
    return Response(status_code=204, background=background)


@internal.post("/{fire_id}/finish", response_model=FireSummary)
async def finish_fire(
    fire_id: uuid.UUID, session: SessionDep, request: Request, background: BackgroundTasks
) -> FireSummary:
    """Close the fire once every run is final (the dispatcher knows when); runs that are
    somehow still pending are recorded as timed out, so a fire always ends."""
    fire, job = await _fire_and_job(session, fire_id)
    now = datetime.now(UTC)
    if fire.finished_at is None:
        await session.execute(
            update(CommandResult)
            .where(CommandResult.fire_id == fire_id, CommandResult.status.in_(_PENDING))
            .values(
                status=RunStatus.TIMED_OUT.value,
                finished_at=now,
                error="the fire ended without a result for this device",
                error_kind=ErrorKind.TIMEOUT.value,
            )
        )
        fire.finished_at = now
        await session.flush()
        counts = (await fire_counts(session, [fire_id]))[fire_id]
        slowest = await slowest_runs(session, fire_id)
        event = _fire_event(
            "fire.finished",
            fire,
            name=job.name,
            counts=counts,
            duration_seconds=_duration(fire.started_at, now),
            slowest=[
                {
                    "device": run.device_name,
                    "status": run.status.value,
                    "seconds": run.duration_seconds,
                }
                for run in slowest
            ],
        )
        background.add_task(publish_events, request.app, [event])
        log.info(
            "fire finished: %s",
            ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no devices",
            extra={"job_id": job.id, "fire_id": fire_id},
        )
    else:
        counts = (await fire_counts(session, [fire_id]))[fire_id]
    return FireSummary(fire_id=fire_id, total=sum(counts.values()), counts=counts)
