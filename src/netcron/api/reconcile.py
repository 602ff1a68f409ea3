"""Reconciliation: PostgreSQL and Temporal never drift apart for long.

For every schedule row there must be one running workflow holding the row's spec
version (paused ones included: pausing is in the spec), and no schedule workflow may
run without a row. Runs on api start and every ``NETCRON_RECONCILE_INTERVAL`` seconds;
a PostgreSQL advisory lock lets one api replica do it at a time. Each repair is logged.

A pass costs a bounded number of Temporal calls: one visibility listing (a page per
1,000 workflows, each carrying its spec version in its memo) tells it every workflow's
state; only the schedules that listing shows out of step are looked at one by one.
Each repair runs in its own transaction holding the schedule's workflow lock, as a
delete does, and looks at the row again under it: a pass never starts the workflow of a
schedule deleted after the pass read it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from netcron.api.orchestrator import (
    Orchestrator,
    OrchestratorUnavailable,
    WorkflowGone,
    for_each,
)
from netcron.api.specs import current_specs, hold_workflows, job_spec
from netcron.db.models import Job, Schedule
from netcron.jobspec import JobInput
from netcron.observability.metrics import RECONCILE_REPAIRS
from netcron.runspec import ScheduleInput

log = logging.getLogger(__name__)

#: A workflow younger than this may belong to a schedule whose row is not committed yet.
ORPHAN_GRACE = timedelta(seconds=30)
#: pg_try_advisory_xact_lock key: "netcron reconcile".
LOCK_KEY = 0x6E6574636F6E


class Suspect(StrEnum):
    """What the listing suggests is wrong with a schedule (checked again before a repair)."""

    MISSING = "missing"
    BEHIND = "behind"
    ORPHAN = "orphan"


@dataclass
class Repairs:
    """What one pass found and fixed."""

    checked: int = 0
    suspects: int = 0
    started: list[UUID] = field(default_factory=list)
    updated: list[UUID] = field(default_factory=list)
    stopped: list[UUID] = field(default_factory=list)
    failed: list[UUID] = field(default_factory=list)
    skipped: bool = False

    @property
    def count(self) -> int:
        return len(self.started) + len(self.updated) + len(self.stopped)


async def reconcile(
    sessionmaker: async_sessionmaker[AsyncSession],
    orchestrator: Orchestrator,
    *,
    orphan_grace: timedelta = ORPHAN_GRACE,
) -> Repairs:
    """One pass; raises OrchestratorUnavailable when Temporal cannot be reached."""
    repairs = Repairs()
    async with sessionmaker() as session, session.begin():
        if not await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
            repairs.skipped = True
            return repairs
        versions = dict((await session.execute(select(Schedule.id, Schedule.spec_version))).all())
        running = await orchestrator.inventory()
        repairs.checked = len(versions)
        settled = datetime.now(UTC) - orphan_grace
        suspects = [(i, Suspect.MISSING) for i in versions if i not in running]
        suspects += [
            (i, Suspect.BEHIND)
            for i, version in versions.items()
            if i in running and (running[i].spec_version or 0) < version
        ]
        suspects += [
            (i, Suspect.ORPHAN)
            for i, workflow in running.items()
            if i not in versions and workflow.started_at <= settled
        ]
        repairs.suspects = len(suspects)

        async def repair(suspect: tuple[UUID, Suspect]) -> None:
            try:
                await _repair(sessionmaker, orchestrator, *suspect, repairs)
            except OrchestratorUnavailable as exc:
                repairs.failed.append(suspect[0])
                log.warning(
                    "could not repair (%s): %s; the next pass tries again",
                    suspect[1].value,
                    exc,
                    extra={"schedule_id": suspect[0]},
                )

        await for_each(suspects, repair)
    _count(repairs)
    return repairs


def _count(repairs: Repairs) -> None:
    for repair_kind, done in (
        ("started", repairs.started),
        ("updated", repairs.updated),
        ("stopped", repairs.stopped),
    ):
        RECONCILE_REPAIRS.labels(repair_kind).inc(len(done))


async def _repair(
    sessionmaker: async_sessionmaker[AsyncSession],
    orchestrator: Orchestrator,
    schedule_id: UUID,
    suspect: Suspect,
    repairs: Repairs,
) -> None:
    """Look again under the schedule's workflow lock, and repair what is still wrong."""
    extra = {"schedule_id": schedule_id}
    async with sessionmaker() as session, session.begin():
        await hold_workflows(session, [schedule_id])
        if await session.scalar(select(Schedule.id).where(Schedule.id == schedule_id)) is None:
            if suspect is Suspect.ORPHAN and await orchestrator.is_running(schedule_id):
                await orchestrator.stop(schedule_id)
                repairs.stopped.append(schedule_id)
                log.warning("repaired: workflow ran without a schedule; stopped it", extra=extra)
            return  # deleted since the pass read it: its delete stopped the workflow
        (spec,) = await current_specs(session, Schedule.id == schedule_id)
        if suspect is Suspect.BEHIND:
            # One call: the update is idempotent and says which version was held.
            try:
                before = await orchestrator.update(spec)
            except WorkflowGone:
                suspect = Suspect.MISSING
            else:
                if before is None or before < spec.version:
                    repairs.updated.append(schedule_id)
                    held = "an older spec" if before is None else f"v{before}"
                    log.warning(
                        "repaired: workflow had %s, sent v%d", held, spec.version, extra=extra
                    )
                return
        if not await orchestrator.is_running(schedule_id):
            await orchestrator.start(ScheduleInput(spec=spec))
            repairs.started.append(schedule_id)
            log.warning("repaired: workflow was missing; started it", extra=extra)


async def reconcile_jobs(
    sessionmaker: async_sessionmaker[AsyncSession],
    orchestrator: Orchestrator,
    *,
    orphan_grace: timedelta = ORPHAN_GRACE,
) -> Repairs:
    """Jobs as schedules: a workflow per row at the row's version, none without a row.

    Jobs are few, so a repair takes no workflow lock: a pass that starts the workflow of
    a job deleted meanwhile leaves a workflow whose fires the api refuses (404, nothing
    is published), and the next pass stops it as an orphan.
    """
    repairs = Repairs()
    async with sessionmaker() as session:
        jobs = {job.id: job for job in await session.scalars(select(Job))}
    running = await orchestrator.job_inventory()
    repairs.checked = len(jobs)
    settled = datetime.now(UTC) - orphan_grace

    async def repair(job_id: UUID) -> None:
        extra = {"job_id": job_id}
        try:
            if job_id not in jobs:
                await orchestrator.stop_job(job_id)
                repairs.stopped.append(job_id)
                log.warning("repaired: job workflow ran without a job; stopped it", extra=extra)
            elif job_id not in running:
                await orchestrator.start_job(JobInput(spec=job_spec(jobs[job_id])))
                repairs.started.append(job_id)
                log.warning("repaired: job workflow was missing; started it", extra=extra)
            else:
                await orchestrator.update_job(job_spec(jobs[job_id]))
                repairs.updated.append(job_id)
                log.warning("repaired: job workflow was behind; sent its spec", extra=extra)
        except (OrchestratorUnavailable, WorkflowGone) as exc:
            repairs.failed.append(job_id)
            log.warning("could not repair job workflow: %s", exc, extra=extra)

    suspects = [i for i in jobs if i not in running]
    suspects += [
        i
        for i, job in jobs.items()
        if i in running and (running[i].spec_version or 0) < job.spec_version
    ]
    suspects += [i for i, w in running.items() if i not in jobs and w.started_at <= settled]
    repairs.suspects = len(suspects)
    await for_each(suspects, repair)
    _count(repairs)
    return repairs


async def reconcile_forever(
    sessionmaker: async_sessionmaker[AsyncSession], orchestrator: Orchestrator, interval: float
) -> None:
    """Reconcile now and then every ``interval`` seconds (0: only now), until cancelled."""
    while True:
        try:
            for what, repairs in (
                ("schedules", await reconcile(sessionmaker, orchestrator)),
                ("jobs", await reconcile_jobs(sessionmaker, orchestrator)),
            ):
                if repairs.count or repairs.failed:
                    log.info(
                        "reconciliation checked %d %s and repaired %d "
                        "(%d started, %d updated, %d stopped; %d to retry)",
                        repairs.checked,
                        what,
                        repairs.count,
                        len(repairs.started),
                        len(repairs.updated),
                        len(repairs.stopped),
                        len(repairs.failed),
                    )
        except OrchestratorUnavailable as exc:
            log.warning("reconciliation postponed, Temporal is unreachable: %s", exc)
        except Exception:
            log.exception("reconciliation failed")
        if not interval:
            return
        await asyncio.sleep(interval)
