"""API keys and scopes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from netcron.apikeys import find_key, parse_api_keys

from .conftest import DEVICE, READ_KEY, WORKER_KEY


async def test_a_request_without_a_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/devices", headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/devices", headers={"X-API-Key": "guess"})
    assert response.status_code == 401


async def test_a_bearer_token_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/devices", headers={"X-API-Key": "", "Authorization": f"Bearer {READ_KEY}"}
    )
    assert response.status_code == 200


async def test_a_read_key_cannot_write(client: httpx.AsyncClient) -> None:
    read_only = {"X-API-Key": READ_KEY}
    assert (await client.get("/devices", headers=read_only)).status_code == 200
    response = await client.post("/devices", json=DEVICE, headers=read_only)
    assert response.status_code == 403
    assert "write" in response.json()["detail"]


async def test_only_the_results_scope_records_runs(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    path = f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result"
    record = {
        "run_id": f"{schedule['id']}:1",
        "command_id": schedule["command_id"],
        "status": "queued",
        "scheduled_at": "2026-01-01T00:00:00Z",
    }
    denied = await client.post(path, json=record, headers={"X-API-Key": READ_KEY})
    assert denied.status_code == 403
    allowed = await client.post(path, json=record, headers={"X-API-Key": WORKER_KEY})
    assert allowed.status_code == 200
    worker_reading = await client.get("/devices", headers={"X-API-Key": WORKER_KEY})
    assert worker_reading.status_code == 403


async def test_health_ready_and_docs_need_no_key(client: httpx.AsyncClient) -> None:
    anonymous = {"X-API-Key": ""}
    assert (await client.get("/health", headers=anonymous)).status_code == 200
    assert (await client.get("/ready", headers=anonymous)).status_code in (200, 503)
    assert (await client.get("/docs", headers=anonymous)).status_code == 200
    schema = (await client.get("/openapi.json", headers=anonymous)).json()
    assert {"APIKeyHeader", "HTTPBearer"} <= set(schema["components"]["securitySchemes"])


def test_api_keys_parse_names_and_scopes() -> None:
    keys = parse_api_keys("plain, ops:k2:read+write ,")
    assert [(k.name, k.key, sorted(k.scopes)) for k in keys] == [
        ("key1", "plain", ["codec", "read", "results", "write"]),
        ("ops", "k2", ["read", "write"]),
    ]
    assert find_key(keys, "k2") is keys[1]
    assert find_key(keys, "k3") is None
    assert "k2" not in repr(keys[1])


@pytest.mark.parametrize("value", ["a:b", "a::read", "a:b:admin"])
def test_malformed_api_keys_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="NETCRON_API_KEYS"):
        parse_api_keys(value)
