"""Live events: across replicas, replay after reconnect, slow clients, authentication."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from netcron.api.events import EventFilters, Feed
from netcron.config import Settings
from netcron.events import Event, parse_sse

from .conftest import ADMIN_KEY, DEVICE, replica, serving

AUTH = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def replicas(settings: Settings, nats_url: str) -> Iterator[tuple[str, str]]:
    with serving(replica(settings, nats_url)) as a, serving(replica(settings, nats_url)) as b:
        yield a, b


class SseReader:
    """Reads an SSE stream in a thread, collecting events until told to stop."""

    def __init__(self, base: str, params: dict[str, str], last_event_id: int | None = None):
        self.events: list[Event] = []
        self.notices: list[str] = []
        headers = AUTH | ({"Last-Event-ID": str(last_event_id)} if last_event_id else {})
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(base, params, headers), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _read(self, base: str, params: dict[str, str], headers: dict[str, str]) -> None:
        try:
            self._follow(base, params, headers)
        except httpx.HTTPError:
            return  # the server stopped at the end of the module

    def _follow(self, base: str, params: dict[str, str], headers: dict[str, str]) -> None:
        with httpx.stream("GET", f"{base}/events", params=params, headers=headers) as response:
            self.ready.set()
            block: list[str] = []
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line:
                    block.append(line)
                    continue
                if any(item.startswith("event: stream.") for item in block):
                    self.notices.append(block[0])
                else:
                    event = parse_sse(block)
                    if event is not None:
                        self.events.append(event)
                block = []

    def wait_for(self, count: int, timeout: float = 10) -> list[Event]:
        for _ in range(int(timeout / 0.05)):
            if len(self.events) >= count:
                return self.events
            threading.Event().wait(0.05)
        pytest.fail(f"expected {count} events, got {[e.type for e in self.events]}")


def _device(base: str, name: str) -> dict[str, Any]:
    response = httpx.post(f"{base}/devices", json={**DEVICE, "name": name}, headers=AUTH)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _record_run(base: str, name: str) -> str:
    device = _device(base, name)
    command = httpx.post(
        f"{base}/devices/{device['id']}/commands",
        json={"name": "v", "text": "show version"},
        headers=AUTH,
    ).json()
    schedule = httpx.post(
        f"{base}/devices/{device['id']}/commands/{command['id']}/schedules",
        json={"cron": "* * * * *"},
        headers=AUTH,
    ).json()
    run_id = f"{schedule['id']}:1795400000"
    response = httpx.post(
        f"{base}/devices/{device['id']}/schedules/{schedule['id']}/result",
        json={
            "run_id": run_id,
            "command_id": command["id"],
            "status": "succeeded",
            "scheduled_at": "2026-11-23T10:53:20Z",
            "output": "line 1\nline 2",
        },
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    return run_id


def test_a_client_on_one_replica_sees_a_run_recorded_through_another(
    replicas: tuple[str, str],
) -> None:
    a, b = replicas
    reader = SseReader(a, {"type": "run."})
    run_id = _record_run(b, "ev-cross")
    [event] = reader.wait_for(1)
    assert (event.type, event.run_id) == ("run.succeeded", run_id)
    assert event.data["output"] == "line 1\nline 2"
    assert "password" not in event.model_dump_json()
    reader.stop.set()


def test_reconnecting_with_last_event_id_replays_exactly_the_missed_events(
    replicas: tuple[str, str],
) -> None:
    a, b = replicas
    first = SseReader(a, {"type": "device.created"})
    _device(b, "ev-r0")
    [seen] = first.wait_for(1)
    first.stop.set()
    for index in range(1, 4):
        _device(b, f"ev-r{index}")
    second = SseReader(a, {"type": "device.created"}, last_event_id=seen.id)
    replayed = second.wait_for(3)
    _device(b, "ev-r4")
    events = second.wait_for(4)
    second.stop.set()
    assert [e.data["name"] for e in events] == ["ev-r1", "ev-r2", "ev-r3", "ev-r4"]
    ids = [e.id for e in replayed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(event_id and seen.id and event_id > seen.id for event_id in ids)


async def test_a_client_that_stops_reading_is_cut_off_while_others_keep_receiving(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netcron.api import events as events_module

    monkeypatch.setattr(events_module, "CLIENT_BUFFER", 5)
    nc = await nats.connect(nats_url)
    await events_module.ensure_events_stream(nc)
    js = nc.jetstream()
    async with (
        Feed(nc, since=None, filters=EventFilters(type_prefix="test.")) as slow,
        Feed(nc, since=None, filters=EventFilters(type_prefix="test.")) as fast,
    ):
        received = []
        for index in range(20):
            await js.publish(
                "netcron.events.test.ping",
                Event(type="test.ping", data={"i": index}).model_dump_json().encode(),
            )
            event = await fast.next(5)
            assert event is not None
            received.append(event.data["i"])
        await asyncio.sleep(0.2)
        assert received == list(range(20))
        assert slow.overflowed
    await nc.close()


def test_unauthenticated_clients_are_refused(settings: Settings, nats_url: str) -> None:
    app = replica(settings, nats_url)
    with TestClient(app) as client:
        assert client.get("/events").status_code == 401
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/events"):
            pass
        assert closed.value.code == 1008
        with (
            pytest.raises(WebSocketDisconnect) as wrong,
            client.websocket_connect("/ws/events?api_key=nope"),
        ):
            pass
        assert wrong.value.code == 1008


def test_websocket_carries_the_same_events(settings: Settings, nats_url: str) -> None:
    app = replica(settings, nats_url)
    with TestClient(app) as client:
        for _ in range(100):
            if client.get("/ready").status_code == 200:
                break
            threading.Event().wait(0.05)
        with client.websocket_connect(f"/ws/events?api_key={ADMIN_KEY}&type=device.") as ws:
            threading.Event().wait(0.3)
            created = client.post("/devices", json={**DEVICE, "name": "ev-ws"}, headers=AUTH)
            assert created.status_code == 201
            message = ws.receive_json()
            while message["type"] == "heartbeat":
                message = ws.receive_json()
            assert message["type"] == "device.created"
            assert message["device_id"] == created.json()["id"]
            assert isinstance(message["id"], int)
