"""The tables: devices, commands, schedules, jobs, job_fires, command_results (the runs),
outputs and webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonDict = JSON().with_variant(JSONB(), "postgresql")
#: A JSON column whose Python None is SQL NULL (not JSON ``null``), so ``IS NULL`` holds.
NullableJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of every netcron table."""


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class HistoryColumns:
    """What a command or a job asks of its runs' output (``netcron.history.options``)."""

    track_changes: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default="false"
    )
    ignore_lines: Mapped[list[str]] = mapped_column(
        JsonDict, nullable=False, default=list, server_default="[]"
    )
    mask: Mapped[list[str]] = mapped_column(
        JsonDict, nullable=False, default=list, server_default="[]"
    )
    parse: Mapped[dict[str, Any] | None] = mapped_column(NullableJson)


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


class Command(HistoryColumns, Timestamped, Base):
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


class Job(HistoryColumns, Timestamped, Base):
    """One command on every device a label selector matches; each has one JobWorkflow."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    command: Mapped[str] = mapped_column(Text, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(
        JsonDict, nullable=False, default=dict, server_default="{}"
    )
    target: Mapped[dict[str, Any]] = mapped_column(JsonDict, nullable=False)
    cron: Mapped[str] = mapped_column(String(128), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    ttl_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default="300")
    overlap: Mapped[str] = mapped_column(String(16), nullable=False, server_default="skip")
    starting_deadline_seconds: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default="60"
    )
    retry_max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    retry_backoff_seconds: Mapped[float] = mapped_column(Float, nullable=False, server_default="10")
    timeout: Mapped[float] = mapped_column(Float, nullable=False, server_default="30")
    max_in_flight: Mapped[int] = mapped_column(Integer, nullable=False, server_default="100")
    per_label: Mapped[dict[str, Any]] = mapped_column(
        JsonDict, nullable=False, default=dict, server_default="{}"
    )
    spec_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    workflow_id: Mapped[str] = mapped_column(String(128), nullable=False)


class JobFire(Timestamped, Base):
    """One fire of a job: a run per device its selector matched at that moment."""

    __tablename__ = "job_fires"
    __table_args__ = (Index("ix_job_fires_job_scheduled", "job_id", "scheduled_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    )
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    manual: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    missed: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class CommandResult(Timestamped, Base):
    """One run of a schedule, or of a job on one device; ``run_id`` is deterministic, so
    writes are upserts."""

    __tablename__ = "command_results"
    #: The update that records a run returns its new ``updated_at`` (RETURNING), rather
    #: than a second query fetching it.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        Index("ix_command_results_device_scheduled", "device_id", "scheduled_at"),
        Index("ix_command_results_schedule_scheduled", "schedule_id", "scheduled_at"),
        Index("ix_command_results_command_scheduled", "command_id", "scheduled_at"),
        Index("ix_command_results_fire_status", "fire_id", "status"),
        Index("ix_command_results_job_device_scheduled", "job_id", "device_id", "scheduled_at"),
        Index("ix_command_results_scheduled_status", "scheduled_at", "status"),
        CheckConstraint(
            "(schedule_id IS NOT NULL AND command_id IS NOT NULL) OR "
            "(job_id IS NOT NULL AND fire_id IS NOT NULL)",
            name="ck_command_results_owner",
        ),
        # The change points of a series: small, since most runs change nothing.
        Index(
            "ix_command_results_versions",
            "command_id",
            "scheduled_at",
            postgresql_where=text("changed"),
        ),
        # Retention finds old runs by time: a BRIN index is a few pages for any size.
        Index("ix_command_results_scheduled_brin", "scheduled_at", postgresql_using="brin"),
        # Whether a blob is still referenced (retention's clean-up); shared hashes dedupe.
        Index("ix_command_results_output_hash", "output_hash"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    run_id: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE")
    )
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), nullable=False
    )
    command_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("commands.id", ondelete="CASCADE")
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    fire_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("job_fires.id", ondelete="CASCADE")
    )
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: The output, in the content-addressed store (for a tracked run: its normalized text).
    output_hash: Mapped[bytes | None] = mapped_column(LargeBinary, ForeignKey("outputs.hash"))
    #: The lines normalization set aside, to restore the output (``history.normalize``).
    output_volatile: Mapped[dict[str, Any] | None] = mapped_column(NullableJson)
    output_truncated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    executor_id: Mapped[str | None] = mapped_column(String(200))
    command: Mapped[str | None] = mapped_column(Text)
    #: Tracked runs only: whether the normalized output differs from the previous
    #: successful run's (True for the first), and by how many lines.
    changed: Mapped[bool | None] = mapped_column(Boolean)
    lines_added: Mapped[int | None] = mapped_column(Integer)
    lines_removed: Mapped[int | None] = mapped_column(Integer)
    parsed: Mapped[list[dict[str, Any]] | None] = mapped_column(NullableJson)
    parse_error: Mapped[str | None] = mapped_column(Text)


class Output(Base):
    """One distinct output, zlib-compressed, keyed by the SHA-256 of its text."""

    __tablename__ = "outputs"

    hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    #: The lines normalization set aside in the first run that stored this text; later
    #: runs keep only the lines that differ from these.
    volatile: Mapped[dict[str, Any] | None] = mapped_column(NullableJson)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


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
