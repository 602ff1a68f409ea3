"""Retention: old runs go in small batches; change points (versions) stay.

Runs older than ``NETCRON_RESULTS_RETENTION_DAYS`` are deleted a batch at a time, each
batch its own short transaction (rows locked with SKIP LOCKED, so a record or another
replica's pass is never waited on for long); a version is never deleted by that. Versions
have their own setting (default: keep all), and even then the newest version of each
series stays: it is the configuration as last known. Blobs that no run points at any
more go with the batch that freed them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from netcron.db.models import CommandResult, Output
from netcron.history.series import is_version, newer_version_exists

if TYPE_CHECKING:
    from netcron.config import Settings

log = logging.getLogger(__name__)

#: Rows per transaction: a few milliseconds of locks, whatever the table's size.
BATCH = 2000
#: Breath between batches, so a large backlog does not crowd out the api's own writes.
PAUSE = 0.05
#: A blob younger than this is never dropped: a record may be about to point at it. (One
#: that reuses an older blob at the moment it is dropped records again, see
#: ``api.results.record_run``, and the blob it stores anew is young.)
ORPHAN_GRACE = timedelta(hours=1)


@dataclass
class Retained:
    runs: int = 0
    versions: int = 0
    blobs: int = 0


async def retain(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    results_days: int,
    versions_days: int,
    now: datetime | None = None,
    batch: int = BATCH,
) -> Retained:
    """One pass: delete what is past its retention, batch by batch; say how much went."""
    now = now or datetime.now(UTC)
    done = Retained()
    if results_days:
        old = CommandResult.scheduled_at < now - timedelta(days=results_days)
        runs, blobs = await _delete_in_batches(
            sessionmaker, old & ~is_version(), batch, now - ORPHAN_GRACE
        )
        done.runs, done.blobs = runs, done.blobs + blobs
    if versions_days:
        old = CommandResult.scheduled_at < now - timedelta(days=versions_days)
        condition = old & is_version() & newer_version_exists()
        versions, blobs = await _delete_in_batches(
            sessionmaker, condition, batch, now - ORPHAN_GRACE
        )
        done.versions, done.blobs = versions, done.blobs + blobs
    done.blobs += await _sweep_orphans(sessionmaker, now - ORPHAN_GRACE, batch)
    return done


async def _delete_in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    condition: ColumnElement[bool],
    batch: int,
    blobs_before: datetime,
) -> tuple[int, int]:
    runs = blobs = 0
    while True:
        async with sessionmaker() as session, session.begin():
            chosen = (
                select(CommandResult.id)
                .where(condition)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
            hashes = list(
                await session.scalars(
                    delete(CommandResult)
                    .where(CommandResult.id.in_(chosen.scalar_subquery()))
                    .returning(CommandResult.output_hash)
                    .execution_options(synchronize_session=False)
                )
            )
            freed = {h for h in hashes if h is not None}
            blobs += await _drop_unreferenced(session, freed, blobs_before)
        runs += len(hashes)
        if len(hashes) < batch:
            return runs, blobs
        await asyncio.sleep(PAUSE)


def _unreferenced() -> ColumnElement[bool]:
    return ~exists().where(CommandResult.output_hash == Output.hash)


async def _drop_unreferenced(session: AsyncSession, hashes: set[bytes], before: datetime) -> int:
    if not hashes:
        return 0
    dropped = await session.scalars(
        delete(Output)
        .where(Output.hash.in_(hashes), Output.created_at < before, _unreferenced())
        .returning(Output.hash)
        .execution_options(synchronize_session=False)
    )
    return len(list(dropped))


async def _sweep_orphans(
    sessionmaker: async_sessionmaker[AsyncSession], before: datetime, batch: int
) -> int:
    """Blobs of runs deleted with their device or command (cascades leave them behind)."""
    swept = 0
    after = b""
    while True:
        async with sessionmaker() as session, session.begin():
            page = list(
                await session.scalars(
                    select(Output.hash)
                    .where(Output.hash > after)
                    .order_by(Output.hash)
                    .limit(batch)
                )
            )
            if not page:
                return swept
            dropped = await session.scalars(
                delete(Output)
                .where(Output.hash.in_(page), Output.created_at < before, _unreferenced())
                .returning(Output.hash)
                .execution_options(synchronize_session=False)
            )
            swept += len(list(dropped))
        after = bytes(page[-1])
        if len(page) < batch:
            return swept
        await asyncio.sleep(PAUSE)


async def retain_forever(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A retention pass now and every ``retention_interval`` seconds, until cancelled."""
    while True:
        try:
            done = await retain(
                sessionmaker,
                results_days=settings.results_retention_days,
                versions_days=settings.versions_retention_days,
            )
            if done.runs or done.versions or done.blobs:
                log.info(
                    "retention deleted %d runs, %d versions and %d unused outputs",
                    done.runs,
                    done.versions,
                    done.blobs,
                )
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(settings.retention_interval)
