"""Webhooks: the resource, and delivery from JetStream to a receiver this test runs.

Delivery runs against a real api replica (PostgreSQL and NATS real, Temporal the
in-memory double); the events are ``device.created``, which need no Temporal. Each test
labels its devices with a value of its own and selects on it, so events from other
tests never reach its receiver.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from netcron.config import Settings
from netcron.events import Event
from netcron.webhooks.signing import SIGNATURE_HEADER, verify
from netcron.webhooks.streams import subject_for
from tests.api.conftest import ADMIN_KEY, DEVICE, READ_KEY, replica, serving
from tests.webhook_receiver import Receiver

SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture(autouse=True)
async def _no_webhooks(app: FastAPI) -> None:
    async with app.state.engine.begin() as connection:
        await connection.execute(text("TRUNCATE webhooks CASCADE"))


def hook(**fields: Any) -> dict[str, Any]:
    return {
        "name": "ops",
        "url": "http://127.0.0.1:9/hook",
        "event_types": ["run.failed", "device.created"],
        **fields,
    }


# --- the resource ------------------------------------------------------------------------


async def test_a_webhook_is_created_read_changed_and_deleted(client: httpx.AsyncClient) -> None:
    created = await client.post("/webhooks", json=hook(secret=SECRET, selector={"site": "ams"}))
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/webhooks/{body['id']}"
    assert body["secret"] is None  # given, so not shown
    assert body["event_types"] == ["device.created", "run.failed"]
    assert body["selector"] == {"site": "ams"}
    read = (await client.get(f"/webhooks/{body['id']}")).json()
    assert "secret" not in read
    changed = await client.patch(
        f"/webhooks/{body['id']}", json={"is_active": False, "event_types": ["run.timed_out"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["is_active"] is False
    listed = (await client.get("/webhooks")).json()
    assert [item["id"] for item in listed["items"]] == [body["id"]]
    assert (await client.delete(f"/webhooks/{body['id']}")).status_code == 204
    assert (await client.get(f"/webhooks/{body['id']}")).status_code == 404


async def test_a_generated_secret_is_shown_once(client: httpx.AsyncClient) -> None:
    created = (await client.post("/webhooks", json=hook())).json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 32
    again = await client.get(f"/webhooks/{created['id']}")
    assert created["secret"] not in again.text


async def test_the_secret_is_encrypted_at_rest(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = (await client.post("/webhooks", json=hook(secret=SECRET))).json()
    async with app.state.engine.connect() as connection:
        stored = await connection.scalar(
            text("SELECT secret FROM webhooks WHERE id = :id"), {"id": created["id"]}
        )
    assert SECRET not in stored
    assert app.state.cipher.decrypt_bytes(stored.encode()).decode() == SECRET


async def test_fleet_and_history_event_types_are_accepted(client: httpx.AsyncClient) -> None:
    types = ["fire.finished", "fire.started", "run.changed", "device.check_failed"]
    response = await client.post("/webhooks", json=hook(event_types=types))
    assert response.status_code == 201, response.text
    assert response.json()["event_types"] == sorted(types)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "ftp://example.net/hook"),
        ("url", "http://user:pw@example.net/hook"),
        ("url", "not a url"),
        ("url", "http://[::1/hook"),
        ("event_types", ["run.exploded"]),
        ("event_types", []),
        ("secret", "short"),
        ("selector", {"": "x"}),
        ("name", ""),
    ],
)
async def test_invalid_webhook_field_is_422_naming_it(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    response = await client.post("/webhooks", json=hook(**{field: value}))
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


async def test_patch_refuses_null_and_bad_urls(client: httpx.AsyncClient) -> None:
    created = (await client.post("/webhooks", json=hook())).json()
    for body in ({"url": None}, {"url": "gopher://x/"}, {"secret": None}):
        response = await client.patch(f"/webhooks/{created['id']}", json=body)
        assert response.status_code == 422, (body, response.text)


async def test_a_duplicate_name_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/webhooks", json=hook())).status_code == 201
    assert (await client.post("/webhooks", json=hook())).status_code == 409


async def test_a_reader_may_not_create_webhooks(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhooks", json=hook(), headers={"X-API-Key": READ_KEY})
    assert response.status_code == 403


async def test_allowed_networks_restrict_receivers(settings: Settings) -> None:
    from netcron.api.app import create_app
    from netcron.api.orchestrator import InMemoryOrchestrator

    restricted = create_app(
        settings.model_copy(update={"webhook_allowed_networks": "10.0.0.0/8, 192.0.2.0/24"}),
        orchestrator=InMemoryOrchestrator(),
        reconcile=False,
    )
    async with restricted.router.lifespan_context(restricted):
        transport = httpx.ASGITransport(app=restricted)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://netcron.test", headers={"X-API-Key": ADMIN_KEY}
        ) as client:
            inside = await client.post("/webhooks", json=hook(url="http://10.1.2.3/hook"))
            assert inside.status_code == 201, inside.text
            outside = await client.post(
                "/webhooks", json=hook(name="other", url="http://127.0.0.1:8080/hook")
            )
            assert outside.status_code == 422
            assert "url" in outside.json()["detail"]


async def test_a_test_event_needs_the_broker(client: httpx.AsyncClient) -> None:
    created = (await client.post("/webhooks", json=hook())).json()
    response = await client.post(f"/webhooks/{created['id']}/test")
    assert response.status_code == 503


async def test_deliveries_of_an_unknown_webhook_are_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/webhooks/{uuid.uuid4()}/deliveries")
    assert response.status_code == 404


# --- delivery ----------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
async def live(settings: Settings, nats_url: str, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A served api replica with NATS, retrying failed deliveries after 0.1 s to 0.4 s."""
    fast = settings.model_copy(update={"webhook_retry_min": 0.1, "webhook_retry_max": 0.4})
    with serving(replica(fast, nats_url)) as base:
        async with httpx.AsyncClient(
            base_url=base, headers={"X-API-Key": ADMIN_KEY}, timeout=10
        ) as client:
            yield client


async def eventually(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not met in time"
        await asyncio.sleep(0.1)


async def create_devices(client: httpx.AsyncClient, label: str, names: list[str]) -> None:
    for name in names:
        response = await client.post(
            "/devices", json={**DEVICE, "name": name, "labels": {"suite": label}}
        )
        assert response.status_code == 201, response.text


async def subscribe(client: httpx.AsyncClient, receiver: Receiver, label: str) -> str:
    response = await client.post(
        "/webhooks",
        json=hook(url=receiver.url, secret=SECRET, selector={"suite": label}),
    )
    assert response.status_code == 201, response.text
    webhook_id: str = response.json()["id"]
    return webhook_id


async def test_deliveries_are_signed_in_order_and_retried_after_500s(
    live: httpx.AsyncClient, receiver: Receiver
) -> None:
    label = uuid.uuid4().hex
    webhook_id = await subscribe(live, receiver, label)
    receiver.failures = 2
    names = [f"wh-order-{label[:8]}-{i}" for i in range(5)]
    await create_devices(live, label, names)

    async def all_in() -> bool:
        return len(receiver.events()) >= len(names)

    await eventually(all_in)
    events = receiver.events()
    assert [event["data"]["name"] for event in events] == names
    assert {event["type"] for event in events} == {"device.created"}
    assert receiver.refused == 2
    for headers, body in receiver.received:
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        assert not verify("another-secret-0123456789", body, headers[SIGNATURE_HEADER])
        assert SECRET not in body.decode() and DEVICE["password"] not in body.decode()
    ids = [event["id"] for event in events]
    assert ids == sorted(ids)

    log = (await live.get(f"/webhooks/{webhook_id}/deliveries", params={"limit": 100})).json()
    outcomes = [(item["attempt"], item["outcome"]) for item in reversed(log["items"])]
    assert outcomes[:3] == [(1, "failed"), (2, "failed"), (3, "delivered")]
    assert [item["status_code"] for item in reversed(log["items"])][:3] == [500, 500, 204]
    assert all(outcome == "delivered" for _, outcome in outcomes[3:])


async def test_deliveries_resume_in_order_after_a_receiver_outage(
    live: httpx.AsyncClient, receiver: Receiver
) -> None:
    label = uuid.uuid4().hex
    webhook_id = await subscribe(live, receiver, label)
    receiver.stop()
    names = [f"wh-outage-{label[:8]}-{i}" for i in range(3)]
    await create_devices(live, label, names)

    async def failed_twice() -> bool:
        log = (await live.get(f"/webhooks/{webhook_id}/deliveries")).json()
        return sum(item["outcome"] == "failed" for item in log["items"]) >= 2

    await eventually(failed_twice)
    receiver.start()

    async def all_in() -> bool:
        return len(receiver.events()) >= len(names)

    await eventually(all_in)
    assert [event["data"]["name"] for event in receiver.events()] == names
    log = (await live.get(f"/webhooks/{webhook_id}/deliveries", params={"limit": 100})).json()
    first = [
        item
        for item in log["items"]
        if item["delivery"] == min(i["delivery"] for i in log["items"])
    ]
    assert {item["outcome"] for item in first} == {"failed", "delivered"}
    assert all(
        item["error"] and "Connect" in item["error"]
        for item in first
        if item["outcome"] == "failed"
    )


async def test_a_test_event_reaches_the_receiver(
    live: httpx.AsyncClient, receiver: Receiver
) -> None:
    webhook_id = await subscribe(live, receiver, uuid.uuid4().hex)
    response = await live.post(f"/webhooks/{webhook_id}/test")
    assert response.status_code == 202, response.text

    async def arrived() -> bool:
        return any(event["type"] == "webhook.test" for event in receiver.events())

    await eventually(arrived)
    headers, body = receiver.received[0]
    assert headers["Netcron-Event-Type"] == "webhook.test"
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])


async def test_a_selector_and_event_types_filter_what_is_sent(
    live: httpx.AsyncClient, receiver: Receiver
) -> None:
    label = uuid.uuid4().hex
    await subscribe(live, receiver, label)
    await create_devices(live, uuid.uuid4().hex, [f"wh-other-{label[:8]}"])  # not selected
    await create_devices(live, label, [f"wh-mine-{label[:8]}"])

    async def arrived() -> bool:
        return len(receiver.events()) >= 1

    await eventually(arrived)
    # In order per webhook: had the other device's (earlier) event been sent, it came first.
    assert [event["data"]["name"] for event in receiver.events()] == [f"wh-mine-{label[:8]}"]


async def test_a_delivery_older_than_a_day_expires_unsent(
    live: httpx.AsyncClient, receiver: Receiver, nats_url: str
) -> None:
    label = uuid.uuid4().hex
    webhook_id = await subscribe(live, receiver, label)
    old = Event(type="run.failed", time=datetime.now(UTC) - timedelta(hours=25))
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(
            subject_for(uuid.UUID(webhook_id)), old.model_dump_json().encode()
        )
    finally:
        await nc.close()

    async def expired() -> bool:
        log = (await live.get(f"/webhooks/{webhook_id}/deliveries")).json()
        return [item["outcome"] for item in log["items"]] == ["expired"]

    await eventually(expired)
    response = await live.post(f"/webhooks/{webhook_id}/test")  # queued behind it
    assert response.status_code == 202

    async def test_arrived() -> bool:
        return len(receiver.events()) == 1

    await eventually(test_arrived)
    assert receiver.events()[0]["type"] == "webhook.test"


async def test_two_replicas_deliver_each_event_once_in_event_order(
    settings: Settings, nats_url: str, app: FastAPI, receiver: Receiver
) -> None:
    fast = settings.model_copy(update={"webhook_retry_min": 0.1, "webhook_retry_max": 0.4})
    label = uuid.uuid4().hex
    with serving(replica(fast, nats_url)) as one, serving(replica(fast, nats_url)) as two:
        clients = [
            httpx.AsyncClient(base_url=base, headers={"X-API-Key": ADMIN_KEY}, timeout=10)
            for base in (one, two)
        ]
        try:
            await subscribe(clients[0], receiver, label)
            receiver.failures = 3
            names = [f"wh-two-{label[:8]}-{i}" for i in range(12)]
            for i, name in enumerate(names):
                await create_devices(clients[i % 2], label, [name])

            async def all_in() -> bool:
                return len(receiver.events()) >= len(names)

            await eventually(all_in)
        finally:
            for client in clients:
                await client.aclose()
    events = receiver.events()
    assert sorted(event["data"]["name"] for event in events) == sorted(names)  # each once
    ids = [event["id"] for event in events]
    assert ids == sorted(ids)  # in the order the events happened
