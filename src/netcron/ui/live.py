"""``GET /ui/events``: the api's event stream for the signed-in browser (session cookie).

EventSource cannot send an API key header, so the console serves the same ``Feed`` under
its own path, authenticated by the session cookie. Pages only learn *that* something
changed and re-read their live regions; the events carry no credentials.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from netcron.api.events import HEARTBEAT_SECONDS, Feed, Filters, _nats, last_event_id
from netcron.ui.routing import ConsoleRoute
from netcron.ui.session import ConsoleUser, signed_in

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/events")
async def events(
    request: Request,
    user: Annotated[ConsoleUser, Depends(signed_in)],
    filters: Filters,
) -> StreamingResponse:
    since = last_event_id(request)
    nc = _nats(request.app)

    async def stream() -> AsyncIterator[str]:
        async with Feed(nc, since=since, filters=filters) as feed:
            # Reconnect after 2 s when the stream ends (an api restart, a proxy timeout).
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                if feed.overflowed:
                    return
                event = await feed.next(HEARTBEAT_SECONDS)
                # Unnamed messages: the page's one onmessage handler hears every type.
                yield f"id: {event.id}\ndata: {event.model_dump_json()}\n\n" if event else ": -\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
