"""OpenTelemetry traces, off unless an OTLP endpoint is configured.

One trace per run. The worker's publish starts it (a root span, linked to the span
Temporal's interceptor made for the publish, so the schedule's workflow trace and the
run's trace point at each other); the task carries its context to the executor in the
NATS message's ``traceparent`` header, the result carries the executor's back to the
relay, and the relay's reaches the record: the run's final record is a local activity
of the workflow, which the relay cannot reach through Temporal, so the worker keeps the
relay's context for the run (bounded, in memory) and the record picks it up there; its
HTTP request to the api carries it on, and the api's request span joins the trace.

When tracing is off the OpenTelemetry API is a no-op: spans cost a function call,
nothing is injected into any header, and Temporal gets no interceptor.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Link, Span, SpanKind

from netcron import __version__
from netcron.config import Settings

log = logging.getLogger(__name__)

TRACER = "netcron"
#: Runs whose relay context the worker keeps for their record.
REMEMBERED_RUNS = 10_000


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP: the base endpoint (as OTEL_EXPORTER_OTLP_ENDPOINT) plus ``/v1/traces``."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def setup_tracing(
    settings: Settings, service: str, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Install a tracer provider for this process; None (tracing off) without an endpoint.

    ``exporter`` replaces OTLP (tests pass an in-memory one; its spans export at once).
    """
    if exporter is None and not settings.otlp_endpoint:
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": f"netcron-{service}", "service.version": __version__}
        )
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint)))
        )
        log.info("traces go to %s", traces_url(settings.otlp_endpoint))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracing_on() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def flush_traces(timeout_ms: int = 2000) -> None:
    """Export what is buffered (a stopping service leaves without running atexit hooks)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(timeout_ms)


def temporal_interceptors() -> list[Any]:
    """Temporal's OpenTelemetry interceptor, when tracing is on."""
    if not tracing_on():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER, __version__)


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current trace context (``traceparent``) to ``headers``; nothing when off."""
    propagate.inject(headers)
    return headers


def extract(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


@contextlib.contextmanager
def run_trace(name: str, **attributes: Any) -> Iterator[Span]:
    """A run's root span: a new trace, linked to the span current when it starts."""
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if current.is_valid else []
    with tracer().start_as_current_span(
        name, context=Context(), links=links, kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span


class RunContexts:
    """The trace context of each run the relay handed on, for the run's record (bounded)."""

    def __init__(self, size: int = REMEMBERED_RUNS) -> None:
        self.size = size
        self._contexts: OrderedDict[str, Context] = OrderedDict()

    def remember(self, run_id: str) -> None:
        if not tracing_on():
            return
        self._contexts[run_id] = trace.set_span_in_context(trace.get_current_span())
        self._contexts.move_to_end(run_id)
        while len(self._contexts) > self.size:
            self._contexts.popitem(last=False)

    def take(self, run_id: str) -> Context | None:
        return self._contexts.pop(run_id, None)
