"""Webhooks: where events are sent, which ones, and every attempt to send them.

The signing secret is write-only: it is encrypted under NETCRON_SECRET_KEY like device
credentials, and only a secret netcron generated (none given) is shown, once, in the
answer to the create. Delivery itself is :mod:`netcron.webhooks.delivery`.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from netcron.api.auth import read_or_write
from netcron.api.deps import CipherDep, SessionDep, SettingsDep
from netcron.api.errors import Conflict, FieldInvalid, NotFound, ServiceUnavailable
from netcron.api.events import publish_event
from netcron.api.pagination import Limit, Offset, Page
from netcron.api.patch import not_null
from netcron.config import Settings
from netcron.crypto import CredentialCipher
from netcron.db.models import Webhook, WebhookDelivery
from netcron.events import Event
from netcron.webhooks.matching import EVENT_TYPES, TEST
from netcron.webhooks.streams import forget_webhook, subject_for
from netcron.webhooks.targets import TargetRefused, check_url, parse_networks

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(read_or_write)], prefix="/webhooks", tags=["webhooks"])

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=256)]
Selector = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=64)],
    Annotated[str, StringConstraints(max_length=256)],
]
EventTypes = Annotated[list[str], Field(min_length=1, max_length=64)]


def _known_types(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - EVENT_TYPES)
    if unknown:
        raise ValueError(
            f"unknown event type(s) {', '.join(unknown)}; use {', '.join(sorted(EVENT_TYPES))}"
        )
    return sorted(set(value))


class WebhookCreate(BaseModel):
    """A new webhook; without ``secret`` netcron makes one and shows it once."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    url: str = Field(examples=["https://hooks.example.net/netcron"])
    event_types: EventTypes = Field(examples=[["run.failed", "run.timed_out"]])
    selector: Selector = Field(
        default_factory=dict,
        max_length=32,
        description="Only events of devices carrying all these labels (empty: every event).",
    )
    secret: Secret | None = Field(None, json_schema_extra={"writeOnly": True})
    is_active: bool = True

    _types = field_validator("event_types")(_known_types)


class WebhookUpdate(BaseModel):
    """Change a webhook; a field left out keeps its value. A new ``secret`` replaces the old."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    url: str | None = None
    event_types: EventTypes | None = None
    selector: Selector | None = Field(None, max_length=32)
    secret: Secret | None = Field(None, json_schema_extra={"writeOnly": True})
    is_active: bool | None = None

    _types = field_validator("event_types")(_known_types)
    _not_null = field_validator(
        "name", "url", "event_types", "selector", "secret", "is_active", mode="before"
    )(not_null)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    url: str
    event_types: list[str]
    selector: dict[str, str]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    secret: str | None = Field(
        None, description="The secret netcron generated, shown this once (null if you gave one)."
    )


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    delivery: int = Field(description="Every attempt of one delivery shares it.")
    event_id: int | None
    event_type: str
    attempt: int
    attempted_at: datetime
    outcome: str = Field(description="delivered, failed (retried), expired or refused.")
    status_code: int | None
    error: str | None
    duration_ms: float | None


class TestSent(BaseModel):
    sent: bool = True
    event_type: str = TEST


def _checked_url(url: str, settings: Settings) -> str:
    try:
        return check_url(url.strip(), parse_networks(settings.webhook_network_list()))
    except TargetRefused as exc:
        raise FieldInvalid("url", str(exc)) from None


def _encrypt(cipher: CredentialCipher, secret: str) -> str:
    return cipher.encrypt_bytes(secret.encode()).decode()


async def _announce(session: AsyncSession, request: Request, kind: str, webhook: Webhook) -> None:
    """Commit, then publish ``webhook.<kind>`` before answering.

    Every replica's fan-out reads the webhooks again when it meets this event in the
    stream, so an event published after the answer reaches a webhook just created or
    changed whichever replica fans it out.
    """
    await session.commit()
    event = Event(
        type=f"webhook.{kind}", data={"webhook_id": str(webhook.id), "name": webhook.name}
    )
    await publish_event(request, event)


async def get_webhook(session: AsyncSession, webhook_id: uuid.UUID) -> Webhook:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound("webhook", webhook_id)
    return webhook


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a webhook named {name!r} already exists") from None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate,
    session: SessionDep,
    cipher: CipherDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> WebhookCreated:
    generated = None if body.secret else f"whsec_{secrets.token_urlsafe(32)}"
    webhook = Webhook(
        name=body.name,
        url=_checked_url(body.url, settings),
        event_types=body.event_types,
        selector=body.selector,
        secret=_encrypt(cipher, body.secret or generated or ""),
        is_active=body.is_active,
    )
    session.add(webhook)
    await _flush(session, body.name)
    await session.refresh(webhook)
    response.headers["Location"] = f"/webhooks/{webhook.id}"
    log.info("created webhook %s", webhook.name, extra={"webhook_id": str(webhook.id)})
    await _announce(session, request, "created", webhook)
    return WebhookCreated.model_validate(
        {**WebhookRead.model_validate(webhook).model_dump(), "secret": generated}
    )


@router.get("", response_model=Page[WebhookRead])
async def list_webhooks(
    session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[WebhookRead]:
    total = await session.scalar(select(func.count()).select_from(Webhook)) or 0
    rows = await session.scalars(
        select(Webhook).order_by(Webhook.name, Webhook.id).limit(limit).offset(offset)
    )
    return Page(
        items=[WebhookRead.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{webhook_id}", response_model=WebhookRead)
async def read_webhook(webhook_id: uuid.UUID, session: SessionDep) -> Webhook:
    return await get_webhook(session, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookRead)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    session: SessionDep,
    cipher: CipherDep,
    settings: SettingsDep,
    request: Request,
) -> Webhook:
    webhook = await get_webhook(session, webhook_id)
    given: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "url" in given:
        given["url"] = _checked_url(given["url"], settings)
    if "secret" in given:
        given["secret"] = _encrypt(cipher, given["secret"])
    for name, value in given.items():
        setattr(webhook, name, value)
    await _flush(session, webhook.name)
    await session.refresh(webhook)
    log.info(
        "updated webhook: %s",
        ", ".join(sorted(given)),
        extra={"webhook_id": str(webhook_id)},
    )
    await _announce(session, request, "updated", webhook)
    return webhook


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(
    webhook_id: uuid.UUID, session: SessionDep, request: Request, background: BackgroundTasks
) -> Response:
    """Deliveries not yet made are dropped with it."""
    webhook = await get_webhook(session, webhook_id)
    await session.delete(webhook)
    log.info("deleted webhook %s", webhook.name, extra={"webhook_id": str(webhook_id)})
    await _announce(session, request, "deleted", webhook)
    nc = request.app.state.nats
    if nc is not None and nc.is_connected:
        background.add_task(_forget, nc, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT, background=background)


async def _forget(nc: Any, webhook_id: uuid.UUID) -> None:
    try:
        await forget_webhook(nc.jetstream(), webhook_id)
    except Exception as exc:
        log.warning("webhook %s: consumer not removed: %r", webhook_id, exc)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryRead])
async def list_deliveries(
    webhook_id: uuid.UUID, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[DeliveryRead]:
    """Every attempt, newest first (kept 7 days)."""
    await get_webhook(session, webhook_id)
    mine = WebhookDelivery.webhook_id == webhook_id
    total = await session.scalar(select(func.count()).select_from(WebhookDelivery).where(mine))
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(mine)
        .order_by(WebhookDelivery.delivery.desc(), WebhookDelivery.attempt.desc())
        .limit(limit)
        .offset(offset)
    )
    return Page(
        items=[DeliveryRead.model_validate(row) for row in rows],
        total=total or 0,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestSent,
    responses={503: {"description": "NATS is unreachable: nothing was sent."}},
)
async def test_webhook(webhook_id: uuid.UUID, session: SessionDep, request: Request) -> TestSent:
    """Queue a ``webhook.test`` event for this webhook only, behind its other deliveries."""
    webhook = await get_webhook(session, webhook_id)
    nc = request.app.state.nats
    if nc is None or not nc.is_connected:
        raise ServiceUnavailable("the broker is unavailable (NATS is not connected)")
    event = Event(type=TEST, data={"webhook": webhook.name, "message": "a test from netcron"})
    try:
        await nc.jetstream().publish(subject_for(webhook.id), event.model_dump_json().encode())
    except Exception as exc:
        raise ServiceUnavailable(f"the test event was not queued: {exc!r}") from None
    return TestSent()
