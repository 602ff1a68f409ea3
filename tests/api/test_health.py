"""Liveness, readiness and the OpenAPI docs."""

from __future__ import annotations

import httpx

from netcron.api.orchestrator import InMemoryOrchestrator


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_names_what_is_unreachable(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator
) -> None:
    orchestrator.available = False
    response = await client.get("/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["temporal"] == "unreachable"
    assert checks["nats"] == "unreachable"


async def test_openapi_docs_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert "/devices/{device_id}/results" in schema["paths"]
    device = schema["components"]["schemas"]["DeviceCreate"]["properties"]["password"]
    assert device.get("writeOnly") is True
