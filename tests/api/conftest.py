"""The api against a real PostgreSQL, with Temporal replaced by the in-memory orchestrator."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from netcron.api.app import create_app
from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.config import Settings
from netcron.db.migrate import upgrade
from netcron.devstack import free_port

ADMIN_KEY = "admin-key-0123456789"
READ_KEY = "read-key-0123456789"
WORKER_KEY = "worker-key-0123456789"
CODEC_KEY = "codec-key-0123456789"
UI_ORIGIN = "http://127.0.0.1:8233"


@pytest.fixture(scope="session")
def migrated_url(postgres_url: str) -> str:
    upgrade(postgres_url)
    return postgres_url


@pytest.fixture(scope="session")
def settings(migrated_url: str, secret_key: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=migrated_url,
        secret_key=secret_key,
        nats_url="nats://127.0.0.1:1",
        output_max_bytes=2048,
        api_keys=(
            f"admin:{ADMIN_KEY}:read+write+results,reader:{READ_KEY}:read,"
            f"worker:{WORKER_KEY}:results,operator:{CODEC_KEY}:codec"
        ),
        codec_origins=UI_ORIGIN,
    )


@pytest.fixture
def orchestrator() -> InMemoryOrchestrator:
    return InMemoryOrchestrator()


@pytest.fixture
async def app(settings: Settings, orchestrator: InMemoryOrchestrator) -> AsyncIterator[FastAPI]:
    application = create_app(settings, orchestrator=orchestrator, reconcile=False)
    async with application.router.lifespan_context(application):
        async with application.state.engine.begin() as connection:
            await connection.execute(
                text(
                    "TRUNCATE devices, commands, schedules, jobs, command_results, outputs CASCADE"
                )
            )
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": ADMIN_KEY}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://netcron.test", headers=headers
    ) as http:
        yield http


DEVICE: dict[str, Any] = {
    "name": "edge-1",
    "host": "10.0.0.1",
    "port": 22,
    "platform": "cisco_ios",
    "username": "netops",
    "password": "hunter2-very-secret",
}


@pytest.fixture
async def device(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/devices", json=DEVICE)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def command(client: httpx.AsyncClient, device: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"/devices/{device['id']}/commands",
        json={"name": "intf", "text": "show interfaces {ifname}", "params": {"ifname": "Gi0/1"}},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def schedule(
    client: httpx.AsyncClient, device: dict[str, Any], command: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        f"/devices/{device['id']}/commands/{command['id']}/schedules",
        json={"cron": "*/5 * * * *"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` for real (uvicorn in a thread, lifespan included) until /ready is 200."""
    port = free_port(None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started or httpx.get(f"{base}/ready").status_code != 200:
        assert time.monotonic() < deadline, "the api did not become ready"
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


def replica(settings: Settings, nats_url: str) -> FastAPI:
    """An api replica on the shared PostgreSQL and NATS, Temporal replaced by the double."""
    return create_app(
        settings.model_copy(update={"nats_url": nats_url}),
        orchestrator=InMemoryOrchestrator(),
        reconcile=False,
    )
