"""Webhooks on the real stack: a run's final status reaches a receiver, signed, in order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from netcron.webhooks.signing import SIGNATURE_HEADER, verify
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "whsec-integration-0123456789"
PASSWORD = "webhook-device-pw-0123"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


async def test_run_results_reach_a_webhook_signed_and_in_order(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    label = uuid.uuid4().hex
    webhook = await api.post(
        "/webhooks",
        json={
            "name": f"it-{label[:8]}",
            "url": receiver.url,
            "event_types": ["run.succeeded", "run.failed"],
            "selector": {"team": label},
            "secret": SECRET,
        },
    )
    assert webhook.status_code == 201, webhook.text
    device = (
        await api.post(
            "/devices",
            json={
                "name": f"wh-ios-{label[:8]}",
                "host": "192.0.2.77",
                "platform": "cisco_ios",
                "password": PASSWORD,
                "labels": {"team": label},
            },
        )
    ).json()
    command = (
        await api.post(f"/devices/{device['id']}/commands", json={"name": "v", "text": "show ver"})
    ).json()
    base = f"/devices/{device['id']}/commands/{command['id']}/schedules"
    schedule = (await api.post(base, json={"cron": "0 0 1 1 *", "is_active": False})).json()
    run_ids = []
    for _ in range(3):
        response = await api.post(f"{base}/{schedule['id']}/runs")
        assert response.status_code == 202, response.text
        run_ids.append(response.json()["run_id"])

    deadline = time.monotonic() + 30
    while len(receiver.events()) < 3:
        assert time.monotonic() < deadline, receiver.events()
        await asyncio.sleep(0.2)
    events = receiver.events()
    assert {event["run_id"] for event in events} == set(run_ids)
    assert {event["type"] for event in events} == {"run.succeeded"}
    assert all("output" not in event["data"] for event in events)  # device output stays home
    assert [event["id"] for event in events] == sorted(event["id"] for event in events)
    for headers, body in receiver.received:
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        text = body.decode()
        assert SECRET not in text and PASSWORD not in text
    await api.delete(f"/devices/{device['id']}")
    await api.delete(f"/webhooks/{webhook.json()['id']}")
