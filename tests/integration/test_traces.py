"""Traces: one run is one trace across the api, the worker and the executor.

The three services run in this process (the api served by uvicorn in a thread, the
worker and the executor as tasks) on the session's embedded PostgreSQL, NATS and
Temporal, so one in-memory exporter sees every span they make.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util._once import Once

from netcron.api.app import create_app
from netcron.config import Settings
from netcron.db.migrate import upgrade
from netcron.executor.service import run_executor
from netcron.observability.tracing import setup_tracing
from netcron.workflows.worker import run_worker
from tests.api.conftest import serving

pytestmark = pytest.mark.integration

KEY = "traces-key-0123456789abcdef"
PASSWORD = "traced-device-pw-0123"


@pytest.fixture(scope="module")
def exporter(secret_key: str) -> Iterator[InMemorySpanExporter]:
    """This process traces into memory for the module, then stops tracing again."""
    exporter = InMemorySpanExporter()
    settings = Settings(_env_file=None, secret_key=secret_key)  # type: ignore[call-arg]
    provider = setup_tracing(settings, "tests", exporter=exporter)
    assert provider is not None
    yield exporter
    provider.shutdown()
    # The API lets a process set its provider once; the tests after this module run without.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture(scope="module")
def migrated(postgres_url: str) -> str:
    upgrade(postgres_url)
    return postgres_url


@pytest.fixture(scope="module")
async def services(
    exporter: InMemorySpanExporter,
    migrated: str,
    nats_url: str,
    temporal_address: str,
    secret_key: str,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=migrated,
        nats_url=nats_url,
        temporal_address=temporal_address,
        temporal_task_queue=f"traces-{uuid.uuid4().hex[:8]}",
        secret_key=secret_key,
        api_keys=KEY,
        emulated_delay_min=0.01,
        emulated_delay_max=0.02,
    )
    stop = asyncio.Event()
    with serving(create_app(settings, reconcile=False)) as base:
        backend = settings.model_copy(update={"api_url": base})
        tasks = [
            asyncio.create_task(run_worker(backend, stop)),
            asyncio.create_task(run_executor(backend, stop)),
        ]
        async with httpx.AsyncClient(
            base_url=base, headers={"X-API-Key": KEY}, timeout=10
        ) as client:
            try:
                yield client
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.gather(*tasks), 20)


async def run_once(api: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    device = (
        await api.post(
            "/devices",
            json={
                "name": f"traced-{uuid.uuid4().hex[:8]}",
                "host": "192.0.2.90",
                "platform": "cisco_ios",
                "password": PASSWORD,
            },
        )
    ).json()
    command = (
        await api.post(f"/devices/{device['id']}/commands", json={"name": "v", "text": "show ver"})
    ).json()
    base = f"/devices/{device['id']}/commands/{command['id']}/schedules"
    schedule = (await api.post(base, json={"cron": "0 0 1 1 *", "is_active": False})).json()
    deadline = time.monotonic() + 30
    while True:  # the workflow may take a moment to answer its first update
        response = await api.post(f"{base}/{schedule['id']}/runs")
        if response.status_code == 202 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    while True:
        result = await api.get(f"/devices/{device['id']}/results/{run_id}")
        if result.status_code == 200 and result.json()["status"] == "succeeded":
            return run_id, device
        assert time.monotonic() < deadline, result.text
        await asyncio.sleep(0.1)


def spans_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.context is not None and span.context.trace_id == trace_id
    ]


async def test_a_run_is_one_trace_across_api_worker_and_executor(
    services: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    run_id, device = await run_once(services)
    [fire] = [
        span
        for span in exporter.get_finished_spans()
        if span.name == "netcron.fire" and (span.attributes or {}).get("netcron.run_id") == run_id
    ]
    assert fire.parent is None  # the run's own trace
    assert fire.context is not None
    record_route = "POST /devices/{device_id}/schedules/{schedule_id}/result"

    async def whole() -> set[str]:
        names = {span.name for span in spans_of(exporter, fire.context.trace_id)}
        return names if {"netcron.record", record_route} <= names else set()

    deadline = time.monotonic() + 10
    while not (names := await whole()):
        assert time.monotonic() < deadline, {
            s.name for s in spans_of(exporter, fire.context.trace_id)
        }
        await asyncio.sleep(0.1)
    # worker (fire, relay, record), executor (execute), Temporal's interceptor (the result
    # signal), api (the record's request)
    assert {"netcron.fire", "netcron.execute", "netcron.relay", "netcron.record"} <= names
    assert any(name.startswith("SignalWorkflow:") for name in names), names
    trace_spans = spans_of(exporter, fire.context.trace_id)
    records = [span for span in trace_spans if span.name == record_route]
    assert records and all(span.kind == SpanKind.SERVER for span in records)
    by_id = {span.context.span_id: span for span in trace_spans if span.context is not None}
    assert all(span.parent is None or span.parent.span_id in by_id for span in trace_spans), (
        "every span's parent is in the same trace"
    )

    # the fire links to the schedule's workflow trace, where Temporal's spans are
    [link] = fire.links
    linked = {span.name for span in spans_of(exporter, link.context.trace_id)}
    assert any(name.startswith("RunActivity:publish_task") for name in linked), linked

    await services.delete(f"/devices/{device['id']}")


async def test_api_requests_are_traced_and_no_span_holds_a_secret(
    services: httpx.AsyncClient, exporter: InMemorySpanExporter, secret_key: str
) -> None:
    await run_once(services)
    spans = exporter.get_finished_spans()
    servers = {span.name for span in spans if span.kind == SpanKind.SERVER}
    assert "POST /devices" in servers
    assert "POST /devices/{device_id}/commands/{command_id}/schedules/{schedule_id}/runs" in servers
    for span in spans:
        text = repr(dict(span.attributes or {})) + span.name
        text += "".join(repr(dict(event.attributes or {})) for event in span.events)
        for secret in (PASSWORD, secret_key, KEY):
            assert secret not in text, span.name
