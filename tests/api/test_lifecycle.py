"""Changing and deleting devices, commands and schedules; run now; reconciliation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.api.reconcile import reconcile
from netcron.crypto import CredentialCipher

from .conftest import DEVICE


def _schedule_path(schedule: dict[str, Any]) -> str:
    return (
        f"/devices/{schedule['device_id']}/commands/{schedule['command_id']}"
        f"/schedules/{schedule['id']}"
    )


async def test_pausing_a_schedule_sends_a_paused_spec(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    response = await client.patch(_schedule_path(schedule), json={"is_active": False})
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["spec_version"], body["next_fire_times"]) == ("paused", 2, [])
    [spec] = orchestrator.updated
    assert (spec.is_active, spec.version) == (False, 2)
    resumed = await client.patch(_schedule_path(schedule), json={"is_active": True})
    assert resumed.json()["state"] == "active"
    assert orchestrator.updated[-1].is_active is True


async def test_a_cron_change_reaches_the_workflow(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    response = await client.patch(
        _schedule_path(schedule), json={"cron": "0 3 * * *", "timezone": "Asia/Tokyo"}
    )
    assert response.json()["cron"] == "0 3 * * *"
    spec = orchestrator.updated[-1]
    assert (spec.cron, spec.timezone) == ("0 3 * * *", "Asia/Tokyo")


async def test_null_and_invalid_changes_are_422(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    for body, field in (({"cron": None}, "cron"), ({"cron": "bad"}, "cron"), ({"x": 1}, "x")):
        response = await client.patch(_schedule_path(schedule), json=body)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field


async def test_a_change_while_temporal_is_down_is_kept_for_reconciliation(
    app: FastAPI,
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    schedule: dict[str, Any],
) -> None:
    orchestrator.available = False
    response = await client.patch(_schedule_path(schedule), json={"ttl_seconds": 42})
    assert response.status_code == 200
    orchestrator.available = True
    assert orchestrator.running[uuid.UUID(schedule["id"])].ttl_seconds == 300
    repairs = await reconcile(app.state.sessionmaker, orchestrator)
    assert repairs.updated == [uuid.UUID(schedule["id"])]
    assert orchestrator.running[uuid.UUID(schedule["id"])].ttl_seconds == 42


async def test_reconciliation_starts_missing_and_stops_orphaned_workflows(
    app: FastAPI, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    schedule_id = uuid.UUID(schedule["id"])
    orphan = uuid.uuid4()
    orchestrator.running.pop(schedule_id)
    orchestrator.running[orphan] = orchestrator.started[0].spec.model_copy(
        update={"schedule_id": orphan}
    )
    repairs = await reconcile(app.state.sessionmaker, orchestrator)
    assert (repairs.started, repairs.stopped) == ([schedule_id], [orphan])
    assert set(orchestrator.running) == {schedule_id}
    assert (await reconcile(app.state.sessionmaker, orchestrator)).count == 0


async def test_editing_a_command_rerenders_its_schedules(
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    command: dict[str, Any],
    schedule: dict[str, Any],
) -> None:
    path = f"/devices/{command['device_id']}/commands/{command['id']}"
    response = await client.patch(path, json={"text": "show interfaces {ifname} counters"})
    assert response.status_code == 200
    assert orchestrator.updated[-1].command == "show interfaces Gi0/1 counters"


async def test_a_command_edit_that_breaks_a_schedule_is_422(
    client: httpx.AsyncClient, command: dict[str, Any], schedule: dict[str, Any]
) -> None:
    path = f"/devices/{command['device_id']}/commands/{command['id']}"
    response = await client.patch(path, json={"text": "show bgp vrf {vrf}"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "params.vrf"
    assert (await client.get(path)).json()["text"] == "show interfaces {ifname}"


async def test_device_credentials_can_be_replaced_and_removed(
    app: FastAPI,
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    secret_key: str,
    schedule: dict[str, Any],
) -> None:
    path = f"/devices/{schedule['device_id']}"
    response = await client.patch(
        path, json={"host": "10.0.0.99", "password": None, "enable_secret": "en-new"}
    )
    body = response.json()
    assert (body["host"], body["has_password"], body["has_enable_secret"]) == (
        "10.0.0.99",
        False,
        True,
    )
    assert "en-new" not in response.text
    spec = orchestrator.updated[-1]
    assert spec.device.host == "10.0.0.99"
    decrypted = CredentialCipher(secret_key).decrypt(spec.device.credentials)
    assert (decrypted.password, decrypted.enable_secret) == (None, "en-new")


async def test_renaming_a_device_onto_another_is_409(
    client: httpx.AsyncClient, device: dict[str, Any]
) -> None:
    await client.post("/devices", json={**DEVICE, "name": "taken"})
    response = await client.patch(f"/devices/{device['id']}", json={"name": "taken"})
    assert response.status_code == 409


async def test_deleting_a_schedule_stops_its_workflow_first(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    assert (await client.delete(_schedule_path(schedule))).status_code == 204
    assert [str(s) for s in orchestrator.stopped] == [schedule["id"]]
    assert (await client.get(_schedule_path(schedule))).status_code == 404


async def test_deleting_a_command_stops_its_schedules(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    path = f"/devices/{schedule['device_id']}/commands/{schedule['command_id']}"
    assert (await client.delete(path)).status_code == 204
    assert [str(s) for s in orchestrator.stopped] == [schedule["id"]]
    assert (await client.get(path)).status_code == 404


async def test_run_now_answers_202_with_the_run_id(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    response = await client.post(f"{_schedule_path(schedule)}/runs")
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert response.headers["location"] == f"/devices/{schedule['device_id']}/results/{run_id}"
    assert [str(s) for s in orchestrator.triggered] == [schedule["id"]]


async def test_run_now_without_temporal_is_503(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    orchestrator.available = False
    assert (await client.post(f"{_schedule_path(schedule)}/runs")).status_code == 503


async def test_schedule_shows_its_last_run(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    record = {
        "run_id": f"{schedule['id']}:1795400000",
        "command_id": schedule["command_id"],
        "status": "failed",
        "scheduled_at": "2026-11-23T10:53:20Z",
    }
    await client.post(
        f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result", json=record
    )
    last = (await client.get(_schedule_path(schedule))).json()["last_run"]
    assert (last["run_id"], last["status"]) == (record["run_id"], "failed")
    one = await client.get(f"/devices/{schedule['device_id']}/results/{record['run_id']}")
    assert one.status_code == 200
    assert one.json()["status"] == "failed"
    missing = await client.get(f"/devices/{schedule['device_id']}/results/nope:1")
    assert missing.status_code == 404
