"""The console's reading pages: overview, devices, a device, a run, a diff, jobs, a fire.

Each is a plain GET rendered on the server, so it works without JavaScript; the
``data-live`` regions are what the optional script refreshes when events arrive.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from netcron.api.deps import SessionDep
from netcron.api.errors import NotFound, ServiceUnavailable
from netcron.api.fires import read_fire
from netcron.api.jobs import get_job
from netcron.cron import next_fire_times
from netcron.db.models import CommandResult, JobFire
from netcron.fleet.selector import Target
from netcron.history.normalize import NormalizeTimeout, normalize
from netcron.messages import EXECUTORS_CONSUMER, TASKS_STREAM
from netcron.platforms import PLATFORMS, HostKeyPolicy
from netcron.runs import RunStatus
from netcron.ui import diffview, queries
from netcron.ui.apiclient import call_api
from netcron.ui.render import SECURITY_HEADERS, page
from netcron.ui.routing import ConsoleRoute
from netcron.ui.session import (
    ConsoleUser,
    current_user,
    login_token,
    set_login_token,
    signed_in,
)

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
User = Annotated[ConsoleUser, Depends(signed_in)]
RunId = Annotated[str, Path(max_length=200)]
PAGE_SIZE = 50

#: The fixed notes a change may leave for the next page (never text from the request).
NOTES = {
    "created": "Created.",
    "saved": "Saved.",
    "deleted": "Deleted.",
    "paused": "Paused.",
    "resumed": "Resumed.",
    "started": "Run started: it shows below as soon as it is queued.",
    "checked": "Check done: see the result below.",
    "signed-out": "Signed out.",
}


def note(request: Request) -> str | None:
    return NOTES.get(request.query_params.get("note", ""))


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    if await current_user(request) is not None:
        return RedirectResponse("/ui", status_code=303)
    token = login_token(request)
    next_path = request.query_params.get("next", "")[:512]
    response = page(
        request, "login.html", None, note=note(request), login_token=token, next_path=next_path
    )
    set_login_token(request, response, token)
    return response


@router.get("/", include_in_schema=False)
async def trailing_slash() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=308)


async def broker_backlog(request: Request) -> dict[str, int] | None:
    """Tasks waiting for an executor and tasks being run; None when NATS cannot say."""
    nc = request.app.state.nats
    if nc is None or not nc.is_connected:
        return None
    try:
        info = await asyncio.wait_for(
            nc.jetstream().consumer_info(TASKS_STREAM, EXECUTORS_CONSUMER), 0.5
        )
    except Exception:
        return None
    return {
        "pending": info.num_pending or 0,
        "in_progress": info.num_ack_pending or 0,
        "waiting_pulls": info.num_waiting or 0,
    }


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, user: User, session: SessionDep) -> HTMLResponse:
    data = await queries.overview(session)
    return page(
        request,
        "overview.html",
        user,
        overview=data,
        backlog=await broker_backlog(request),
        statuses=[s.value for s in RunStatus],
        events="/ui/events",
    )


@router.get("/devices", response_class=HTMLResponse)
async def devices(
    request: Request,
    user: User,
    session: SessionDep,
    q: Annotated[str, Query(max_length=128)] = "",
    labels: Annotated[str, Query(max_length=1024)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    error = None
    try:
        selector = queries.parse_labels(labels)
    except ValueError as exc:
        selector, error = {}, f"labels: {exc} (write key:value, separated by spaces)"
    found = await queries.device_page(
        session, q=q.strip(), labels=selector, limit=PAGE_SIZE, offset=offset
    )
    return page(
        request,
        "devices.html",
        user,
        found=found,
        q=q,
        labels=labels,
        error=error,
        note=note(request),
        events="/ui/events?type=device.",
        status_code=422 if error else 200,
    )


def device_form_context() -> dict[str, Any]:
    return {"platforms": PLATFORMS, "policies": [p.value for p in HostKeyPolicy]}


@router.get("/devices/new", response_class=HTMLResponse)
async def new_device(request: Request, user: User) -> HTMLResponse:
    return page(request, "device_form.html", user, device=None, values={}, **device_form_context())


@router.get("/devices/{device_id}", response_class=HTMLResponse)
async def device(
    request: Request, device_id: uuid.UUID, user: User, session: SessionDep
) -> HTMLResponse:
    detail = await queries.device_detail(session, device_id)
    return page(
        request,
        "device.html",
        user,
        d=detail,
        note=note(request),
        now=datetime.now(UTC),
        events=f"/ui/events?device_id={device_id}",
        versions=await history_versions(request, user, detail),
    )


VERSIONS_SHOWN = 10


@dataclass
class Version:
    """A change point of a command's output, as ``GET /devices/{id}/versions`` lists it."""

    run_id: str
    scheduled_at: datetime
    added: int
    removed: int
    previous: str | None = None


async def history_versions(
    request: Request, user: ConsoleUser, detail: queries.DeviceDetail
) -> dict[uuid.UUID, list[Version]]:
    """The latest configuration versions of each command that tracks changes, through the
    api's history endpoint (``GET /devices/{id}/versions``)."""
    found: dict[uuid.UUID, list[Version]] = {}
    for command in detail.commands:
        if not command.track_changes:
            continue
        path = f"/devices/{detail.device.id}/versions"
        response = await call_api(
            request, user, "GET", f"{path}?command_id={command.id}&limit={VERSIONS_SHOWN + 1}"
        )
        if response.status_code != 200:
            continue
        items = response.json().get("items", [])
        versions = [
            Version(
                run_id=item["run_id"],
                scheduled_at=datetime.fromisoformat(item["scheduled_at"]),
                added=item.get("diff_stats", {}).get("added", 0),
                removed=item.get("diff_stats", {}).get("removed", 0),
            )
            for item in items
        ]
        for newer, older in itertools.pairwise(versions):
            newer.previous = older.run_id
        if versions:
            found[command.id] = versions[:VERSIONS_SHOWN]
    return found


@router.get("/devices/{device_id}/edit", response_class=HTMLResponse)
async def edit_device(
    request: Request, device_id: uuid.UUID, user: User, session: SessionDep
) -> HTMLResponse:
    found = await queries.get_device(session, device_id)
    values = {
        "name": found.name,
        "host": found.host,
        "port": found.port,
        "platform": found.platform,
        "username": found.username or "",
        "labels": " ".join(f"{k}:{v}" for k, v in sorted(found.labels.items())),
        "host_key_policy": found.host_key_policy,
    }
    return page(
        request, "device_form.html", user, device=found, values=values, **device_form_context()
    )


async def output_of(
    request: Request, user: ConsoleUser, device_id: uuid.UUID, run_id: str
) -> str | None:
    """A run's output as the api serves it: the console never reads how outputs are stored."""
    path = f"/devices/{device_id}/results/{quote(run_id, safe=':')}"
    response = await call_api(request, user, "GET", path)
    if response.status_code == 404:
        raise NotFound("run", run_id)
    if response.status_code != 200:
        raise ServiceUnavailable(f"the run's output could not be read ({response.status_code})")
    output: str | None = response.json().get("output")
    return output


@router.get("/devices/{device_id}/runs/{run_id}", response_class=HTMLResponse)
async def run(
    request: Request, device_id: uuid.UUID, run_id: RunId, user: User, session: SessionDep
) -> HTMLResponse:
    detail = await queries.run_detail(session, device_id, run_id)
    final = RunStatus(detail.run.status).is_final
    return page(
        request,
        "run.html",
        user,
        r=detail,
        output=await output_of(request, user, device_id, run_id),
        final=final,
        events=None if final else f"/ui/events?device_id={device_id}&type=run.",
    )


@router.get("/devices/{device_id}/runs/{run_id}/output")
async def run_output(
    request: Request, device_id: uuid.UUID, run_id: RunId, user: User, session: SessionDep
) -> Response:
    """The output as stored, as a download: never rendered by the browser."""
    detail = await queries.run_detail(session, device_id, run_id)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in detail.device.name)
    stamp = detail.run.scheduled_at.strftime("%Y%m%dT%H%M%SZ")
    return Response(
        await output_of(request, user, device_id, run_id) or "",
        media_type="text/plain; charset=utf-8",
        headers=SECURITY_HEADERS
        | {"Content-Disposition": f'attachment; filename="{name}-{stamp}.txt"'},
    )


@router.get("/devices/{device_id}/runs/{run_id}/diff", response_class=HTMLResponse)
async def diff(
    request: Request,
    device_id: uuid.UUID,
    run_id: RunId,
    user: User,
    session: SessionDep,
    against: Annotated[str | None, Query(max_length=200)] = None,
    view: Literal["unified", "side"] = "unified",
    volatile: Literal["hide", "show"] = "hide",
) -> HTMLResponse:
    detail = await queries.run_detail(session, device_id, run_id)
    base: CommandResult | None = detail.previous
    if against:
        base = (await queries.run_detail(session, device_id, against)).run
    old = (await output_of(request, user, device_id, base.run_id) if base else None) or ""
    new = await output_of(request, user, device_id, run_id) or ""
    ignore = detail.command.ignore_lines if detail.command else []
    built = diffview.build(
        old,
        new,
        hide_volatile=volatile == "hide",
        volatile_old=volatile_lines(old, detail.device.platform, ignore),
        volatile_new=volatile_lines(new, detail.device.platform, ignore),
    )
    return page(
        request,
        "diff.html",
        user,
        r=detail,
        base=base,
        diff=built,
        view=view,
        volatile=volatile,
    )


def volatile_lines(text: str, platform: str, ignore_lines: list[str]) -> frozenset[int]:
    """The lines configuration history sets aside for this platform and command."""
    try:
        found = normalize(text, platform, ignore_lines)
    except NormalizeTimeout:
        return frozenset()
    return frozenset(index for index, _ in found.volatile)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs(
    request: Request,
    user: User,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    total, rows = await queries.job_page(session, limit=PAGE_SIZE, offset=offset)
    return page(
        request,
        "jobs.html",
        user,
        rows=rows,
        total=total,
        offset=offset,
        limit=PAGE_SIZE,
        note=note(request),
        events="/ui/events?exclude_type=run.",
    )


@router.get("/jobs/new", response_class=HTMLResponse)
async def new_job(request: Request, user: User) -> HTMLResponse:
    return page(request, "job_form.html", user, values={"cron": "0 2 * * *", "timezone": "UTC"})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job(request: Request, job_id: uuid.UUID, user: User, session: SessionDep) -> HTMLResponse:
    found = await get_job(session, job_id)
    target = Target.model_validate(found.target)
    total, targets = await queries.job_targets(session, target)
    fires = await queries.job_fires(session, job_id)
    now = datetime.now(UTC)
    return page(
        request,
        "job.html",
        user,
        job=found,
        target=target,
        next_fires=next_fire_times(found.cron, found.timezone, now, 3) if found.is_active else [],
        target_total=total,
        targets=targets,
        fires=fires,
        note=note(request),
        events=f"/ui/events?job_id={job_id}",
    )


@router.get("/jobs/{job_id}/fires/{fire_id}", response_class=HTMLResponse)
async def fire(
    request: Request,
    job_id: uuid.UUID,
    fire_id: uuid.UUID,
    user: User,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    found = await session.get(JobFire, fire_id)
    if found is None or found.job_id != job_id:
        raise NotFound("fire", fire_id)
    job_row = await get_job(session, job_id)
    read = await read_fire(session, found, states=True, limit=PAGE_SIZE, offset=offset)
    return page(
        request,
        "fire.html",
        user,
        job=job_row,
        fire=read,
        offset=offset,
        limit=PAGE_SIZE,
        events=None if read.state != "running" else f"/ui/events?job_id={job_id}",
    )
