"""Tracing helpers: off by default, trace ids on log lines, the OTLP traces URL."""

from __future__ import annotations

import io
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from netcron.config import Settings
from netcron.logging import setup_logging
from netcron.observability.tracing import (
    inject,
    setup_tracing,
    temporal_interceptors,
    traces_url,
    tracing_on,
)


def test_tracing_is_off_without_an_endpoint() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.otlp_endpoint == ""
    assert setup_tracing(settings, "api") is None
    assert not tracing_on()
    assert temporal_interceptors() == []
    assert inject({"Nats-Msg-Id": "x"}) == {"Nats-Msg-Id": "x"}


def test_the_standard_otlp_variable_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert Settings(_env_file=None).otlp_endpoint == "http://collector:4318"  # type: ignore[call-arg]


def test_traces_go_to_the_otlp_http_traces_path() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


def test_log_lines_inside_a_span_carry_its_trace_id() -> None:
    setup_logging("INFO", "plain", service="worker")
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("netcron.test")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("run") as span:
        log.info("inside")
    log.info("outside")
    inside, outside = stream.getvalue().splitlines()
    assert f"trace_id={span.get_span_context().trace_id:032x}" in inside
    assert "trace_id" not in outside
