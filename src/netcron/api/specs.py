"""Run specs: the snapshot each schedule's workflow fires from, built and pushed by the api.

The database is the source of truth. A change commits first, then its new spec goes to
the running workflow; when Temporal cannot take it, reconciliation carries it later
(the workflow's spec version is behind the row's, which is what it looks for).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.errors import FieldInvalid, ServiceUnavailable
from netcron.api.orchestrator import (
    Orchestrator,
    OrchestratorUnavailable,
    WorkflowGone,
    for_each,
)
from netcron.db.models import Command, Device, Job, Schedule
from netcron.history.options import HistoryOptions, ParseSpec
from netcron.jobspec import JobSpec
from netcron.platforms import HostKeyPolicy
from netcron.render import RenderError, render
from netcron.runspec import DeviceTarget, RunSpec

log = logging.getLogger(__name__)


def rendered_command(command: Command, params: dict[str, str]) -> str:
    try:
        return render(command.text, {**command.params, **params})
    except RenderError as exc:
        raise FieldInvalid(f"params.{exc.param}", str(exc)) from None


def device_target(device: Device) -> DeviceTarget:
    """Where and how to reach the device, as runs and checks carry it."""
    return DeviceTarget(
        host=device.host,
        port=device.port,
        platform=device.platform,
        username=device.username,
        credentials=device.credentials,
        host_key_policy=HostKeyPolicy(device.host_key_policy),
        host_key=device.host_key,
        session_limit=device.session_limit,
        connect_timeout=device.connect_timeout,
    )


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
        retry_max_attempts=schedule.retry_max_attempts,
        retry_backoff_seconds=schedule.retry_backoff_seconds,
        device=device_target(device),
        command=rendered_command(command, schedule.params),
        command_timeout=command.timeout,
        history=history_options(command),
    )


def history_options(command: Command) -> HistoryOptions:
    return HistoryOptions(
        track_changes=command.track_changes,
        ignore_lines=command.ignore_lines,
        mask=command.mask,
        parse=ParseSpec.model_validate(command.parse) if command.parse else None,
    )


def job_spec(job: Job) -> JobSpec:
    """What a job's workflow fires from: only when; the rest is read at each fire."""
    return JobSpec(
        version=job.spec_version,
        job_id=job.id,
        cron=job.cron,
        timezone=job.timezone,
        is_active=job.is_active,
        starting_deadline_seconds=job.starting_deadline_seconds,
    )


async def current_specs(
    session: AsyncSession, where: ColumnElement[bool], *, bump: bool = False
) -> list[RunSpec]:
    """Specs of the schedules matching ``where``; ``bump`` marks them changed (new version).

    A bump locks the schedule rows and reads their versions afresh, so two changes at
    once get two versions (both read v5 and wrote v6 once, and the workflow kept
    whichever v6 came last, the stale one included).
    """
    query = (
        select(Schedule, Device, Command)
        .join(Device, Schedule.device_id == Device.id)
        .join(Command, Schedule.command_id == Command.id)
        .where(where)
        .order_by(Schedule.id)
    )
    if bump:
        query = query.with_for_update(of=Schedule, key_share=True).execution_options(
            populate_existing=True
        )
    rows = await session.execute(query)
    specs = []
    for schedule, device, command in rows:
        if bump:
            schedule.spec_version += 1
        specs.append(build_spec(schedule, device, command))
    if bump:
        await session.flush()
    return specs


#: First key of the per-schedule advisory locks ("ncwf"); the second is from the id.
WORKFLOW_LOCK_CLASS = 0x6E637766


def _workflow_lock_key(schedule_id: UUID) -> int:
    return int.from_bytes(schedule_id.bytes[:4], "big", signed=True)


async def hold_workflows(session: AsyncSession, ids: Sequence[UUID]) -> None:
    """Take the schedules' workflow locks until the transaction ends (in key order).

    Whoever starts or stops a schedule's workflow holds this lock while it does:
    reconciliation before it starts a missing one, a delete before it stops one. So a
    pass that read a schedule before its delete cannot start its workflow again after.
    It is an advisory lock, not the row's, so that a run being recorded meanwhile (the
    schedule workflow waits on it before it can take the stop) is not held up by it.
    """
    for key in sorted({_workflow_lock_key(schedule_id) for schedule_id in ids}):
        await session.execute(select(func.pg_advisory_xact_lock(WORKFLOW_LOCK_CLASS, key)))


async def stop_schedules(
    session: AsyncSession, orchestrator: Orchestrator, where: ColumnElement[bool], what: str
) -> list[UUID]:
    """Stop the matching schedules' workflows for good, under their workflow locks; the
    caller then locks and deletes the rows. Returns the schedules stopped."""
    ids = list(await session.scalars(select(Schedule.id).where(where).order_by(Schedule.id)))
    await hold_workflows(session, ids)
    await stop_workflows(orchestrator, ids, what)
    return ids


async def stop_for_delete(
    session: AsyncSession,
    orchestrator: Orchestrator,
    where: ColumnElement[bool],
    what: str,
    lock_parent: Callable[[], Awaitable[None]],
) -> list[UUID]:
    """Stop the workflows of a command's or a device's schedules, then lock the rows for
    its delete; returns the schedules stopped.

    Rows in the order every transaction takes them (see ``lock_schedules``): schedules,
    then the parent, whose lock waits for schedules being created under it to commit.
    Those are stopped too.
    """
    stopped = await stop_schedules(session, orchestrator, where, what)
    await lock_schedules(session, where)
    await lock_parent()
    created = [i for i in await lock_schedules(session, where) if i not in stopped]
    await hold_workflows(session, created)
    await stop_workflows(orchestrator, created, what)
    return stopped + created


async def lock_schedules(
    session: AsyncSession, where: ColumnElement[bool], *, for_delete: bool = True
) -> list[UUID]:
    """Lock the matching schedule rows until the transaction ends, in id order.

    ``for_delete=False`` takes the weaker lock an update needs, which lets runs be
    recorded meanwhile. Lock order, everywhere: schedules (in id order) first, then their
    command, then their device. A run being recorded takes its schedule's lock first as
    well, so no two transactions ever wait on each other in a circle.
    """
    rows = await session.scalars(
        select(Schedule.id)
        .where(where)
        .order_by(Schedule.id)
        .with_for_update(key_share=not for_delete)
    )
    return list(rows)


async def push_specs(orchestrator: Orchestrator, specs: Sequence[RunSpec]) -> bool:
    """Send committed specs to their workflows; False when reconciliation must finish it.

    Once Temporal has proved unreachable, the rest are left to reconciliation at once
    rather than each waiting out its own timeout.
    """
    undelivered: list[RunSpec] = []
    unreachable = False

    async def push(spec: RunSpec) -> None:
        nonlocal unreachable
        if unreachable:
            undelivered.append(spec)
            return
        try:
            await orchestrator.update(spec)
        except (OrchestratorUnavailable, WorkflowGone) as exc:
            unreachable = unreachable or isinstance(exc, OrchestratorUnavailable)
            undelivered.append(spec)
            log.warning(
                "spec v%d not delivered (%s); reconciliation will deliver it",
                spec.version,
                exc,
                extra={"schedule_id": spec.schedule_id},
            )

    await for_each(specs, push)
    return not undelivered


async def stop_workflows(orchestrator: Orchestrator, ids: Sequence[UUID], what: str) -> None:
    """End the workflows before their rows go: nothing may fire for what is deleted."""
    try:
        await for_each(ids, orchestrator.stop)
    except OrchestratorUnavailable as exc:
        raise ServiceUnavailable(
            f"cannot stop the schedules' workflows, so the {what} was kept: {exc}"
        ) from None
