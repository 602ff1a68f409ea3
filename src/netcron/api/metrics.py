"""``GET /metrics`` (Prometheus text format) and the timing of every api request.

``/metrics`` asks for no API key, as ``/health`` does: Prometheus scrapes without one,
and no metric holds an id, a name or a secret. Requests are labelled by their route
template (``/devices/{device_id}``), never the raw path, and paths that match no route
share one label, so a scan of random URLs cannot grow the series.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netcron.observability.metrics import API, HTTP_REQUEST_DURATION

router = APIRouter(tags=["health"])

UNMATCHED = "unmatched"


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    """The api's metrics in the Prometheus text format."""
    return Response(generate_latest(API), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Times each HTTP request until its response has started (a stream's first bytes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def timed_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                _observe(scope, message["status"], time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            if not answered:
                _observe(scope, 500, time.perf_counter() - started)
            raise


def _observe(scope: Scope, status: int, seconds: float) -> None:
    route = scope.get("route")
    template = getattr(route, "path", None) or UNMATCHED
    HTTP_REQUEST_DURATION.labels(scope["method"], template, str(status)).observe(seconds)
