"""Commands belong to one device; a command of another device is not found."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import DEVICE


async def test_create_command_returns_201_with_location(
    client: httpx.AsyncClient, device: dict[str, Any]
) -> None:
    response = await client.post(
        f"/devices/{device['id']}/commands", json={"name": "ver", "text": "show version"}
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/devices/{device['id']}/commands/{body['id']}"
    assert body["timeout"] == 30.0


async def test_list_and_read_commands(
    client: httpx.AsyncClient, device: dict[str, Any], command: dict[str, Any]
) -> None:
    listed = (await client.get(f"/devices/{device['id']}/commands")).json()
    assert [item["id"] for item in listed["items"]] == [command["id"]]
    read = await client.get(f"/devices/{device['id']}/commands/{command['id']}")
    assert read.json()["text"] == "show interfaces {ifname}"


async def test_command_of_another_device_is_404(
    client: httpx.AsyncClient, command: dict[str, Any]
) -> None:
    other = (await client.post("/devices", json={**DEVICE, "name": "other"})).json()
    response = await client.get(f"/devices/{other['id']}/commands/{command['id']}")
    assert response.status_code == 404


async def test_command_for_unknown_device_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/devices/00000000-0000-0000-0000-000000000000/commands",
        json={"name": "ver", "text": "show version"},
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "text": ""}, "text"),
        ({"name": "x", "text": "show ver\nreload"}, "text"),
        ({"name": "x", "text": "x" * 5000}, "text"),
        ({"name": "x", "text": "show", "timeout": 0}, "timeout"),
        ({"name": "x", "text": "show", "params": {"a": "b\nreload"}}, "params"),
        ({"name": "x", "text": "show", "params": {"bad-name": "v"}}, "params.bad-name.[key]"),
    ],
)
async def test_invalid_command_is_422_naming_the_field(
    client: httpx.AsyncClient, device: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = await client.post(f"/devices/{device['id']}/commands", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
