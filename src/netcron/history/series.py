"""A series: the runs compared with one another, one device's runs of one command or job.

Every query that looks along a series (the previous successful run, the change points,
retention's newest version) takes its condition from :class:`Series`, so that a job's
series (``device_id``, ``job_id``) is one more branch here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from netcron.db.models import CommandResult, Output
from netcron.runs import RunStatus


@dataclass(frozen=True)
class Series:
    """One device's runs of one command (a schedule's runs) or of one job."""

    device_id: uuid.UUID
    command_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None

    @classmethod
    def of(cls, row: CommandResult) -> Series:
        if row.job_id is not None:
            return cls(row.device_id, job_id=row.job_id)
        return cls(row.device_id, command_id=row.command_id)

    def where(self) -> ColumnElement[bool]:
        if self.job_id is not None:
            return and_(
                CommandResult.device_id == self.device_id, CommandResult.job_id == self.job_id
            )
        return and_(
            CommandResult.device_id == self.device_id,
            CommandResult.command_id == self.command_id,
        )


def compared() -> ColumnElement[bool]:
    """Runs a later run is compared with: tracked, and successful."""
    return and_(
        CommandResult.status == RunStatus.SUCCEEDED.value, CommandResult.changed.is_not(None)
    )


@dataclass(frozen=True)
class Previous:
    run_id: str
    output_hash: bytes
    #: The lines its blob's first run set aside (``Output.volatile``).
    blob_volatile: dict[str, Any] | None


async def previous_run(
    session: AsyncSession, series: Series, before: datetime, *, tracked: bool = True
) -> Previous | None:
    """The last successful run of ``series`` scheduled before ``before`` that tracked
    changes (``tracked``), or that has an output at all."""
    condition = compared() if tracked else CommandResult.status == RunStatus.SUCCEEDED.value
    row = (
        await session.execute(
            select(CommandResult.run_id, CommandResult.output_hash, Output.volatile)
            .join(Output, Output.hash == CommandResult.output_hash)
            .where(series.where(), condition, CommandResult.scheduled_at < before)
            .order_by(CommandResult.scheduled_at.desc())
            .limit(1)
        )
    ).first()
    if row is None or row.output_hash is None:
        return None
    return Previous(row.run_id, bytes(row.output_hash), row.volatile)


def is_version() -> ColumnElement[bool]:
    """A change point: a tracked run that differed from the one before it."""
    return CommandResult.changed.is_(True)


def versions(series: Series) -> Select[CommandResult]:
    """The change points of ``series``, newest first."""
    return (
        select(CommandResult)
        .where(series.where(), is_version())
        .order_by(CommandResult.scheduled_at.desc(), CommandResult.run_id.desc())
    )


def newer_version_exists() -> ColumnElement[bool]:
    """For retention: the run's series has a change point after it (it is not the last)."""
    newer = aliased(CommandResult)
    return (
        select(newer.id)
        .where(
            newer.device_id == CommandResult.device_id,
            newer.command_id.is_not_distinct_from(CommandResult.command_id),
            newer.job_id.is_not_distinct_from(CommandResult.job_id),
            newer.changed.is_(True),
            newer.scheduled_at > CommandResult.scheduled_at,
        )
        .exists()
    )
