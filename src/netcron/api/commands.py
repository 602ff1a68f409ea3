"""Commands: the CLI lines a device runs, with ``{param}`` placeholders and defaults."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.auth import read_or_write
from netcron.api.deps import OrchestratorDep, SessionDep
from netcron.api.devices import Name, get_device
from netcron.api.errors import NotFound
from netcron.api.events import emit
from netcron.api.pagination import Limit, Offset, Page
from netcron.api.patch import not_null
from netcron.api.specs import current_specs, lock_schedules, push_specs, stop_for_delete
from netcron.db.models import Command, Schedule
from netcron.events import Event
from netcron.history.options import CheckedParseSpec, ParseSpec, Patterns
from netcron.render import RenderError, check_value

router = APIRouter(
    dependencies=[Depends(read_or_write)], prefix="/devices/{device_id}/commands", tags=["commands"]
)

ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
ParamValue = Annotated[str, StringConstraints(max_length=1024)]
Params = Annotated[dict[ParamName, ParamValue], Field(max_length=64)]


def validate_params(params: dict[str, str]) -> dict[str, str]:
    for name, value in params.items():
        try:
            check_value(name, value)
        except RenderError as exc:
            raise ValueError(str(exc)) from None
    return params


def one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("command text is blank")
    if "\n" in value or "\r" in value or "\x00" in value:
        raise ValueError("command text must be a single line")
    return value


class CommandCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    text: str = Field(min_length=1, max_length=4096, examples=["show interfaces {ifname}"])
    params: Params = Field(default_factory=dict, description="Defaults for the placeholders.")
    timeout: float = Field(30.0, gt=0, le=3600, description="Seconds the command may take.")
    track_changes: bool = Field(
        False, description="Compare each run's normalized output with the previous one's."
    )
    ignore_lines: Patterns = Field(
        default_factory=list,
        description="Regexes: matching lines are left out when runs are compared.",
    )
    mask: Patterns = Field(
        default_factory=list,
        description="Regexes of secrets to mask (groups mark the secret; none: the match), "
        "beside the platform's defaults.",
    )
    parse: CheckedParseSpec | None = Field(
        None,
        description='Parse the output: {"engine": "textfsm"} or {"engine": "ttp", '
        '"template": "..."}.',
    )

    _params = field_validator("params")(validate_params)

    _text = field_validator("text")(one_line)


class CommandUpdate(BaseModel):
    """Change a command; its schedules run the new text from their next fire."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    text: str | None = Field(None, min_length=1, max_length=4096)
    params: Params | None = None
    timeout: float | None = Field(None, gt=0, le=3600)
    track_changes: bool | None = None
    ignore_lines: Patterns | None = None
    mask: Patterns | None = None
    parse: CheckedParseSpec | None = Field(None, description="null stops parsing.")

    _params = field_validator("params")(lambda value: validate_params(value) if value else value)
    _text = field_validator("text")(one_line)

    _not_null = field_validator(
        "name", "text", "params", "timeout", "track_changes", "ignore_lines", "mask", mode="before"
    )(not_null)


class CommandRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_id: uuid.UUID
    name: str
    text: str
    params: dict[str, str]
    timeout: float
    track_changes: bool
    ignore_lines: list[str]
    mask: list[str]
    parse: ParseSpec | None
    created_at: datetime
    updated_at: datetime


async def get_command(
    session: AsyncSession, device_id: uuid.UUID, command_id: uuid.UUID, *, lock: bool = False
) -> Command:
    """The command, 404 when it is unknown or belongs to another device.

    ``lock`` holds its row against concurrent changes and deletes.
    """
    await get_device(session, device_id)
    command = await session.get(
        Command,
        command_id,
        with_for_update={"key_share": True} if lock else None,
        populate_existing=lock,
    )
    if command is None or command.device_id != device_id:
        raise NotFound("command", command_id)
    return command


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CommandRead)
async def create_command(
    device_id: uuid.UUID,
    body: CommandCreate,
    session: SessionDep,
    response: Response,
    request: Request,
    background: BackgroundTasks,
) -> Command:
    await get_device(session, device_id)
    command = Command(
        device_id=device_id,
        name=body.name,
        text=body.text,
        params=body.params,
        timeout=body.timeout,
        track_changes=body.track_changes,
        ignore_lines=body.ignore_lines,
        mask=body.mask,
        parse=body.parse.model_dump(exclude_none=True) if body.parse else None,
    )
    session.add(command)
    await session.flush()
    await session.refresh(command)
    response.headers["Location"] = f"/devices/{device_id}/commands/{command.id}"
    emit(background, request, _event("command.created", command))
    return command


def _event(kind: str, command: Command) -> Event:
    return Event(
        type=kind, device_id=command.device_id, command_id=command.id, data={"name": command.name}
    )


@router.get("", response_model=Page[CommandRead])
async def list_commands(
    device_id: uuid.UUID, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[CommandRead]:
    await get_device(session, device_id)
    where = Command.device_id == device_id
    total = await session.scalar(select(func.count()).select_from(Command).where(where)) or 0
    rows = await session.scalars(
        select(Command)
        .where(where)
        .order_by(Command.created_at, Command.id)
        .limit(limit)
        .offset(offset)
    )
    return Page(
        items=[CommandRead.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{command_id}", response_model=CommandRead)
async def read_command(device_id: uuid.UUID, command_id: uuid.UUID, session: SessionDep) -> Command:
    return await get_command(session, device_id, command_id)


@router.patch("/{command_id}", response_model=CommandRead)
async def update_command(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    body: CommandUpdate,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> Command:
    await lock_schedules(session, Schedule.command_id == command_id, for_delete=False)
    command = await get_command(session, device_id, command_id, lock=True)
    for name in body.model_fields_set:
        value = getattr(body, name)
        setattr(
            command,
            name,
            value.model_dump(exclude_none=True) if name == "parse" and value else value,
        )
    specs = await current_specs(session, Schedule.command_id == command_id, bump=True)
    await session.commit()
    await push_specs(orchestrator, specs)
    await session.refresh(command)
    emit(background, request, _event("command.updated", command))
    return command


@router.delete("/{command_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_command(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    command = await get_command(session, device_id, command_id)

    async def lock_command() -> None:
        locked = await session.get(
            Command, command_id, with_for_update=True, populate_existing=True
        )
        if locked is None:
            raise NotFound("command", command_id)

    await stop_for_delete(
        session, orchestrator, Schedule.command_id == command_id, "command", lock_command
    )
    emit(background, request, _event("command.deleted", command))
    await session.delete(command)
    return Response(status_code=status.HTTP_204_NO_CONTENT, background=background)
