"""Schedules: validation, the workflow started with the schedule, 503 without Temporal."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import httpx
import pytest

from netcron.api.orchestrator import InMemoryOrchestrator


def _path(device: dict[str, Any], command: dict[str, Any]) -> str:
    return f"/devices/{device['id']}/commands/{command['id']}/schedules"


async def test_create_schedule_starts_its_workflow(
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    device: dict[str, Any],
    command: dict[str, Any],
) -> None:
    response = await client.post(
        _path(device, command),
        json={"cron": "0 */6 * * *", "timezone": "Europe/Berlin", "params": {"ifname": "Gi0/9"}},
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"{_path(device, command)}/{body['id']}"
    assert body["workflow_id"] == f"schedule-{body['id']}"
    [started] = orchestrator.started
    assert str(started.spec.schedule_id) == body["id"]
    assert started.spec.command == "show interfaces Gi0/9"
    assert started.spec.device.host == "10.0.0.1"
    assert started.spec.device.credentials and "hunter2" not in started.spec.device.credentials


async def test_schedule_shows_its_next_fire_times(
    client: httpx.AsyncClient, device: dict[str, Any], command: dict[str, Any]
) -> None:
    response = await client.post(_path(device, command), json={"cron": "*/10 * * * * *"})
    times = [datetime.fromisoformat(t) for t in response.json()["next_fire_times"]]
    assert len(times) == 5
    assert all(t.second % 10 == 0 for t in times)
    assert all((b - a).total_seconds() == 10 for a, b in itertools.pairwise(times))


async def test_schedule_list_and_read(
    client: httpx.AsyncClient,
    device: dict[str, Any],
    command: dict[str, Any],
    schedule: dict[str, Any],
) -> None:
    listed = (await client.get(_path(device, command))).json()
    assert [item["id"] for item in listed["items"]] == [schedule["id"]]
    read = await client.get(f"{_path(device, command)}/{schedule['id']}")
    assert read.status_code == 200
    assert read.json()["cron"] == "*/5 * * * *"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "@reboot"}, "cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"cron": "* * * * *", "ttl_seconds": 0}, "ttl_seconds"),
        ({"cron": "* * * * *", "overlap": "queue"}, "overlap"),
    ],
)
async def test_invalid_schedule_is_422_naming_the_field(
    client: httpx.AsyncClient,
    device: dict[str, Any],
    command: dict[str, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(_path(device, command), json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_missing_command_parameter_is_422_naming_it(
    client: httpx.AsyncClient, device: dict[str, Any]
) -> None:
    command = (
        await client.post(
            f"/devices/{device['id']}/commands", json={"name": "bgp", "text": "show bgp {vrf}"}
        )
    ).json()
    response = await client.post(_path(device, command), json={"cron": "* * * * *"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "params.vrf"


async def test_temporal_down_is_503_and_leaves_no_schedule(
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    device: dict[str, Any],
    command: dict[str, Any],
) -> None:
    orchestrator.available = False
    response = await client.post(_path(device, command), json={"cron": "* * * * *"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(_path(device, command))).json()["total"] == 0


async def test_unknown_schedule_is_404(
    client: httpx.AsyncClient, device: dict[str, Any], command: dict[str, Any]
) -> None:
    response = await client.get(f"{_path(device, command)}/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
