"""Runs: recorded by the schedule workflow, listed per device, newest first.

Outputs live in the content-addressed store (``netcron.history``); a run's ``output`` is
put back together from its blob when it is read.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar, cast

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    Uuid,
    bindparam,
    false,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.auth import read_or_write, results_scope
from netcron.api.deps import OrchestratorDep, SessionDep, SettingsDep
from netcron.api.devices import get_device
from netcron.api.errors import FieldInvalid, NotFound
from netcron.api.events import emit
from netcron.api.orchestrator import Orchestrator
from netcron.api.pagination import Limit, Offset, Page
from netcron.api.specs import current_specs, push_specs
from netcron.db.models import CommandResult, Device, Schedule
from netcron.events import Event, first_lines
from netcron.history.changes import Change, blob_for, compare_with_previous
from netcron.history.diff import DiffStats
from netcron.history.series import Series
from netcron.history.store import STORE_BLOB, Blob, Stored, output_text, stored_blobs
from netcron.jobspec import FireRunRecord
from netcron.observability.metrics import RUNS_RECORDED
from netcron.platforms import ErrorKind, HostKeyPolicy
from netcron.runs import RunStatus, can_move
from netcron.runspec import RunRecord

log = logging.getLogger(__name__)
router = APIRouter(prefix="/devices/{device_id}", tags=["results"])

#: Fields a record sets when its status moves the run forward.
_FIELDS = (
    "started_at",
    "finished_at",
    "attempt",
    "output_truncated",
    "error",
    "error_kind",
    "executor_id",
    "command",
    "parsed",
    "parse_error",
)
#: Facts about the attempt that a late record may still add when they are missing.
_FILL_INS = ("started_at", "executor_id")


class ResultRead(BaseModel):
    run_id: str
    schedule_id: uuid.UUID | None = Field(description="The schedule's run; null for a job's.")
    device_id: uuid.UUID
    command_id: uuid.UUID | None
    job_id: uuid.UUID | None = Field(description="The job's run; null for a schedule's.")
    fire_id: uuid.UUID | None
    status: RunStatus
    scheduled_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    output: str | None
    output_truncated: bool
    error: str | None
    error_kind: ErrorKind | None
    executor_id: str | None
    command: str | None
    created_at: datetime
    updated_at: datetime
    content_hash: str | None = Field(
        None, description="Runs that track changes: SHA-256 of the normalized output (hex)."
    )
    changed: bool | None = Field(
        None,
        description="Runs that track changes: the normalized output differs from the "
        "previous successful run's (true for the first).",
    )
    diff_stats: DiffStats | None = Field(None, description="Lines added and removed.")
    parsed: list[dict[str, Any]] | None = Field(
        None, description="Records parsed from the output (the command's `parse`)."
    )
    parse_error: str | None = None


#: ResultRead's fields that are the run row's own columns.
_COLUMNS = tuple(
    name for name in ResultRead.model_fields if name in CommandResult.__table__.columns
)


def to_read(row: CommandResult, blobs: dict[bytes, Stored]) -> ResultRead:
    """The run as the api shows it, its output restored from ``blobs`` (its blob)."""
    tracked = row.changed is not None
    stats = None
    if tracked and row.lines_added is not None and row.lines_removed is not None:
        stats = DiffStats(added=row.lines_added, removed=row.lines_removed)
    return ResultRead.model_validate(
        {name: getattr(row, name) for name in _COLUMNS}
        | {
            "output": output_text(blobs, row.output_hash, row.output_volatile),
            "content_hash": row.output_hash.hex() if tracked and row.output_hash else None,
            "diff_stats": stats,
        }
    )


async def read_all(session: AsyncSession, rows: list[CommandResult]) -> list[ResultRead]:
    blobs = await stored_blobs(session, (row.output_hash for row in rows))
    return [to_read(row, blobs) for row in rows]


class ResultPage(Page[ResultRead]):
    next_cursor: str | None = None


def encode_cursor(last: ResultRead) -> str:
    """Where the next page starts: after this run, whatever was recorded since."""
    raw = json.dumps([last.scheduled_at.isoformat(), last.run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return moment, str(run_id)
    except (ValueError, TypeError):
        raise FieldInvalid("cursor", "not a cursor this api gave out") from None


#: A record with an output to cap: a schedule run's, or a job run's (in a fire's batch).
Capped = TypeVar("Capped", RunRecord, FireRunRecord)


def cap_output(record: Capped, limit: int) -> Capped:
    """Keep at most ``limit`` bytes of output (cut on a character boundary)."""
    if record.output is None or len(record.output.encode()) <= limit:
        return record
    cut = record.output.encode()[:limit].decode(errors="ignore")
    return record.model_copy(update={"output": cut, "output_truncated": True})


def merge(row: CommandResult, record: RunRecord, blob: Blob | None = None) -> bool:
    """Apply ``record`` to ``row`` when its status may move forward; report whether it did.

    A status that would move the run backwards or replace a final one changes nothing
    but when and where the attempt started, if the row lacks them (a ``running`` that
    arrives after the final result). A later attempt of a run that has not ended
    replaces the details of the one before it, so each retry shows on the run.
    """
    current = RunStatus(row.status)
    moves = can_move(current, record.status)
    retried = not current.is_final and record.attempt > row.attempt
    for name in _FIELDS if moves or retried else _FILL_INS:
        value = getattr(record, name)
        if value is not None and (moves or retried or getattr(row, name) is None):
            setattr(row, name, value)
    if blob is not None and (moves or retried):
        # the blob and the lines set aside restore the output together: never one alone
        row.output_hash, row.output_volatile = blob.hash, blob.residue
    if moves:
        row.status = record.status.value
    return moves or retried


#: A new run's row, made only when the schedule exists on that device (one statement, one
#: cached compilation: the schedule lookup, the insert and the conflict check together).
_RUNS = cast(Table, CommandResult.__table__)
_NEW_RUN = (
    insert(_RUNS)
    .from_select(
        [
            _RUNS.c.id,
            _RUNS.c.run_id,
            _RUNS.c.schedule_id,
            _RUNS.c.device_id,
            _RUNS.c.command_id,
            _RUNS.c.scheduled_at,
            _RUNS.c.status,
            _RUNS.c.attempt,
            _RUNS.c.output_truncated,
        ],
        select(
            bindparam("id", type_=Uuid),
            bindparam("run_id", type_=String),
            Schedule.id,
            Schedule.device_id,
            Schedule.command_id,
            bindparam("scheduled_at", type_=DateTime(timezone=True)),
            literal(RunStatus.SCHEDULED.value),
            bindparam("attempt", type_=Integer),
            false(),
        )
        .where(
            Schedule.id == bindparam("schedule_id", type_=Uuid),
            Schedule.device_id == bindparam("device_id", type_=Uuid),
        )
        # The schedule's lock first, before the foreign keys take theirs: a record racing
        # a delete then waits holding nothing (no deadlock) and finds no schedule after.
        .with_for_update(key_share=True, read=True),
    )
    .on_conflict_do_nothing(index_elements=[_RUNS.c.run_id])
    # the output's blob goes in with the same statement: no round trip of its own
    .add_cte(STORE_BLOB.cte("blob"))
)


@dataclass(frozen=True)
class Recorded:
    """What recording a run did: the row, whether it moved, what changed, what was stored."""

    row: CommandResult
    moved: bool
    change: Change | None
    blob: Blob | None


#: The foreign key a record breaks when retention dropped its blob between the statement
#: that stores the blob (a no-op: it was there) and the one that points the run at it.
BLOB_KEY = "command_results_output_hash_fkey"


async def record_run(
    session: AsyncSession, *, device_id: uuid.UUID, schedule_id: uuid.UUID, record: RunRecord
) -> Recorded:
    """Record ``record``; once more if its blob was swept from under it (it is stored anew)."""
    try:
        return await _record_run(
            session, device_id=device_id, schedule_id=schedule_id, record=record
        )
    except IntegrityError as exc:
        if BLOB_KEY not in str(exc.orig):
            raise
        log.info("output swept while recording; recording again", extra={"run_id": record.run_id})
        await session.rollback()
        return await _record_run(
            session, device_id=device_id, schedule_id=schedule_id, record=record
        )


async def _record_run(
    session: AsyncSession, *, device_id: uuid.UUID, schedule_id: uuid.UUID, record: RunRecord
) -> Recorded:
    """Upsert by ``run_id``: a retried or repeated record never makes a second row.

    Three statements: insert the row if the run is new and its schedule exists (and the
    output's blob if it is new), lock the row, update what moved (``updated_at`` comes
    back with the update). No row means no such schedule on that device (a schedule's
    runs go with it). A successful run that tracks changes adds one query (the previous
    run's hash) and, when the output changed, one more (its text, for the line counts).
    """
    blob = blob_for(record.output, record.tracking, record.run_id)
    await session.execute(
        _NEW_RUN,
        {
            "id": uuid.uuid4(),
            "run_id": record.run_id,
            "scheduled_at": record.scheduled_at,
            "attempt": record.attempt,
            "schedule_id": schedule_id,
            "device_id": device_id,
            "blob_hash": blob.hash if blob else None,
            "blob_size": blob.size if blob else None,
            "blob_data": blob.data if blob else None,
            "blob_volatile": blob.residue if blob else None,
        },
    )
    row = await session.scalar(
        select(CommandResult).where(CommandResult.run_id == record.run_id).with_for_update()
    )
    if row is None or (row.schedule_id == schedule_id and row.device_id != device_id):
        raise NotFound("schedule", schedule_id)
    if row.schedule_id != schedule_id:
        raise NotFound("run", record.run_id)
    moved = merge(row, record, blob)
    change = None
    if moved and blob is not None and blob.normalized and row.status == RunStatus.SUCCEEDED:
        # one UPDATE at the end, not one before the comparison's queries and one after
        with session.no_autoflush:
            change = await compare_with_previous(session, row, blob, Series.of(row))
    await session.flush()
    log.info(
        "run %s%s",
        record.status.value,
        "" if moved else f" ignored (run is {row.status})",
        extra={"run_id": record.run_id, "schedule_id": schedule_id},
    )
    return Recorded(row, moved, change, blob)


@router.post(
    "/schedules/{schedule_id}/result",
    response_model=ResultRead,
    tags=["internal"],
    dependencies=[Depends(results_scope)],
    responses={204: {"description": "Recorded (the request sent `Prefer: return=minimal`)."}},
)
async def post_result(
    device_id: uuid.UUID,
    schedule_id: uuid.UUID,
    body: RunRecord,
    session: SessionDep,
    settings: SettingsDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> ResultRead | Response:
    """Record a run's state (called by the schedule workflow); an upsert keyed by ``run_id``.

    With ``Prefer: return=minimal`` (RFC 7240) the answer is 204 with no body: the worker
    has no use for the run it just sent, and a config backup's output is large.
    """
    record = cap_output(body, settings.output_max_bytes)
    recorded = await record_run(
        session, device_id=device_id, schedule_id=schedule_id, record=record
    )
    row = recorded.row
    if recorded.moved:
        emit(background, request, run_event(row, record.output))
        if RunStatus(row.status).is_final:
            RUNS_RECORDED.labels(row.status, row.error_kind or "").inc()
    if recorded.change is not None:
        emit(background, request, changed_event(row, recorded.change))
    if body.host_key:
        await learn_host_key(session, orchestrator, background, device_id, body.host_key)
    if "return=minimal" in request.headers.get("prefer", ""):
        return Response(status_code=204, background=background)
    blob = recorded.blob
    if blob is not None and row.output_hash == blob.hash and row.output_volatile == blob.residue:
        # the row keeps its residue whole: the blob's own does not matter
        return to_read(row, {blob.hash: Stored(blob.text)})
    return (await read_all(session, [row]))[0]


async def learn_host_key(
    session: AsyncSession,
    orchestrator: Orchestrator,
    background: BackgroundTasks,
    device_id: uuid.UUID,
    fingerprint: str,
) -> None:
    """Trust on first use: the first host key a device presents becomes the one it must
    present from then on, and its schedules' next specs carry it (sent after commit)."""
    learned = await session.scalar(
        update(Device)
        .where(
            Device.id == device_id,
            Device.host_key.is_(None),
            Device.host_key_policy == HostKeyPolicy.TRUST_ON_FIRST_USE.value,
        )
        .values(host_key=fingerprint)
        .returning(Device.id)
    )
    if learned is None:
        return
    log.info("host key %s recorded on first use", fingerprint, extra={"device_id": device_id})
    specs = await current_specs(session, Schedule.device_id == device_id, bump=True)
    background.add_task(push_specs, orchestrator, specs)


class RunFacts(Protocol):
    """What a run event tells: a run row, or the columns a batched update returns."""

    run_id: str
    device_id: uuid.UUID
    command_id: uuid.UUID | None
    schedule_id: uuid.UUID | None
    job_id: uuid.UUID | None
    fire_id: uuid.UUID | None
    status: str
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    error_kind: str | None


def run_event(row: RunFacts, output: str | None) -> Event:
    """``run.<status>`` with what a watcher needs: status, attempt, duration, first lines."""
    duration = None
    if row.started_at and row.finished_at:
        duration = round((row.finished_at - row.started_at).total_seconds() * 1000)
    return Event(
        type=f"run.{row.status}",
        device_id=row.device_id,
        command_id=row.command_id,
        schedule_id=row.schedule_id,
        job_id=row.job_id,
        fire_id=row.fire_id,
        run_id=row.run_id,
        data={
            "status": row.status,
            "attempt": row.attempt,
            "duration_ms": duration,
            "error": row.error,
            "error_kind": row.error_kind,
            "output": first_lines(output),
        },
    )


def changed_event(row: CommandResult, change: Change) -> Event:
    """``run.changed``: a tracked run whose output differs from the previous one's."""
    return Event(
        type="run.changed",
        device_id=row.device_id,
        command_id=row.command_id,
        schedule_id=row.schedule_id,
        job_id=row.job_id,
        fire_id=row.fire_id,
        run_id=row.run_id,
        data={
            "added": change.stats.added,
            "removed": change.stats.removed,
            "against": change.against,
            "diff": change.diff,
        },
    )


@router.get("/results", response_model=ResultPage, dependencies=[Depends(read_or_write)])
async def list_results(
    device_id: uuid.UUID,
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
    schedule_id: uuid.UUID | None = Query(None, description="Only this schedule's runs."),
    command_id: uuid.UUID | None = Query(None, description="Only this command's runs."),
    job_id: uuid.UUID | None = Query(None, description="Only this job's runs."),
    fire_id: uuid.UUID | None = Query(None, description="Only this fire's run."),
    status: RunStatus | None = Query(None, description="Only runs in this status."),
    error_kind: ErrorKind | None = Query(None, description="Only runs that failed this way."),
    changed: bool | None = Query(
        None, description="Runs that track changes: only those that changed (or did not)."
    ),
    fields: str | None = Query(
        None,
        max_length=512,
        description="Only these fields of each run, comma-separated (`run_id` always), "
        "e.g. `parsed` or `scheduled_at,parsed`.",
    ),
    since: datetime | None = Query(None, description="Scheduled at or after (ISO 8601)."),
    until: datetime | None = Query(None, description="Scheduled before (ISO 8601)."),
    cursor: str | None = Query(
        None, max_length=512, description="next_cursor of the previous page (stable paging)."
    ),
) -> ResultPage | JSONResponse:
    """The device's run history, newest first."""
    await get_device(session, device_id)
    conditions = [CommandResult.device_id == device_id]
    if schedule_id is not None:
        conditions.append(CommandResult.schedule_id == schedule_id)
    if command_id is not None:
        conditions.append(CommandResult.command_id == command_id)
    if job_id is not None:
        conditions.append(CommandResult.job_id == job_id)
    if fire_id is not None:
        conditions.append(CommandResult.fire_id == fire_id)
    if status is not None:
        conditions.append(CommandResult.status == status.value)
    if error_kind is not None:
        conditions.append(CommandResult.error_kind == error_kind.value)
    if changed is not None:
        conditions.append(CommandResult.changed.is_(changed))
    chosen = chosen_fields(fields)
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise FieldInvalid(
                "since" if bound is since else "until", "give a timezone (Z or ±hh:mm)"
            )
    if since is not None:
        conditions.append(CommandResult.scheduled_at >= since)
    if until is not None:
        conditions.append(CommandResult.scheduled_at < until)
    filtered = list(conditions)
    if cursor is not None:
        after_at, after_run = decode_cursor(cursor)
        conditions.append(
            tuple_(CommandResult.scheduled_at, CommandResult.run_id) < tuple_(after_at, after_run)
        )
    total = (
        await session.scalar(select(func.count()).select_from(CommandResult).where(*filtered)) or 0
    )
    rows = await session.scalars(
        select(CommandResult)
        .where(*conditions)
        .order_by(CommandResult.scheduled_at.desc(), CommandResult.run_id.desc())
        .limit(limit)
        .offset(offset)
    )
    runs = list(rows)
    if chosen is None or "output" in chosen:
        items = await read_all(session, runs)
    else:
        items = [to_read(row, {}) for row in runs]
    next_cursor = encode_cursor(items[-1]) if len(items) == limit else None
    page = ResultPage(items=items, total=total, limit=limit, offset=offset, next_cursor=next_cursor)
    if chosen is None:
        return page
    body = page.model_dump(mode="json")
    body["items"] = [{k: v for k, v in item.items() if k in chosen} for item in body["items"]]
    return JSONResponse(body)


def chosen_fields(fields: str | None) -> set[str] | None:
    """The fields a client asked for (``run_id`` always); 422 naming one that is unknown."""
    if fields is None:
        return None
    names = {name.strip() for name in fields.split(",") if name.strip()}
    unknown = sorted(names - set(ResultRead.model_fields))
    if unknown:
        raise FieldInvalid("fields", f"unknown field {unknown[0]!r}")
    return names | {"run_id"}


@router.get("/results/{run_id}", response_model=ResultRead, dependencies=[Depends(read_or_write)])
async def read_result(
    device_id: uuid.UUID, run_id: Annotated[str, Path(max_length=200)], session: SessionDep
) -> ResultRead:
    """One run, by the id the schedule (or a run-now request) gave it."""
    row = await get_run(session, device_id, run_id)
    return (await read_all(session, [row]))[0]


async def get_run(session: AsyncSession, device_id: uuid.UUID, run_id: str) -> CommandResult:
    """The device's run ``run_id``, 404 when the device or the run is unknown."""
    await get_device(session, device_id)
    row = await session.scalar(
        select(CommandResult).where(
            CommandResult.run_id == run_id, CommandResult.device_id == device_id
        )
    )
    if row is None:
        raise NotFound("run", run_id)
    return row
