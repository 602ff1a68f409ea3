"""Devices: the routers and switches netcron logs into; credentials are write-only."""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.auth import read_or_write
from netcron.api.deps import CipherDep, OrchestratorDep, SessionDep
from netcron.api.errors import Conflict, FieldInvalid, NotFound
from netcron.api.events import emit
from netcron.api.pagination import Limit, Offset, Page
from netcron.api.patch import not_null
from netcron.api.specs import current_specs, lock_schedules, push_specs, stop_for_delete
from netcron.crypto import Credentials
from netcron.db.models import Command, Device, Schedule
from netcron.events import Event
from netcron.fleet.selector import Target, parse_label_filters
from netcron.platforms import PLATFORMS, HostKeyPolicy

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(read_or_write)], prefix="/devices", tags=["devices"])

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Label = Annotated[str, StringConstraints(max_length=256)]


def validate_host(value: str) -> str:
    """An IPv4/IPv6 address or an RFC 1123 host name."""
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOSTNAME.match(value) or value.replace(".", "").isdigit():
        raise ValueError(f"{value!r} is neither an IP address nor a valid DNS name")
    return value


def validate_platform(value: str) -> str:
    if value not in PLATFORMS:
        raise ValueError(f"unknown platform {value!r}; use one of {', '.join(PLATFORMS)}")
    return value


#: OpenSSH's notation, as `ssh-keygen -lf` prints it.
Fingerprint = Annotated[
    str,
    StringConstraints(pattern=r"^SHA256:[A-Za-z0-9+/]{43}$"),
    Field(examples=["SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"]),
]


class DeviceAccess(BaseModel):
    """How netcron opens sessions to the device; every field may be changed with PATCH."""

    model_config = ConfigDict(extra="forbid")

    host_key_policy: HostKeyPolicy | None = Field(
        None,
        description="trust_on_first_use (default): the first key seen is recorded and "
        "required from then on; pinned: host_key must be given; ignore: any key (logged).",
    )
    host_key: Fingerprint | None = Field(
        None, description="The host key fingerprint to require; null forgets it (re-learned)."
    )
    session_limit: int | None = Field(
        None, ge=1, le=64, description="Sessions at once across all executors (1)."
    )
    connect_timeout: float | None = Field(
        None, ge=1, le=120, description="Seconds to open a session, login included (10)."
    )

    _not_null = field_validator(
        "host_key_policy", "session_limit", "connect_timeout", mode="before"
    )(not_null)


class DeviceCreate(DeviceAccess):
    """A new device. ``password``, ``private_key`` and ``enable_secret`` are never returned."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    host: str = Field(max_length=255, examples=["10.0.0.1"])
    port: int = Field(22, ge=1, le=65535)
    platform: str = Field(examples=["cisco_ios"])
    username: str | None = Field(None, max_length=128)
    password: str | None = Field(None, max_length=1024, json_schema_extra={"writeOnly": True})
    private_key: str | None = Field(None, max_length=16384, json_schema_extra={"writeOnly": True})
    enable_secret: str | None = Field(None, max_length=1024, json_schema_extra={"writeOnly": True})
    labels: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Label] = Field(
        default_factory=dict, max_length=64
    )

    _host = field_validator("host")(validate_host)
    _platform = field_validator("platform")(validate_platform)

    def credentials(self) -> Credentials:
        return Credentials(
            password=self.password, private_key=self.private_key, enable_secret=self.enable_secret
        )

    def access(self) -> dict[str, object]:
        return {
            "host_key_policy": (self.host_key_policy or HostKeyPolicy.TRUST_ON_FIRST_USE).value,
            "host_key": self.host_key,
            "session_limit": self.session_limit or 1,
            "connect_timeout": self.connect_timeout or 10.0,
        }


class DeviceUpdate(DeviceAccess):
    """Change a device. A credential set to null is removed; one left out is kept."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    host: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    platform: str | None = None
    username: str | None = Field(None, max_length=128)
    password: str | None = Field(None, max_length=1024, json_schema_extra={"writeOnly": True})
    private_key: str | None = Field(None, max_length=16384, json_schema_extra={"writeOnly": True})
    enable_secret: str | None = Field(None, max_length=1024, json_schema_extra={"writeOnly": True})
    labels: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Label] | None = (
        Field(None, max_length=64)
    )

    _host = field_validator("host")(lambda value: validate_host(value) if value else value)
    _platform = field_validator("platform")(
        lambda value: validate_platform(value) if value else value
    )

    _not_null_device = field_validator("name", "host", "port", "platform", "labels", mode="before")(
        not_null
    )


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    host: str
    port: int
    platform: str
    username: str | None
    has_password: bool
    has_private_key: bool
    has_enable_secret: bool
    labels: dict[str, str]
    host_key_policy: HostKeyPolicy
    host_key: str | None
    session_limit: int
    connect_timeout: float
    last_check: dict[str, Any] | None = Field(
        description="The latest `POST /devices/{id}/check`, as it answered."
    )
    created_at: datetime
    updated_at: datetime


def _check_pinned(device: Device) -> None:
    if device.host_key_policy == HostKeyPolicy.PINNED and not device.host_key:
        raise FieldInvalid("host_key", "a pinned host key policy needs the fingerprint")


async def get_device(session: AsyncSession, device_id: uuid.UUID, *, lock: bool = False) -> Device:
    """The device; ``lock`` holds its row against concurrent changes and deletes."""
    device = await session.get(
        Device,
        device_id,
        with_for_update={"key_share": True} if lock else None,
        populate_existing=lock,
    )
    if device is None:
        raise NotFound("device", device_id)
    return device


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeviceRead)
async def create_device(
    body: DeviceCreate,
    session: SessionDep,
    cipher: CipherDep,
    response: Response,
    request: Request,
    background: BackgroundTasks,
) -> Device:
    credentials = body.credentials()
    device = Device(
        name=body.name,
        host=body.host,
        port=body.port,
        platform=body.platform,
        username=body.username,
        credentials=cipher.encrypt(credentials),
        has_password=credentials.password is not None,
        has_private_key=credentials.private_key is not None,
        has_enable_secret=credentials.enable_secret is not None,
        labels=body.labels,
        **body.access(),
    )
    _check_pinned(device)
    session.add(device)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a device named {body.name!r} already exists") from None
    await session.refresh(device)
    response.headers["Location"] = f"/devices/{device.id}"
    log.info("created device %s", device.name, extra={"device_id": device.id})
    emit(
        background,
        request,
        Event(type="device.created", device_id=device.id, data={"name": device.name}),
    )
    return device


@router.get("", response_model=Page[DeviceRead])
async def list_devices(
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
    label: list[str] = Query(
        [],
        max_length=32,
        description="`key:value`; every key must match, a repeated key matches any value "
        "(`label=site:ams1&label=role:core`), as a job's target does.",
    ),
) -> Page[DeviceRead]:
    where: ColumnElement[bool] = true()
    if label:
        try:
            where = Target(labels=parse_label_filters(label)).condition()
        except (ValueError, ValidationError) as exc:
            raise FieldInvalid("label", str(exc).splitlines()[0]) from None
    total = await session.scalar(select(func.count()).select_from(Device).where(where)) or 0
    rows = await session.scalars(
        select(Device).where(where).order_by(Device.name, Device.id).limit(limit).offset(offset)
    )
    return Page(
        items=[DeviceRead.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{device_id}", response_model=DeviceRead)
async def read_device(device_id: uuid.UUID, session: SessionDep) -> Device:
    return await get_device(session, device_id)


@router.patch("/{device_id}", response_model=DeviceRead)
async def update_device(
    device_id: uuid.UUID,
    body: DeviceUpdate,
    session: SessionDep,
    cipher: CipherDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> Device:
    """Change a device; its schedules reach it at the new address from their next fire."""
    await lock_schedules(session, Schedule.device_id == device_id, for_delete=False)
    device = await get_device(session, device_id, lock=True)
    given = body.model_fields_set
    plain = {"name", "host", "port", "platform", "username", "labels"}
    for name in given & (plain | {"host_key", "session_limit", "connect_timeout"}):
        setattr(device, name, getattr(body, name))
    if "host_key_policy" in given and body.host_key_policy is not None:
        device.host_key_policy = body.host_key_policy.value
    _check_pinned(device)
    secrets = given & {"password", "private_key", "enable_secret"}
    if secrets:
        credentials = cipher.decrypt(device.credentials).model_copy(
            update={name: getattr(body, name) for name in secrets}
        )
        device.credentials = cipher.encrypt(credentials)
        device.has_password = credentials.password is not None
        device.has_private_key = credentials.private_key is not None
        device.has_enable_secret = credentials.enable_secret is not None
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a device named {body.name!r} already exists") from None
    specs = await current_specs(session, Schedule.device_id == device_id, bump=True)
    await session.commit()
    await push_specs(orchestrator, specs)
    await session.refresh(device)
    log.info("updated device: %s", ", ".join(sorted(given)), extra={"device_id": device_id})
    changed = sorted(given)
    emit(
        background,
        request,
        Event(type="device.updated", device_id=device_id, data={"changed": changed}),
    )
    return device


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_device(
    device_id: uuid.UUID,
    session: SessionDep,
    orchestrator: OrchestratorDep,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    """Stop every schedule's workflow first: nothing may keep firing for a device that is gone."""
    device = await get_device(session, device_id)

    async def lock_device() -> None:
        await session.execute(
            select(Command.id)
            .where(Command.device_id == device_id)
            .order_by(Command.id)
            .with_for_update()
        )
        locked = await session.get(Device, device_id, with_for_update=True, populate_existing=True)
        if locked is None:
            raise NotFound("device", device_id)

    schedule_ids = await stop_for_delete(
        session, orchestrator, Schedule.device_id == device_id, "device", lock_device
    )
    await session.delete(device)
    log.info(
        "deleted device %s and %d schedule(s)",
        device.name,
        len(schedule_ids),
        extra={"device_id": device_id},
    )
    emit(background, request, Event(type="device.deleted", device_id=device_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT, background=background)
