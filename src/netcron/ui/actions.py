"""The console's changes: each form is checked (session, CSRF, ``write``) and then sent to
the api's own REST endpoint in-process, with the signed-in key.

Going through the api rather than around it keeps one set of rules: validation, scopes,
the order of locks and workflow updates, events. A refusal comes back as the api's
problem document and is shown on the page with the same status.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from netcron.apikeys import find_key
from netcron.ui import queries
from netcron.ui.apiclient import call_api
from netcron.ui.pages import device_form_context
from netcron.ui.render import page
from netcron.ui.routing import ConsoleRoute, error_page
from netcron.ui.session import (
    ConsoleUser,
    check_csrf,
    check_login_token,
    check_write,
    close_session,
    open_session,
    signed_in,
)

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
User = Annotated[ConsoleUser, Depends(signed_in)]


async def change_form(request: Request, user: ConsoleUser) -> FormData:
    """The posted form, once its CSRF token and the key's ``write`` scope are checked."""
    form = await request.form()
    token = form.get("csrf")
    check_csrf(user, token if isinstance(token, str) else None)
    check_write(user)
    return form


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def problem_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"title": f"HTTP {response.status_code}", "detail": response.text[:500]}
    return body


async def refused(request: Request, response: httpx.Response) -> Response:
    body = problem_of(response)
    return await error_page(
        request,
        response.status_code,
        str(body.get("title", "Refused")),
        str(body.get("detail", "")),
    )


def back(path: str, note: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?note={note}", status_code=303)


def parse_pairs(text: str, name: str) -> dict[str, str]:
    """``site:ams1 role:core`` as a mapping; a malformed or repeated pair is a ValueError."""
    pairs: dict[str, str] = {}
    for part in text.replace(",", " ").split():
        key, sep, value = part.partition(":")
        if not sep or not key:
            raise ValueError(f"{name}: {part!r} is not key:value")
        if key in pairs:
            raise ValueError(f"{name}: {key!r} appears twice")
        pairs[key] = value
    return pairs


# -- sign-in ---------------------------------------------------------------------------


@router.post("/login")
async def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=512)] = "",
    token: Annotated[str, Form(max_length=128)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=512)] = "",
) -> Response:
    check_login_token(request, token)
    key = find_key(request.app.state.api_keys, api_key.strip())
    if key is None or "read" not in key.scopes:
        return page(
            request,
            "login.html",
            None,
            status_code=401,
            error="That key is not valid here (it needs at least the read scope).",
            login_token=token,
        )
    target = next_path if next_path.startswith("/ui") and "//" not in next_path else "/ui"
    response = RedirectResponse(target, status_code=303)
    await open_session(request, response, key)
    return response


@router.post("/logout")
async def logout(request: Request, user: User) -> Response:
    form = await request.form()
    token = form.get("csrf")
    check_csrf(user, token if isinstance(token, str) else None)
    response = back("/ui/login", "signed-out")
    await close_session(request, response)
    return response


# -- devices ---------------------------------------------------------------------------


def device_body(form: FormData, *, creating: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": field(form, "name"),
        "host": field(form, "host"),
        "port": field(form, "port") or "22",
        "platform": field(form, "platform"),
        "username": field(form, "username") or None,
        "labels": parse_pairs(field(form, "labels"), "labels"),
        "host_key_policy": field(form, "host_key_policy") or "trust_on_first_use",
    }
    for secret in ("password", "enable_secret"):
        value = form.get(secret)
        if isinstance(value, str) and value:
            body[secret] = value
        elif not creating and form.get(f"clear_{secret}") == "on":
            body[secret] = None
    return body


def device_form_again(
    request: Request,
    user: ConsoleUser,
    form: FormData,
    device: Any,
    status: int,
    errors: list[dict[str, str]],
    detail: str,
) -> Response:
    values = {k: field(form, k) for k in ("name", "host", "port", "platform", "username")}
    values |= {"labels": field(form, "labels"), "host_key_policy": field(form, "host_key_policy")}
    return page(
        request,
        "device_form.html",
        user,
        status_code=status,
        device=device,
        values=values,
        errors=errors,
        detail=detail,
        **device_form_context(),
    )


async def _save_device(
    request: Request, user: ConsoleUser, device_id: uuid.UUID | None
) -> Response:
    form = await change_form(request, user)
    device = None
    if device_id is not None:
        found = await call_api(request, user, "GET", f"/devices/{device_id}")
        if found.status_code != 200:
            return await refused(request, found)
        device = found.json()
    try:
        body = device_body(form, creating=device_id is None)
    except ValueError as exc:
        return device_form_again(
            request, user, form, device, 422, [{"field": "labels", "message": str(exc)}], str(exc)
        )
    if device_id is None:
        response = await call_api(request, user, "POST", "/devices", body)
    else:
        response = await call_api(request, user, "PATCH", f"/devices/{device_id}", body)
    if response.status_code >= 400:
        problem = problem_of(response)
        return device_form_again(
            request,
            user,
            form,
            device,
            response.status_code,
            list(problem.get("errors") or []),
            str(problem.get("detail", "")),
        )
    saved = response.json()
    return back(f"/ui/devices/{saved['id']}", "created" if device_id is None else "saved")


@router.post("/devices")
async def create_device(request: Request, user: User) -> Response:
    return await _save_device(request, user, None)


@router.post("/devices/{device_id}")
async def update_device(request: Request, device_id: uuid.UUID, user: User) -> Response:
    return await _save_device(request, user, device_id)


@router.post("/devices/{device_id}/delete")
async def delete_device(request: Request, device_id: uuid.UUID, user: User) -> Response:
    await change_form(request, user)
    response = await call_api(request, user, "DELETE", f"/devices/{device_id}")
    if response.status_code >= 400:
        return await refused(request, response)
    return back("/ui/devices", "deleted")


@router.post("/devices/{device_id}/check")
async def check_device(request: Request, device_id: uuid.UUID, user: User) -> Response:
    await change_form(request, user)
    response = await call_api(request, user, "POST", f"/devices/{device_id}/check")
    if response.status_code >= 400 and response.status_code != 502:
        return await refused(request, response)
    return back(f"/ui/devices/{device_id}", "checked")


# -- commands and schedules ------------------------------------------------------------


@router.post("/devices/{device_id}/commands")
async def create_command(request: Request, device_id: uuid.UUID, user: User) -> Response:
    form = await change_form(request, user)
    body: dict[str, Any] = {"name": field(form, "name"), "text": field(form, "text")}
    if field(form, "timeout"):
        body["timeout"] = field(form, "timeout")
    if form.get("track_changes") == "on":
        body["track_changes"] = True
    response = await call_api(request, user, "POST", f"/devices/{device_id}/commands", body)
    if response.status_code >= 400:
        return await refused(request, response)
    return back(f"/ui/devices/{device_id}", "created")


@router.post("/devices/{device_id}/commands/{command_id}/delete")
async def delete_command(
    request: Request, device_id: uuid.UUID, command_id: uuid.UUID, user: User
) -> Response:
    await change_form(request, user)
    path = f"/devices/{device_id}/commands/{command_id}"
    response = await call_api(request, user, "DELETE", path)
    if response.status_code >= 400:
        return await refused(request, response)
    return back(f"/ui/devices/{device_id}", "deleted")


@router.post("/devices/{device_id}/commands/{command_id}/schedules")
async def create_schedule(
    request: Request, device_id: uuid.UUID, command_id: uuid.UUID, user: User
) -> Response:
    form = await change_form(request, user)
    body = {"cron": field(form, "cron"), "timezone": field(form, "timezone") or "UTC"}
    path = f"/devices/{device_id}/commands/{command_id}/schedules"
    response = await call_api(request, user, "POST", path, body)
    if response.status_code >= 400:
        return await refused(request, response)
    return back(f"/ui/devices/{device_id}", "created")


ScheduleAction = Literal["pause", "resume", "run", "delete"]


@router.post("/devices/{device_id}/commands/{command_id}/schedules/{schedule_id}/{action}")
async def schedule_action(
    request: Request,
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    schedule_id: uuid.UUID,
    action: ScheduleAction,
    user: User,
) -> Response:
    await change_form(request, user)
    path = f"/devices/{device_id}/commands/{command_id}/schedules/{schedule_id}"
    if action == "pause":
        response = await call_api(request, user, "PATCH", path, {"is_active": False})
    elif action == "resume":
        response = await call_api(request, user, "PATCH", path, {"is_active": True})
    elif action == "run":
        response = await call_api(request, user, "POST", f"{path}/runs")
    else:
        response = await call_api(request, user, "DELETE", path)
    if response.status_code >= 400:
        return await refused(request, response)
    notes = {"pause": "paused", "resume": "resumed", "run": "started", "delete": "deleted"}
    return back(f"/ui/devices/{device_id}", notes[action])


# -- jobs ------------------------------------------------------------------------------


def job_body(form: FormData) -> dict[str, Any]:
    labels = queries.parse_labels(field(form, "labels"))
    exclude = queries.parse_labels(field(form, "exclude_labels"))
    target: dict[str, Any] = {"labels": labels, "exclude_labels": exclude}
    if form.get("all") == "on":
        target["all"] = True
    body: dict[str, Any] = {
        "name": field(form, "name"),
        "command": field(form, "command"),
        "target": target,
        "cron": field(form, "cron"),
        "timezone": field(form, "timezone") or "UTC",
    }
    if field(form, "max_in_flight"):
        body["concurrency"] = {"max_in_flight": field(form, "max_in_flight")}
    return body


@router.post("/jobs")
async def create_job(request: Request, user: User) -> Response:
    form = await change_form(request, user)
    values: dict[str, Any] = {
        k: field(form, k)
        for k in ("name", "command", "labels", "exclude_labels", "cron", "timezone")
    }
    values |= {"max_in_flight": field(form, "max_in_flight"), "all": form.get("all") == "on"}
    try:
        body = job_body(form)
    except ValueError as exc:
        return page(request, "job_form.html", user, status_code=422, values=values, detail=str(exc))
    response = await call_api(request, user, "POST", "/jobs", body)
    if response.status_code >= 400:
        problem = problem_of(response)
        return page(
            request,
            "job_form.html",
            user,
            status_code=response.status_code,
            values=values,
            detail=str(problem.get("detail", "")),
            errors=list(problem.get("errors") or []),
        )
    return back(f"/ui/jobs/{response.json()['id']}", "created")


JobAction = Literal["pause", "resume", "run", "delete"]


@router.post("/jobs/{job_id}/{action}")
async def job_action(
    request: Request, job_id: uuid.UUID, action: JobAction, user: User
) -> Response:
    await change_form(request, user)
    if action == "delete":
        response = await call_api(request, user, "DELETE", f"/jobs/{job_id}")
    elif action == "run":
        response = await call_api(request, user, "POST", f"/jobs/{job_id}/runs")
    else:
        response = await call_api(request, user, "POST", f"/jobs/{job_id}/{action}")
    if response.status_code >= 400:
        return await refused(request, response)
    if action == "delete":
        return back("/ui/jobs", "deleted")
    notes = {"pause": "paused", "resume": "resumed", "run": "started"}
    return back(f"/ui/jobs/{job_id}", notes[action])
