"""Live events: what happened, for people watching (SSE, WebSocket, `netcron events`).

The api publishes each event to the JetStream stream NETCRON_EVENTS (subjects
``netcron.events.<type>``), bounded by age and count; every api replica serves its
clients from that stream, so a client on any replica sees every event, and a client
that reconnects replays what it missed from the stream's sequence numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

EVENTS_STREAM = "NETCRON_EVENTS"
EVENTS_SUBJECT_PREFIX = "netcron.events"
#: The replay window: events older or beyond this count are gone.
EVENTS_MAX_AGE_SECONDS = 3600
EVENTS_MAX_MESSAGES = 100_000
#: The first lines of a run's output that an event carries.
OUTPUT_LINES = 5


class Event(BaseModel):
    """One thing that happened; ``id`` is its stream sequence, set when it is read back."""

    id: int | None = None
    type: str = Field(examples=["run.succeeded", "schedule.paused"])
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    device_id: UUID | None = None
    command_id: UUID | None = None
    schedule_id: UUID | None = None
    job_id: UUID | None = None
    fire_id: UUID | None = None
    run_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"{EVENTS_SUBJECT_PREFIX}.{self.type}"

    def matches(
        self,
        *,
        device_id: UUID | None = None,
        schedule_id: UUID | None = None,
        type_prefix: str | None = None,
        job_id: UUID | None = None,
        exclude_prefix: str | None = None,
    ) -> bool:
        if device_id is not None and self.device_id != device_id:
            return False
        if schedule_id is not None and self.schedule_id != schedule_id:
            return False
        if job_id is not None and self.job_id != job_id:
            return False
        if exclude_prefix and self.type.startswith(exclude_prefix):
            return False
        return not type_prefix or self.type.startswith(type_prefix)

    def line(self) -> str:
        """One readable line for a terminal."""
        ids = " ".join(
            f"{name}={value}"
            for name, value in (
                ("device", self.device_id),
                ("schedule", self.schedule_id),
                ("job", self.job_id),
                ("fire", self.fire_id),
                ("run", self.run_id),
            )
            if value
        )
        detail = " ".join(
            f"{k}={v}"
            for k, v in self.data.items()
            if k not in ("output", "diff") and v is not None
        )
        return f"{self.time:%H:%M:%S} {self.type:<16} {ids} {detail}".rstrip()


def first_lines(output: str | None, count: int = OUTPUT_LINES) -> str | None:
    if output is None:
        return None
    return "\n".join(output.splitlines()[:count])


def parse_sse(lines: list[str]) -> Event | None:
    """One Server-Sent Events block (the lines up to a blank one) as an Event, if it is one."""
    data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
    ident = next((line[3:].strip() for line in lines if line.startswith("id:")), None)
    if not data:
        return None
    event = Event.model_validate_json(data)
    if ident and ident.isdigit():
        event.id = int(ident)
    return event
