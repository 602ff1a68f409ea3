"""What the console's pages read: a few bounded queries each, on the api's indexes.

Every list is paged or capped, and every per-row lookup goes through an index
(``device_id, scheduled_at`` for a device's runs, ``scheduled_at`` for the last hour),
so a page costs the same with ten devices as with ten thousand.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, exists, func, select, true
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from netcron.api.errors import NotFound
from netcron.api.fires import fire_counts
from netcron.cron import next_fire_time
from netcron.db.models import Command, CommandResult, Device, Job, JobFire, Schedule
from netcron.fleet.selector import Target, parse_label_filters
from netcron.runs import RunStatus

#: What a list of runs shows: never the output (up to a megabyte each).
LISTED = (
    CommandResult.run_id,
    CommandResult.device_id,
    CommandResult.command_id,
    CommandResult.job_id,
    CommandResult.scheduled_at,
    CommandResult.started_at,
    CommandResult.finished_at,
    CommandResult.status,
    CommandResult.attempt,
    CommandResult.error_kind,
    CommandResult.command,
)
FAILED = (RunStatus.FAILED.value, RunStatus.TIMED_OUT.value)
PENDING = (RunStatus.SCHEDULED.value, RunStatus.QUEUED.value, RunStatus.RUNNING.value)
RECENT_RUNS = 50
FAILING_SHOWN = 20
TARGETS_SHOWN = 25
FIRES_SHOWN = 20


@dataclass
class Overview:
    """The front page: what ran in the last hour and what is failing."""

    since: datetime
    runs_by_status: dict[str, int]
    failing: list[Any]
    executors: list[Any]
    recent: list[Any]
    devices: int
    jobs: int


async def overview(session: AsyncSession, now: datetime | None = None) -> Overview:
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=1)
    in_hour = CommandResult.scheduled_at >= since
    by_status = {
        status: count
        for status, count in await session.execute(
            select(CommandResult.status, func.count()).where(in_hour).group_by("status")
        )
    }
    # A device is failing when its latest final run of the last hour failed: start from
    # the few failed runs (not from every run of the hour) and drop a device whose later
    # run ended otherwise.
    failed = (
        select(
            CommandResult.device_id,
            CommandResult.status,
            CommandResult.error_kind,
            CommandResult.error,
            CommandResult.run_id,
            CommandResult.scheduled_at,
        )
        .where(in_hour, CommandResult.status.in_(FAILED))
        .ext(distinct_on(CommandResult.device_id))
        .order_by(CommandResult.device_id, CommandResult.scheduled_at.desc())
        .subquery()
    )
    later = aliased(CommandResult)
    recovered = exists().where(
        later.device_id == failed.c.device_id,
        later.scheduled_at > failed.c.scheduled_at,
        later.status.not_in(PENDING),
    )
    failing = list(
        await session.execute(
            select(failed, Device.name, func.count().over().label("failing_total"))
            .join(Device, Device.id == failed.c.device_id)
            .where(~recovered)
            .order_by(failed.c.scheduled_at.desc())
            .limit(FAILING_SHOWN)
        )
    )
    executors = list(
        await session.execute(
            select(
                CommandResult.executor_id,
                func.count().label("runs"),
                func.max(CommandResult.finished_at).label("last_seen"),
            )
            .where(
                CommandResult.scheduled_at >= now - timedelta(minutes=10),
                CommandResult.executor_id.is_not(None),
            )
            .group_by(CommandResult.executor_id)
            .order_by(CommandResult.executor_id)
        )
    )
    recent = list(
        await session.execute(
            select(*LISTED, Device.name)
            .join(Device, Device.id == CommandResult.device_id)
            .order_by(CommandResult.scheduled_at.desc())
            .limit(15)
        )
    )
    devices = await session.scalar(select(func.count()).select_from(Device)) or 0
    jobs = await session.scalar(select(func.count()).select_from(Job)) or 0
    return Overview(since, by_status, failing, executors, recent, devices, jobs)


def parse_labels(text: str) -> dict[str, list[str]]:
    """``site:ams1 role:core`` (spaces or commas) as a label filter; ValueError if malformed."""
    items = [part for part in text.replace(",", " ").split() if part]
    return parse_label_filters(items)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass
class DevicePage:
    rows: list[Row[Any]]
    total: int
    offset: int
    limit: int


def _last_run() -> Any:
    return (
        select(
            CommandResult.run_id,
            CommandResult.status,
            CommandResult.scheduled_at,
            CommandResult.error_kind,
        )
        .where(CommandResult.device_id == Device.id)
        .order_by(CommandResult.scheduled_at.desc())
        .limit(1)
        .lateral("last_run")
    )


async def device_page(
    session: AsyncSession, *, q: str, labels: dict[str, list[str]], limit: int, offset: int
) -> DevicePage:
    where: list[ColumnElement[bool]] = []
    if q:
        where.append(Device.name.ilike(_like(q), escape="\\"))
    if labels:
        where.append(Target(labels=labels).condition())
    condition = and_(true(), *where)
    total = await session.scalar(select(func.count()).select_from(Device).where(condition)) or 0
    # The page of devices first, then each one's last run: a lateral join before the
    # OFFSET would look up the last run of every device skipped too.
    chosen = (
        select(Device.id)
        .where(condition)
        .order_by(Device.name, Device.id)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    last = _last_run()
    rows = list(
        await session.execute(
            select(Device, last.c.run_id, last.c.status, last.c.scheduled_at, last.c.error_kind)
            .join(chosen, chosen.c.id == Device.id)
            .outerjoin(last, true())
            .order_by(Device.name, Device.id)
        )
    )
    return DevicePage(rows, total, offset, limit)


async def get_device(session: AsyncSession, device_id: uuid.UUID) -> Device:
    device = await session.get(Device, device_id)
    if device is None:
        raise NotFound("device", device_id)
    return device


@dataclass
class DeviceDetail:
    device: Device
    commands: list[Command]
    schedules: dict[uuid.UUID, list[Schedule]]
    runs: list[Any]
    command_names: dict[uuid.UUID, str] = field(default_factory=dict)
    job_names: dict[uuid.UUID, str] = field(default_factory=dict)


async def device_detail(session: AsyncSession, device_id: uuid.UUID) -> DeviceDetail:
    device = await get_device(session, device_id)
    commands = list(
        await session.scalars(
            select(Command)
            .where(Command.device_id == device_id)
            .order_by(Command.created_at, Command.id)
        )
    )
    schedules: dict[uuid.UUID, list[Schedule]] = {c.id: [] for c in commands}
    for schedule in await session.scalars(
        select(Schedule)
        .where(Schedule.device_id == device_id)
        .order_by(Schedule.created_at, Schedule.id)
    ):
        schedules.setdefault(schedule.command_id, []).append(schedule)
    runs = list(
        await session.execute(
            select(*LISTED)
            .where(CommandResult.device_id == device_id)
            .order_by(CommandResult.scheduled_at.desc(), CommandResult.run_id.desc())
            .limit(RECENT_RUNS)
        )
    )
    job_ids = {run.job_id for run in runs if run.job_id}
    jobs = (
        dict(list(await session.execute(select(Job.id, Job.name).where(Job.id.in_(job_ids)))))
        if job_ids
        else {}
    )
    return DeviceDetail(
        device=device,
        commands=commands,
        schedules=schedules,
        runs=runs,
        command_names={c.id: c.name for c in commands},
        job_names=jobs,
    )


@dataclass
class RunDetail:
    device: Device
    run: CommandResult
    command: Command | None
    job: Job | None
    previous: CommandResult | None


async def run_detail(session: AsyncSession, device_id: uuid.UUID, run_id: str) -> RunDetail:
    device = await get_device(session, device_id)
    run = await session.scalar(
        select(CommandResult).where(
            CommandResult.run_id == run_id, CommandResult.device_id == device_id
        )
    )
    if run is None:
        raise NotFound("run", run_id)
    command = await session.get(Command, run.command_id) if run.command_id else None
    job = await session.get(Job, run.job_id) if run.job_id else None
    return RunDetail(device, run, command, job, await previous_output(session, run))


async def previous_output(session: AsyncSession, run: CommandResult) -> CommandResult | None:
    """The latest earlier successful run of the same command (or job) on the device."""
    same = (
        CommandResult.command_id == run.command_id
        if run.command_id
        else CommandResult.job_id == run.job_id
    )
    found: CommandResult | None = await session.scalar(
        select(CommandResult)
        .where(
            CommandResult.device_id == run.device_id,
            same,
            CommandResult.scheduled_at < run.scheduled_at,
            CommandResult.status == RunStatus.SUCCEEDED.value,
        )
        .order_by(CommandResult.scheduled_at.desc())
        .limit(1)
    )
    return found


async def job_targets(
    session: AsyncSession, target: Target, limit: int = TARGETS_SHOWN
) -> tuple[int, list[Device]]:
    condition = target.condition()
    total = await session.scalar(select(func.count()).select_from(Device).where(condition)) or 0
    devices = list(
        await session.scalars(select(Device).where(condition).order_by(Device.name).limit(limit))
    )
    return total, devices


@dataclass
class FireSummary:
    """A fire as a list shows it: its counts, not its slowest devices or its runs."""

    id: uuid.UUID
    job_id: uuid.UUID
    scheduled_at: datetime
    manual: bool
    state: str
    total: int
    counts: dict[str, int]
    duration_seconds: float | None

    @property
    def done(self) -> int:
        return self.total - sum(self.counts.get(status, 0) for status in PENDING)


def _summaries(fires: list[JobFire], counts: dict[uuid.UUID, dict[str, int]]) -> list[FireSummary]:
    return [
        FireSummary(
            id=fire.id,
            job_id=fire.job_id,
            scheduled_at=fire.scheduled_at,
            manual=fire.manual,
            state="missed" if fire.missed else "finished" if fire.finished_at else "running",
            total=sum(counts[fire.id].values()),
            counts=counts[fire.id],
            duration_seconds=(fire.finished_at - fire.started_at).total_seconds()
            if fire.finished_at
            else None,
        )
        for fire in fires
    ]


async def job_fires(session: AsyncSession, job_id: uuid.UUID) -> list[FireSummary]:
    fires = list(
        await session.scalars(
            select(JobFire)
            .where(JobFire.job_id == job_id)
            .order_by(JobFire.scheduled_at.desc(), JobFire.created_at.desc())
            .limit(FIRES_SHOWN)
        )
    )
    return _summaries(fires, await fire_counts(session, [fire.id for fire in fires]))


@dataclass
class JobRow:
    job: Job
    next_fire: datetime | None
    last_fire: FireSummary | None


async def job_page(session: AsyncSession, *, limit: int, offset: int) -> tuple[int, list[JobRow]]:
    """A page of jobs, each with its next fire and its latest fire's counts (three queries)."""
    total = await session.scalar(select(func.count()).select_from(Job)) or 0
    jobs = list(
        await session.scalars(select(Job).order_by(Job.name, Job.id).limit(limit).offset(offset))
    )
    latest = list(
        await session.scalars(
            select(JobFire)
            .where(JobFire.job_id.in_([job.id for job in jobs]))
            .ext(distinct_on(JobFire.job_id))
            .order_by(JobFire.job_id, JobFire.scheduled_at.desc(), JobFire.created_at.desc())
        )
    )
    summaries = {
        fire.job_id: fire
        for fire in _summaries(latest, await fire_counts(session, [f.id for f in latest]))
    }
    now = datetime.now(UTC)
    rows = [
        JobRow(
            job=job,
            next_fire=next_fire_time(job.cron, job.timezone, now) if job.is_active else None,
            last_fire=summaries.get(job.id),
        )
        for job in jobs
    ]
    return total, rows
