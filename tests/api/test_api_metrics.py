"""The api's own metrics: open /metrics, reconciliation repairs, event stream clients."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.api.reconcile import reconcile
from netcron.config import Settings
from netcron.observability.metrics import API

from .conftest import ADMIN_KEY, replica, serving


def _value(name: str, **labels: str) -> float:
    return API.get_sample_value(name, labels) or 0.0


async def test_metrics_need_no_key_and_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/devices")
    response = await client.get("/metrics", headers={"X-API-Key": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert "netcron_http_request_duration_seconds" in names
    assert "process_cpu_seconds" in names
    assert "netcron_fire_lag_seconds" not in names  # the worker's, not the api's


async def test_reconciliation_repairs_are_counted(
    app: FastAPI, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    started = _value("netcron_reconcile_repairs_total", repair="started")
    stopped = _value("netcron_reconcile_repairs_total", repair="stopped")
    schedule_id = uuid.UUID(schedule["id"])
    orphan = uuid.uuid4()
    orchestrator.running.pop(schedule_id)
    orchestrator.running[orphan] = orchestrator.started[0].spec.model_copy(
        update={"schedule_id": orphan}
    )
    await reconcile(app.state.sessionmaker, orchestrator)
    assert _value("netcron_reconcile_repairs_total", repair="started") == started + 1
    assert _value("netcron_reconcile_repairs_total", repair="stopped") == stopped + 1


def test_event_stream_clients_are_counted_while_connected(
    settings: Settings, nats_url: str
) -> None:
    def clients_become(count: float, before: float) -> None:
        deadline = time.monotonic() + 10
        while _value("netcron_event_stream_clients") != before + count:
            assert time.monotonic() < deadline, _value("netcron_event_stream_clients")
            time.sleep(0.05)

    with serving(replica(settings, nats_url)) as base:
        before = _value("netcron_event_stream_clients")
        headers = {"X-API-Key": ADMIN_KEY}
        with httpx.stream("GET", f"{base}/events", headers=headers, timeout=10) as response:
            assert response.status_code == 200
            clients_become(1, before)
        clients_become(0, before)
