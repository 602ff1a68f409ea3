"""Reconciliation: PostgreSQL and Temporal never drift apart for long.

For every schedule row there must be one running workflow holding the row's spec
version (paused ones included: pausing is in the spec), and no schedule workflow may
run without a row. Runs on api start and every ``NETCRON_RECONCILE_INTERVAL`` seconds;
a PostgreSQL advisory lock lets one api replica do it at a time. Each repair is logged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from netcron.api.orchestrator import Orchestrator, OrchestratorUnavailable
from netcron.api.specs import current_specs
from netcron.db.models import Schedule
from netcron.runspec import ScheduleInput

log = logging.getLogger(__name__)

#: A workflow younger than this may belong to a schedule whose row is not committed yet.
ORPHAN_GRACE = timedelta(seconds=30)
#: pg_try_advisory_xact_lock key: "netcron reconcile".
LOCK_KEY = 0x6E6574636F6E


@dataclass
class Repairs:
    """What one pass found and fixed."""

    checked: int = 0
    started: list[UUID] = field(default_factory=list)
    updated: list[UUID] = field(default_factory=list)
    stopped: list[UUID] = field(default_factory=list)
    skipped: bool = False

    @property
    def count(self) -> int:
        return len(self.started) + len(self.updated) + len(self.stopped)


async def reconcile(session: AsyncSession, orchestrator: Orchestrator) -> Repairs:
    """One pass; raises OrchestratorUnavailable when Temporal cannot be reached."""
    repairs = Repairs()
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
        repairs.skipped = True
        return repairs
    specs = await current_specs(session, true())
    repairs.checked = len(specs)
    for spec in specs:
        extra = {"schedule_id": spec.schedule_id}
        version = await orchestrator.spec_version(spec.schedule_id)
        if version is None:
            await orchestrator.start(ScheduleInput(spec=spec))
            repairs.started.append(spec.schedule_id)
            log.warning("repaired: workflow was missing; started it", extra=extra)
        elif version < spec.version:
            await orchestrator.update(spec)
            repairs.updated.append(spec.schedule_id)
            log.warning(
                "repaired: workflow had spec v%d, sent v%d", version, spec.version, extra=extra
            )
    known = {spec.schedule_id for spec in specs}
    settled = datetime.now(UTC) - ORPHAN_GRACE
    for orphan in await orchestrator.running_schedules(started_before=settled) - known:
        if await session.get(Schedule, orphan) is not None:
            continue  # committed since this pass read the schedules
        await orchestrator.stop(orphan)
        repairs.stopped.append(orphan)
        log.warning(
            "repaired: workflow ran for a deleted schedule; stopped it",
            extra={"schedule_id": orphan},
        )
    return repairs


async def reconcile_forever(
    sessionmaker: async_sessionmaker[AsyncSession], orchestrator: Orchestrator, interval: float
) -> None:
    """Reconcile now and then every ``interval`` seconds (0: only now), until cancelled."""
    while True:
        try:
            async with sessionmaker() as session, session.begin():
                repairs = await reconcile(session, orchestrator)
            if repairs.count:
                log.info(
                    "reconciliation repaired %d of %d schedules", repairs.count, repairs.checked
                )
        except OrchestratorUnavailable as exc:
            log.warning("reconciliation postponed, Temporal is unreachable: %s", exc)
        except Exception:
            log.exception("reconciliation failed")
        if not interval:
            return
        await asyncio.sleep(interval)
