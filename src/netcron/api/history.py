"""What changed: a run's diff against another, and a series' change points (versions)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import func, select

from netcron.api.auth import read_or_write
from netcron.api.deps import SessionDep
from netcron.api.devices import get_device
from netcron.api.errors import Conflict, FieldInvalid
from netcron.api.pagination import Limit, Offset, Page
from netcron.api.results import get_run
from netcron.db.models import CommandResult
from netcron.history.diff import Diff, DiffStats, Hunk
from netcron.history.series import Series, is_version, previous_run, versions
from netcron.history.store import stored_blobs

router = APIRouter(
    prefix="/devices/{device_id}", tags=["history"], dependencies=[Depends(read_or_write)]
)

DIFF_MEDIA_TYPE = "text/x-diff"


class DiffRead(BaseModel):
    run_id: str
    against: str | None
    normalized: bool
    stats: DiffStats
    hunks: list[Hunk]


class VersionRead(BaseModel):
    """A change point: a run whose normalized output differs from the one before it."""

    run_id: str
    scheduled_at: datetime
    finished_at: datetime | None
    content_hash: str
    diff_stats: DiffStats


@router.get(
    "/results/{run_id}/diff",
    response_model=DiffRead,
    responses={200: {"content": {DIFF_MEDIA_TYPE: {}}}},
)
async def read_diff(
    device_id: uuid.UUID,
    run_id: Annotated[str, Path(max_length=200)],
    session: SessionDep,
    request: Request,
    against: str | None = Query(
        None,
        max_length=200,
        description="The run to compare with (default: the previous successful run of "
        "the same command on the device; for the first, none: every line is added).",
    ),
) -> DiffRead | PlainTextResponse:
    """The lines that changed, as JSON hunks, or as a unified diff (`Accept: text/x-diff`).

    Runs that track changes are compared on their normalized output (volatile lines left
    out); others on their output as stored.
    """
    row = await get_run(session, device_id, run_id)
    _needs_output(row)
    base: CommandResult | None = None
    if against is not None:
        base = await get_run(session, device_id, against)
        _needs_output(base)
    else:
        tracked = row.changed is not None
        previous = await previous_run(session, Series.of(row), row.scheduled_at, tracked=tracked)
        if previous is not None:
            base = await get_run(session, device_id, previous.run_id)
    blobs = await stored_blobs(session, [row.output_hash, base.output_hash if base else None])
    assert row.output_hash is not None
    new = blobs[bytes(row.output_hash)].text
    old = blobs[bytes(base.output_hash)].text if base and base.output_hash else None
    diff = Diff.of(old, new)
    if DIFF_MEDIA_TYPE in request.headers.get("accept", ""):
        label = base.run_id if base else "/dev/null"
        return PlainTextResponse(diff.unified(label, row.run_id), media_type=DIFF_MEDIA_TYPE)
    return DiffRead(
        run_id=row.run_id,
        against=base.run_id if base else None,
        normalized=row.changed is not None,
        stats=diff.stats(),
        hunks=diff.hunks(),
    )


def _needs_output(row: CommandResult) -> None:
    if row.output_hash is None:
        raise Conflict(f"run {row.run_id} has no output to compare ({row.status})")


@router.get("/versions", response_model=Page[VersionRead])
async def list_versions(
    device_id: uuid.UUID,
    session: SessionDep,
    command_id: uuid.UUID | None = Query(None, description="The command whose changes to list."),
    job_id: uuid.UUID | None = Query(None, description="Or the job whose changes to list."),
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[VersionRead]:
    """The change points of a command or a job on this device, newest first: when, which
    run, how much."""
    await get_device(session, device_id)
    if (command_id is None) == (job_id is None):
        raise FieldInvalid("command_id", "give either command_id or job_id, whose versions to list")
    series = Series(device_id, command_id=command_id, job_id=job_id)
    total = await session.scalar(
        select(func.count()).select_from(CommandResult).where(series.where(), is_version())
    )
    rows = await session.scalars(versions(series).limit(limit).offset(offset))
    items = [
        VersionRead(
            run_id=row.run_id,
            scheduled_at=row.scheduled_at,
            finished_at=row.finished_at,
            content_hash=bytes(row.output_hash or b"").hex(),
            diff_stats=DiffStats(added=row.lines_added or 0, removed=row.lines_removed or 0),
        )
        for row in rows
    ]
    return Page(items=items, total=total or 0, limit=limit, offset=offset)
