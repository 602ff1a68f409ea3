"""The tables: devices, commands, schedules, command_results (the runs) and webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonDict = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of every netcron table."""


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class Device(Timestamped, Base):
    """A router, switch or server, with its credentials kept as one Fernet token."""

    __tablename__ = "devices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    port: Mapped[int] = mapped_column(Integer, nullable=False, default=22)
    platform: Mapped[str] = mapped_column(String(64), nullable=False)
    username: Mapped[str | None] = mapped_column(String(128))
    credentials: Mapped[str | None] = mapped_column(Text)
    has_password: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    has_private_key: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    has_enable_secret: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    labels: Mapped[dict[str, Any]] = mapped_column(JsonDict, nullable=False, default=dict)
    host_key_policy: Mapped[str] = mapped_column(
        String(32),
        nullable=False,
        default="trust_on_first_use",
        server_default="trust_on_first_use",
    )
    host_key: Mapped[str | None] = mapped_column(String(128))
    session_limit: Mapped[int] = mapped_column(
        Integer, nullable=False, default=1, server_default="1"
    )
    connect_timeout: Mapped[float] = mapped_column(
        Float, nullable=False, default=10.0, server_default="10"
    )
    last_check: Mapped[dict[str, Any] | None] = mapped_column(JsonDict)


class Command(Timestamped, Base):
    """A CLI line to run on one device; ``{name}`` placeholders are filled per schedule."""

    __tablename__ = "commands"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JsonDict, nullable=False, default=dict)
    timeout: Mapped[float] = mapped_column(Float, nullable=False, default=30.0)


class Schedule(Timestamped, Base):
    """A cron schedule of one command; each has one ScheduleWorkflow in Temporal."""

    __tablename__ = "schedules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    command_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("commands.id", ondelete="CASCADE"), nullable=False, index=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), nullable=False, index=True
    )
    cron: Mapped[str] = mapped_column(String(128), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    params: Mapped[dict[str, Any]] = mapped_column(JsonDict, nullable=False, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    ttl_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=300)
    overlap: Mapped[str] = mapped_column(String(16), nullable=False, default="skip")
    starting_deadline_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    retry_max_attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, default=1, server_default="1"
    )
    retry_backoff_seconds: Mapped[float] = mapped_column(
        Float, nullable=False, default=10.0, server_default="10"
    )
    spec_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    workflow_id: Mapped[str] = mapped_column(String(128), nullable=False)


class CommandResult(Timestamped, Base):
    """One run of a schedule; ``run_id`` is deterministic, so writes are upserts."""

    __tablename__ = "command_results"
    #: The update that records a run returns its new ``updated_at`` (RETURNING), rather
    #: than a second query fetching it.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        Index("ix_command_results_device_scheduled", "device_id", "scheduled_at"),
        Index("ix_command_results_schedule_scheduled", "schedule_id", "scheduled_at"),
        Index("ix_command_results_command_scheduled", "command_id", "scheduled_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    run_id: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    schedule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False
    )
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), nullable=False
    )
    command_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("commands.id", ondelete="CASCADE"), nullable=False
    )
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    output: Mapped[str | None] = mapped_column(Text)
    output_truncated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    executor_id: Mapped[str | None] = mapped_column(String(200))
    command: Mapped[str | None] = mapped_column(Text)


class Webhook(Timestamped, Base):
    """A receiver of events: its URL, the event types it wants, an optional label selector."""

    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JsonDict, nullable=False, default=list)
    selector: Mapped[dict[str, Any]] = mapped_column(JsonDict, nullable=False, default=dict)
    #: Fernet token of the signing secret, under NETCRON_SECRET_KEY.
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class WebhookDelivery(Base):
    """One attempt to deliver one event to one webhook, and how it went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_webhook_delivery", "webhook_id", "delivery"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    webhook_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    #: The delivery's sequence in the NETCRON_WEBHOOKS stream: every attempt of one
    #: delivery shares it (the `Netcron-Delivery` header).
    delivery: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)
