"""Publishing events from the api, and serving them as Server-Sent Events and WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from starlette.websockets import WebSocketDisconnect

from netcron.api.auth import read_or_write
from netcron.apikeys import find_key
from netcron.events import (
    EVENTS_MAX_AGE_SECONDS,
    EVENTS_MAX_MESSAGES,
    EVENTS_STREAM,
    EVENTS_SUBJECT_PREFIX,
    Event,
)
from netcron.observability.metrics import EVENT_CLIENTS

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])

#: Events a client may fall behind by before it is cut off.
CLIENT_BUFFER = 1000
HEARTBEAT_SECONDS = 15.0
POLICY_VIOLATION = 1008


EVENTS_STREAM_CONFIG = StreamConfig(
    name=EVENTS_STREAM,
    subjects=[f"{EVENTS_SUBJECT_PREFIX}.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=EVENTS_MAX_AGE_SECONDS,
    max_msgs=EVENTS_MAX_MESSAGES,
)


async def ensure_events_stream(nc: NatsClient) -> None:
    js = nc.jetstream()
    try:
        await js.stream_info(EVENTS_STREAM)
        await js.update_stream(EVENTS_STREAM_CONFIG)
    except NotFoundError:
        await js.add_stream(EVENTS_STREAM_CONFIG)


async def publish_event(request_or_app: Any, event: Event) -> None:
    """Best effort: an event that cannot be published never fails the change it reports."""
    app = getattr(request_or_app, "app", request_or_app)
    nc: NatsClient | None = app.state.nats
    if nc is None or not nc.is_connected:
        log.debug("event %s not published: NATS is not connected", event.type)
        return
    try:
        await nc.jetstream().publish(event.subject, event.model_dump_json().encode())
    except Exception as exc:
        log.warning("event %s not published: %s", event.type, exc)


#: Events of one batch published at once (a fire's runs are recorded in batches).
PUBLISH_AT_ONCE = 64


async def publish_events(request_or_app: Any, events: list[Event]) -> None:
    """Publish a batch of events, a bounded number at a time, in order of their start."""
    gate = asyncio.Semaphore(PUBLISH_AT_ONCE)

    async def one(event: Event) -> None:
        async with gate:
            await publish_event(request_or_app, event)

    await asyncio.gather(*(one(event) for event in events))


def emit(background: BackgroundTasks, request: Request, event: Event) -> None:
    """Publish after the response, so after the request's transaction committed."""
    background.add_task(publish_event, request.app, event)


class Feed:
    """One client's view of the stream: filtered, bounded, from a sequence or live."""

    def __init__(self, nc: NatsClient, *, since: int | None, filters: EventFilters) -> None:
        self.nc = nc
        self.since = since
        self.filters = filters
        self.queue: asyncio.Queue[Event] = asyncio.Queue(CLIENT_BUFFER)
        self.overflowed = False
        self.gap = False

    async def __aenter__(self) -> Feed:
        js = self.nc.jetstream()
        if self.since is not None:
            info = await js.stream_info(EVENTS_STREAM)
            self.gap = self.since + 1 < info.state.first_seq and info.state.messages > 0
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=max(self.since + 1, 1),
            )
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
        self.subscription = await js.subscribe(
            f"{EVENTS_SUBJECT_PREFIX}.>", cb=self._receive, ordered_consumer=True, config=config
        )
        EVENT_CLIENTS.inc()
        return self

    async def __aexit__(self, *exc: object) -> None:
        EVENT_CLIENTS.dec()
        with contextlib.suppress(Exception):
            await self.subscription.unsubscribe()

    async def _receive(self, msg: Msg) -> None:
        try:
            event = Event.model_validate_json(msg.data)
        except ValueError:
            return
        event.id = msg.metadata.sequence.stream
        if not self.filters.matches(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self, timeout: float) -> Event | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


def _nats(request_app: Any) -> NatsClient:
    nc: NatsClient | None = request_app.state.nats
    if nc is None or not nc.is_connected:
        from netcron.api.errors import ServiceUnavailable

        raise ServiceUnavailable("the event stream is unavailable (NATS is not connected)")
    return nc


def _notice(kind: str, detail: str) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, 'detail': detail})}\n\n"


def _sse(event: Event) -> str:
    return f"id: {event.id}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n"


FilterDevice = Annotated[uuid.UUID | None, Query(description="Only this device's events.")]
FilterSchedule = Annotated[uuid.UUID | None, Query(description="Only this schedule's events.")]
FilterType = Annotated[
    str | None, Query(alias="type", max_length=64, description="Type prefix, e.g. run.")
]
FilterJob = Annotated[uuid.UUID | None, Query(description="Only this job's events.")]
FilterExclude = Annotated[
    str | None,
    Query(
        alias="exclude_type",
        max_length=64,
        description="Leave out types with this prefix, e.g. run. (a fleet's per-device runs).",
    ),
]


@dataclass(frozen=True)
class EventFilters:
    """What one client asked to see (``Event.matches`` applies it)."""

    device_id: uuid.UUID | None = None
    schedule_id: uuid.UUID | None = None
    type_prefix: str | None = None
    job_id: uuid.UUID | None = None
    exclude_prefix: str | None = None

    def matches(self, event: Event) -> bool:
        return event.matches(
            device_id=self.device_id,
            schedule_id=self.schedule_id,
            type_prefix=self.type_prefix,
            job_id=self.job_id,
            exclude_prefix=self.exclude_prefix,
        )


def event_filters(
    device_id: FilterDevice = None,
    schedule_id: FilterSchedule = None,
    type_prefix: FilterType = None,
    job_id: FilterJob = None,
    exclude_prefix: FilterExclude = None,
) -> EventFilters:
    return EventFilters(device_id, schedule_id, type_prefix, job_id, exclude_prefix)


Filters = Annotated[EventFilters, Depends(event_filters)]


def last_event_id(request: Request) -> int | None:
    """Where an SSE client that reconnects left off (``Last-Event-ID``)."""
    last = request.headers.get("last-event-id")
    return int(last) if last and last.isdigit() else None


@router.get(
    "/events",
    dependencies=[Depends(read_or_write)],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def events_sse(request: Request, filters: Filters) -> StreamingResponse:
    """Server-Sent Events; reconnect with ``Last-Event-ID`` to replay what was missed."""
    since = last_event_id(request)
    nc = _nats(request.app)

    async def stream() -> AsyncIterator[str]:
        async with Feed(nc, since=since, filters=filters) as feed:
            if feed.gap:
                yield _notice("stream.gap", "some events are beyond the replay window")
            while not await request.is_disconnected():
                if feed.overflowed:
                    yield _notice(
                        "stream.overflow", "client too slow; reconnect with Last-Event-ID"
                    )
                    return
                event = await feed.next(HEARTBEAT_SECONDS)
                yield _sse(event) if event else ": heartbeat\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/ws/events")
async def events_ws(
    websocket: WebSocket,
    filters: Filters,
    since: Annotated[int | None, Query(ge=0)] = None,
) -> None:
    """The same events over a WebSocket; ``?since=<event id>`` replays what was missed."""
    presented = websocket.headers.get("x-api-key") or websocket.query_params.get("api_key")
    bearer = websocket.headers.get("authorization", "")
    if not presented and bearer.lower().startswith("bearer "):
        presented = bearer[7:]
    key = find_key(websocket.app.state.api_keys, presented or "")
    if key is None or "read" not in key.scopes:
        await websocket.close(
            code=POLICY_VIOLATION, reason="a valid API key with 'read' is required"
        )
        return
    await websocket.accept()
    nc = websocket.app.state.nats
    if nc is None or not nc.is_connected:
        await websocket.close(code=1011, reason="the event stream is unavailable")
        return
    async with Feed(nc, since=since, filters=filters) as feed:
        try:
            if feed.gap:
                await websocket.send_text(json.dumps({"type": "stream.gap"}))
            while True:
                if feed.overflowed:
                    await websocket.close(code=1013, reason="client too slow; reconnect with since")
                    return
                event = await feed.next(HEARTBEAT_SECONDS)
                if event is None:
                    await websocket.send_text(json.dumps({"type": "heartbeat"}))
                else:
                    await websocket.send_text(event.model_dump_json())
        except WebSocketDisconnect:
            return
