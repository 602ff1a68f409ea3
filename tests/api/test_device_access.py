"""How sessions to a device are opened: platforms, host keys, limits, checks, error kinds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from nats.aio.msg import Msg

from netcron.api.app import create_app
from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.config import Settings
from netcron.messages import CHECKS_QUEUE, CHECKS_SUBJECT, CheckRequest, CheckResult
from netcron.platforms import PLATFORMS

from .conftest import ADMIN_KEY, DEVICE, WORKER_KEY
from .test_results import _record

KEY_A = "SHA256:" + "A" * 43
KEY_B = "SHA256:" + "B" * 43


async def test_a_device_has_safe_access_defaults(client: httpx.AsyncClient) -> None:
    body = (await client.post("/devices", json=DEVICE)).json()
    assert {k: body[k] for k in ("host_key_policy", "host_key", "session_limit")} == {
        "host_key_policy": "trust_on_first_use",
        "host_key": None,
        "session_limit": 1,
    }
    assert (body["connect_timeout"], body["last_check"]) == (10.0, None)


async def test_an_unknown_platform_is_refused_with_the_supported_ones(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/devices", json=DEVICE | {"platform": "mikrotik_routeros"})
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "platform"
    assert all(platform in error["message"] for platform in PLATFORMS)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"host_key_policy": "pinned"}, "host_key"),
        ({"host_key": "SHA256:short"}, "host_key"),
        ({"host_key_policy": "sometimes"}, "host_key_policy"),
        ({"session_limit": 0}, "session_limit"),
        ({"connect_timeout": 0.1}, "connect_timeout"),
    ],
)
async def test_bad_access_settings_are_refused_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/devices", json=DEVICE | change)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_the_first_host_key_a_run_reports_is_kept_and_reaches_the_schedules(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    path = f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result"
    worker = {"X-API-Key": WORKER_KEY}
    record = _record(schedule, "succeeded", output="ok", host_key=KEY_A)
    assert (await client.post(path, json=record, headers=worker)).status_code == 200
    later = _record(schedule, "succeeded", datetime(2026, 11, 24, 11, tzinfo=UTC), host_key=KEY_B)
    assert (await client.post(path, json=later, headers=worker)).status_code == 200

    device = (await client.get(f"/devices/{schedule['device_id']}")).json()
    assert device["host_key"] == KEY_A
    spec = orchestrator.running[uuid.UUID(schedule["id"])]
    assert (spec.device.host_key, spec.version) == (KEY_A, 2)


async def test_forgetting_the_host_key_reaches_the_schedules(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator, schedule: dict[str, Any]
) -> None:
    device_path = f"/devices/{schedule['device_id']}"
    response = await client.patch(
        device_path, json={"host_key_policy": "pinned", "host_key": KEY_A}
    )
    assert response.status_code == 200, response.text
    assert orchestrator.running[uuid.UUID(schedule["id"])].device.host_key == KEY_A
    response = await client.patch(device_path, json={"host_key": None})
    assert response.status_code == 422  # pinned needs one
    response = await client.patch(
        device_path, json={"host_key_policy": "trust_on_first_use", "host_key": None}
    )
    assert response.status_code == 200, response.text
    assert orchestrator.running[uuid.UUID(schedule["id"])].device.host_key is None


async def test_results_filter_by_error_kind(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    path = f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result"
    worker = {"X-API-Key": WORKER_KEY}
    failed = _record(schedule, "failed", error="% Invalid input", error_kind="command_rejected")
    assert (await client.post(path, json=failed, headers=worker)).status_code == 200
    other = _record(schedule, "succeeded", datetime(2026, 11, 24, 11, tzinfo=UTC))
    assert (await client.post(path, json=other, headers=worker)).status_code == 200
    results = f"/devices/{schedule['device_id']}/results"
    body = (await client.get(results, params={"error_kind": "command_rejected"})).json()
    assert [item["error_kind"] for item in body["items"]] == ["command_rejected"]
    assert (await client.get(results, params={"error_kind": "nope"})).status_code == 422


@pytest.fixture
async def live_app(settings: Settings, nats_url: str, app: FastAPI) -> AsyncIterator[FastAPI]:
    """The api with a real broker connection (the ``app`` fixture cleaned the tables)."""
    application = create_app(
        settings.model_copy(update={"nats_url": nats_url}),
        orchestrator=InMemoryOrchestrator(),
        reconcile=False,
    )
    async with application.router.lifespan_context(application):
        for _ in range(100):
            if application.state.nats is not None:
                break
            await asyncio.sleep(0.05)
        yield application


async def test_a_check_asks_an_executor_and_keeps_its_answer(
    live_app: FastAPI, nats_url: str
) -> None:
    asked: list[CheckRequest] = []

    async def executor(msg: Msg) -> None:
        request = CheckRequest.model_validate_json(msg.data)
        asked.append(request)
        result = CheckResult(
            device_id=request.device_id,
            checked_at=datetime.now(UTC),
            ok=True,
            reachable=True,
            connect_ms=1.5,
            login="ok",
            host_key=KEY_A,
            prompt="edge-1#",
            platform="cisco_ios",
            software_version="15.9(3)M7",
            executor_id="test",
        )
        await msg.respond(result.model_dump_json().encode())

    nc = await nats.connect(nats_url)
    await nc.subscribe(CHECKS_SUBJECT, queue=CHECKS_QUEUE, cb=executor)
    transport = httpx.ASGITransport(app=live_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://netcron.test", headers={"X-API-Key": ADMIN_KEY}
    ) as client:
        device = (await client.post("/devices", json=DEVICE)).json()
        response = await client.post(f"/devices/{device['id']}/check")
        assert response.status_code == 200, response.text
        assert response.json()["software_version"] == "15.9(3)M7"
        stored = (await client.get(f"/devices/{device['id']}")).json()
    await nc.close()
    assert stored["last_check"]["prompt"] == "edge-1#"
    assert stored["host_key"] == KEY_A  # trust on first use
    assert asked[0].credentials is not None and DEVICE["password"] not in asked[0].credentials


async def test_a_check_without_executors_is_a_503(live_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=live_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://netcron.test", headers={"X-API-Key": ADMIN_KEY}
    ) as client:
        device = (await client.post("/devices", json=DEVICE)).json()
        response = await client.post(f"/devices/{device['id']}/check")
    assert response.status_code == 503
    assert "no executor" in response.json()["detail"]
