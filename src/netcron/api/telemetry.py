"""``GET /metrics`` (Prometheus text format), and a duration and a span for every request.

``/metrics`` asks for no API key, as ``/health`` does: Prometheus scrapes without one,
and no metric holds an id, a name or a secret. Requests are labelled by their route
template (``/devices/{device_id}``), never the raw path, and paths that match no route
share one label, so a scan of random URLs cannot grow the series. With tracing on, each
request is a server span, continuing the caller's trace when it sends ``traceparent``
(the worker's run records do).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netcron.observability.metrics import API, HTTP_REQUEST_DURATION
from netcron.observability.tracing import extract, tracer, tracing_on

router = APIRouter(tags=["health"])

UNMATCHED = "unmatched"


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    """The api's metrics in the Prometheus text format."""
    return Response(generate_latest(API), media_type=CONTENT_TYPE_LATEST)


class RequestTelemetry:
    """Times each HTTP request until its response has started (a stream's first bytes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not tracing_on():
            await self._timed(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        method = scope["method"]
        with tracer().start_as_current_span(
            method, context=extract(headers), kind=SpanKind.SERVER
        ) as span:
            status = await self._timed(scope, receive, send)
            route = _template(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.request.method", method)
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)

    async def _timed(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Run the request; its status (500 when it raised before answering)."""
        started = time.perf_counter()
        status: int | None = None

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _observe(scope, message["status"], time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if status is None:
                _observe(scope, 500, time.perf_counter() - started)
        return status or 500


def _template(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", None) or UNMATCHED


def _observe(scope: Scope, status: int, seconds: float) -> None:
    HTTP_REQUEST_DURATION.labels(scope["method"], _template(scope), str(status)).observe(seconds)
