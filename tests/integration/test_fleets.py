"""Fleets on the real stack: a job over a few hundred devices, its caps, its history cost."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from netcron.jobspec import job_workflow_id_for
from tests.integration.test_pipeline import eventually

pytestmark = pytest.mark.integration

SITES = 5
DEVICES = 300
#: The issue's budget: a fire's history does not grow with its devices.
EVENTS_PER_FIRE = 30


@pytest.fixture(scope="module")
async def fleet(api: httpx.AsyncClient) -> AsyncIterator[list[dict[str, Any]]]:
    """300 devices over 5 sites, every other one a core router."""
    gate = asyncio.Semaphore(16)

    async def create(index: int) -> dict[str, Any]:
        async with gate:
            response = await api.post(
                "/devices",
                json={
                    "name": f"fleet-{index:03d}",
                    "host": f"198.51.100.{index % 250 + 1}",
                    "platform": "cisco_ios",
                    "password": "fleet-pa55",
                    "labels": {"site": f"s{index % SITES}", "role": ("core", "edge")[index % 2]},
                },
            )
            assert response.status_code == 201, response.text
            device: dict[str, Any] = response.json()
            return device

    devices = list(await asyncio.gather(*(create(i) for i in range(DEVICES))))
    yield devices
    for device in devices:
        await api.delete(f"/devices/{device['id']}")


async def finished_fire(api: httpx.AsyncClient, job_id: str, fire_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        fire: dict[str, Any] = (await api.get(f"/jobs/{job_id}/fires/{fire_id}")).json()
        return fire if fire.get("state") == "finished" else None

    return await eventually(check, timeout=90)


async def all_runs(api: httpx.AsyncClient, job_id: str, fire_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    while True:
        page = (
            await api.get(
                f"/jobs/{job_id}/fires/{fire_id}", params={"limit": 500, "offset": len(runs)}
            )
        ).json()["runs"]
        runs += page["items"]
        if len(runs) >= page["total"]:
            return runs


def most_at_once(runs: list[dict[str, Any]]) -> int:
    """The most runs whose [started_at, finished_at] intervals overlap at one moment."""
    edges: list[tuple[datetime, int]] = []
    for run in runs:
        edges.append((datetime.fromisoformat(run["started_at"]), 1))
        edges.append((datetime.fromisoformat(run["finished_at"]), -1))
    at_once = most = 0
    for _, step in sorted(edges):
        at_once += step
        most = max(most, at_once)
    return most


async def test_a_job_runs_once_on_every_matching_device_within_its_caps(
    api: httpx.AsyncClient, fleet: list[dict[str, Any]]
) -> None:
    core = [d for d in fleet if d["labels"]["role"] == "core"]
    response = await api.post(
        "/jobs",
        json={
            "name": "core-backup",
            "command": "show running-config | include hostname {name}",
            "target": {"labels": {"role": "core"}, "exclude_labels": {"site": "s4"}},
            "cron": "0 0 1 1 *",
            "concurrency": {"max_in_flight": 40, "per_label": {"site": 3}},
        },
    )
    assert response.status_code == 201, response.text
    job = response.json()
    targets = (await api.get(f"/jobs/{job['id']}/targets", params={"limit": 500})).json()
    expected = {d["id"] for d in core if d["labels"]["site"] != "s4"}
    assert targets["total"] == len(expected) == 120
    assert {d["id"] for d in targets["items"]} == expected

    accepted = await api.post(f"/jobs/{job['id']}/runs")
    assert accepted.status_code == 202, accepted.text
    fire_id = accepted.json()["fire_id"]
    fire = await finished_fire(api, job["id"], fire_id)
    assert fire["counts"] == {"succeeded": 120}
    assert fire["total"] == 120 and fire["duration_seconds"] is not None
    assert len(fire["slowest"]) == 5

    runs = await all_runs(api, job["id"], fire_id)
    assert {r["device_id"] for r in runs} == expected
    by_site: dict[str, list[dict[str, Any]]] = defaultdict(list)
    site_of = {d["id"]: d["labels"]["site"] for d in fleet}
    for run in runs:
        by_site[site_of[run["device_id"]]].append(run)
    assert all(most_at_once(site_runs) <= 3 for site_runs in by_site.values())
    assert max(most_at_once(site_runs) for site_runs in by_site.values()) == 3

    # Each run is recorded under its device like any other, with the rendered command.
    sample = core[0]
    results = (
        await api.get(f"/devices/{sample['id']}/results", params={"job_id": job["id"]})
    ).json()
    assert results["total"] == 1
    run = results["items"][0]
    assert run["fire_id"] == fire_id and run["job_id"] == job["id"]
    assert run["status"] == "succeeded" and run["schedule_id"] is None
    assert run["command"] == f"show running-config | include hostname {sample['name']}"

    narrowed = sorted(expected)[:3]
    accepted = await api.post(f"/jobs/{job['id']}/runs", json={"devices": narrowed})
    assert accepted.status_code == 202, accepted.text
    fire = await finished_fire(api, job["id"], accepted.json()["fire_id"])
    assert fire["counts"] == {"succeeded": 3}

    fires = (await api.get(f"/jobs/{job['id']}/fires")).json()
    assert [f["id"] for f in fires["items"]] == [accepted.json()["fire_id"], fire_id]
    assert (await api.delete(f"/jobs/{job['id']}")).status_code == 204
    gone = await api.get(f"/devices/{sample['id']}/results", params={"job_id": job["id"]})
    assert gone.json()["total"] == 0


async def test_a_fire_costs_the_same_few_history_events_whatever_its_size(
    api: httpx.AsyncClient, temporal: Client, fleet: list[dict[str, Any]]
) -> None:
    response = await api.post(
        "/jobs",
        json={
            "name": "everything-every-3s",
            "command": "show clock",
            "target": {"all": True},
            "cron": "*/3 * * * * *",
            "concurrency": {"max_in_flight": 300},
        },
    )
    assert response.status_code == 201, response.text
    job = response.json()

    async def finished() -> list[dict[str, Any]] | None:
        fires = (await api.get(f"/jobs/{job['id']}/fires")).json()["items"]
        done = [f for f in fires if f["state"] == "finished"]
        return done if len(done) >= 3 else None

    done = await eventually(finished, timeout=60)
    assert (await api.post(f"/jobs/{job['id']}/pause")).status_code == 200
    assert all(f["total"] >= DEVICES for f in done)
    assert all(sum(f["counts"].values()) == f["total"] for f in done)

    handle = temporal.get_workflow_handle(job_workflow_id_for(job["id"]))
    events = [event async for event in handle.fetch_history_events()]
    fires = sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED for e in events)
    assert fires >= 3
    per_fire = len(events) / fires
    print(f"\n{len(events)} history events for {fires} fires of {DEVICES}+ devices: {per_fire:.1f}")
    assert per_fire <= EVENTS_PER_FIRE
    assert (await api.delete(f"/jobs/{job['id']}")).status_code == 204
