"""Devices: create, read, list, delete; credentials write-only and encrypted at rest."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.config import Settings
from netcron.crypto import CredentialCipher

from .conftest import ADMIN_KEY, DEVICE, replica, serving


async def test_create_device_returns_201_with_location(client: httpx.AsyncClient) -> None:
    response = await client.post("/devices", json=DEVICE)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/devices/{body['id']}"
    assert body["name"] == "edge-1"
    assert body["has_password"] is True
    assert body["has_private_key"] is False


async def test_device_responses_never_contain_credentials(
    client: httpx.AsyncClient, device: dict[str, Any]
) -> None:
    responses = [
        await client.get(f"/devices/{device['id']}"),
        await client.get("/devices"),
    ]
    for response in responses:
        assert DEVICE["password"] not in response.text
        assert "password" not in response.json().get("items", [response.json()])[0]


async def test_credentials_are_encrypted_at_rest(
    app: FastAPI, device: dict[str, Any], secret_key: str
) -> None:
    async with app.state.engine.connect() as connection:
        row = (await connection.execute(text("SELECT * FROM devices"))).mappings().one()
    assert DEVICE["password"] not in str(dict(row))
    decrypted = CredentialCipher(secret_key).decrypt(row["credentials"])
    assert decrypted.password == DEVICE["password"]


async def test_duplicate_device_name_is_409(
    client: httpx.AsyncClient, device: dict[str, Any]
) -> None:
    response = await client.post("/devices", json=DEVICE)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "edge-1" in response.json()["detail"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("host", "not a host!"),
        ("host", "999.1.1.1"),
        ("port", 0),
        ("port", 70000),
        ("platform", "cisco_toaster"),
        ("name", ""),
    ],
)
async def test_invalid_device_field_is_422_naming_it(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    response = await client.post("/devices", json={**DEVICE, field: value})
    assert response.status_code == 422
    body = response.json()
    assert [error["field"] for error in body["errors"]] == [field]
    assert field in body["detail"]


async def test_ipv6_and_dns_hosts_are_accepted(client: httpx.AsyncClient) -> None:
    for index, host in enumerate(["2001:db8::1", "core-sw1.example.net"]):
        response = await client.post("/devices", json={**DEVICE, "name": f"d{index}", "host": host})
        assert response.status_code == 201, response.text
        assert response.json()["host"] == host


async def test_list_devices_pages(client: httpx.AsyncClient) -> None:
    for index in range(3):
        await client.post("/devices", json={**DEVICE, "name": f"dev-{index}"})
    page = (await client.get("/devices", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 3
    assert [item["name"] for item in page["items"]] == ["dev-1", "dev-2"]


async def test_unknown_device_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/devices/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["status"] == 404


async def test_malformed_device_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/devices/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "device_id"


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/devices", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_trailing_slash_is_not_redirected(client: httpx.AsyncClient) -> None:
    response = await client.get("/devices/")
    assert response.status_code == 404


async def test_delete_device_stops_its_schedules_first(
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    device: dict[str, Any],
    schedule: dict[str, Any],
) -> None:
    response = await client.delete(f"/devices/{device['id']}")
    assert response.status_code == 204
    assert [str(sid) for sid in orchestrator.stopped] == [schedule["id"]]
    assert (await client.get(f"/devices/{device['id']}")).status_code == 404


async def test_delete_device_keeps_it_when_temporal_is_down(
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    device: dict[str, Any],
    schedule: dict[str, Any],
) -> None:
    orchestrator.available = False
    response = await client.delete(f"/devices/{device['id']}")
    assert response.status_code == 503
    assert (await client.get(f"/devices/{device['id']}")).status_code == 200


async def test_an_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    huge = {**DEVICE, "labels": {"x": "y" * 10_000_000}}
    response = await client.post("/devices", json=huge)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_too_many_labels_is_422(client: httpx.AsyncClient) -> None:
    labels = {f"k{i}": "v" for i in range(65)}
    response = await client.post("/devices", json={**DEVICE, "labels": labels})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "labels"


def test_a_created_device_is_committed_before_the_response(
    settings: Settings, nats_url: str, migrated_url: str
) -> None:
    """Over real HTTP, with a commit made slow by a deferred trigger: 201 means committed."""
    slow_commit = """
        CREATE OR REPLACE FUNCTION netcron_test_slow() RETURNS trigger AS $$
        BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$ LANGUAGE plpgsql;
        CREATE CONSTRAINT TRIGGER netcron_test_slow AFTER INSERT ON devices
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION netcron_test_slow();
    """
    url = migrated_url.replace("postgresql+asyncpg", "postgresql")

    async def sql(statement: str) -> object:
        connection = await asyncpg.connect(url)
        try:
            return (
                await connection.fetchval(statement)
                if statement.startswith("SELECT")
                else await connection.execute(statement)
            )
        finally:
            await connection.close()

    asyncio.run(sql(slow_commit))
    try:
        with serving(replica(settings, nats_url)) as base:
            response = httpx.post(
                f"{base}/devices",
                json={**DEVICE, "name": "committed"},
                headers={"X-API-Key": ADMIN_KEY},
            )
            found = asyncio.run(sql("SELECT count(*) FROM devices WHERE name = 'committed'"))
    finally:
        asyncio.run(sql("DROP TRIGGER IF EXISTS netcron_test_slow ON devices"))
    assert response.status_code == 201
    assert found == 1


@pytest.mark.parametrize(
    "body",
    [
        {"name": "core\x00sw1", "host": "10.0.0.1"},
        {"name": "core-sw1", "host": "10.0.0.1", "labels": {"site": "a\x00b"}},
    ],
)
async def test_a_nul_the_database_cannot_store_is_422_not_500(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/devices", json={"platform": "cisco_ios", **body})
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["detail"]
