"""Jobs: selectors, caps and their validation, fires opened per device, overlap per device."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.api.reconcile import reconcile_jobs
from tests.api.conftest import WORKER_KEY

JOB: dict[str, Any] = {
    "name": "nightly-backup",
    "command": "show running-config",
    "target": {"labels": {"site": "ams1"}},
    "cron": "0 2 * * *",
    "timezone": "Europe/Amsterdam",
    "concurrency": {"max_in_flight": 20, "per_label": {"site": 5}},
}


async def make_devices(client: httpx.AsyncClient, count: int, **labels: str) -> list[str]:
    ids = []
    for index in range(count):
        name = f"{'-'.join(labels.values()) or 'dev'}-{index}"
        response = await client.post(
            "/devices",
            json={
                "name": name,
                "host": f"10.9.0.{index + 1}",
                "platform": "cisco_ios",
                "labels": labels,
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_a_job_is_created_with_its_workflow_and_its_targets_are_previewed(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator
) -> None:
    ams = await make_devices(client, 3, site="ams1", role="core")
    await make_devices(client, 2, site="fra1", role="core")
    response = await client.post("/jobs", json=JOB)
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["workflow_id"] == f"job-{job['id']}" and job["state"] == "active"
    assert job["concurrency"] == {"max_in_flight": 20, "per_label": {"site": 5}}
    assert len(job["next_fire_times"]) == 5 and job["last_fire"] is None
    spec = orchestrator.jobs[uuid.UUID(job["id"])]
    assert (spec.cron, spec.timezone, spec.version) == ("0 2 * * *", "Europe/Amsterdam", 1)

    targets = (await client.get(f"/jobs/{job['id']}/targets", params={"limit": 2})).json()
    assert targets["total"] == 3 and targets["limit"] == 2 and len(targets["items"]) == 2
    everything = (await client.get(f"/jobs/{job['id']}/targets")).json()
    assert {d["id"] for d in everything["items"]} == set(ams)


async def test_devices_filter_by_labels_as_a_selector_does(client: httpx.AsyncClient) -> None:
    core = await make_devices(client, 2, site="ams1", role="core")
    edge = await make_devices(client, 2, site="ams1", role="edge")
    await make_devices(client, 1, site="fra1", role="core")

    async def names(*labels: str) -> set[str]:
        page = (await client.get("/devices", params=[("label", v) for v in labels])).json()
        return {d["id"] for d in page["items"]}

    assert await names("site:ams1", "role:core") == set(core)
    assert await names("site:ams1", "role:core", "role:edge") == set(core + edge)
    bad = await client.get("/devices", params={"label": "no-colon"})
    assert bad.status_code == 422 and "label" in bad.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": {}}, "target"),
        ({"target": {"labels": {}}}, "target"),
        ({"target": {"labels": {"": "x"}}}, "target.labels"),
        ({"target": {"labels": {"site": []}}}, "target.labels.site"),
        ({"target": {"labels": {"site": "a"}, "bogus": 1}}, "target.bogus"),
        ({"concurrency": {"max_in_flight": 0}}, "concurrency.max_in_flight"),
        ({"concurrency": {"per_label": {"site": 0}}}, "concurrency.per_label.site"),
        ({"concurrency": {"per_label": {"site": -3}}}, "concurrency.per_label.site"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"command": "show run\nreload"}, "command"),
        ({"params": {"x": "a\nb"}}, "params"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
    ],
)
async def test_bad_jobs_are_refused_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/jobs", json=JOB | change)
    assert response.status_code == 422, response.text
    fields = [error["field"] for error in response.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields


async def test_unknown_device_ids_are_refused_naming_the_one(client: httpx.AsyncClient) -> None:
    [known] = await make_devices(client, 1, site="ams1")
    unknown = str(uuid.uuid4())
    response = await client.post("/jobs", json=JOB | {"target": {"devices": [known, unknown]}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "target.devices[1]"
    assert unknown in response.text


async def test_a_job_name_is_unique(client: httpx.AsyncClient) -> None:
    assert (await client.post("/jobs", json=JOB)).status_code == 201
    assert (await client.post("/jobs", json=JOB)).status_code == 409


async def test_patch_pause_resume_and_delete_reach_the_workflow(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator
) -> None:
    job = (await client.post("/jobs", json=JOB)).json()
    job_id = uuid.UUID(job["id"])
    patched = await client.patch(f"/jobs/{job_id}", json={"cron": "30 3 * * *"})
    assert patched.status_code == 200 and patched.json()["cron"] == "30 3 * * *"
    assert orchestrator.jobs[job_id].cron == "30 3 * * *"
    assert orchestrator.jobs[job_id].version == 2
    caps = await client.patch(f"/jobs/{job_id}", json={"concurrency": {"per_label": {"role": 2}}})
    assert caps.json()["concurrency"] == {"max_in_flight": 20, "per_label": {"role": 2}}
    paused = (await client.post(f"/jobs/{job_id}/pause")).json()
    assert paused["state"] == "paused" and paused["next_fire_times"] == []
    assert orchestrator.jobs[job_id].is_active is False
    resumed = (await client.post(f"/jobs/{job_id}/resume")).json()
    assert resumed["state"] == "active" and orchestrator.jobs[job_id].version == 5
    assert (await client.patch(f"/jobs/{job_id}", json={"cron": None})).status_code == 422
    assert (await client.delete(f"/jobs/{job_id}")).status_code == 204
    assert job_id in orchestrator.stopped
    assert (await client.get(f"/jobs/{job_id}")).status_code == 404


async def test_a_job_is_not_created_without_temporal(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator
) -> None:
    orchestrator.available = False
    assert (await client.post("/jobs", json=JOB)).status_code == 503
    orchestrator.available = True
    assert (await client.get("/jobs")).json()["total"] == 0


async def test_run_now_opens_a_fire_with_a_run_per_target(
    client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator
) -> None:
    ams = await make_devices(client, 3, site="ams1")
    job = (await client.post("/jobs", json=JOB)).json()
    accepted = await client.post(f"/jobs/{job['id']}/runs", json={"devices": ams[:2]})
    assert accepted.status_code == 202, accepted.text
    fire_id = accepted.json()["fire_id"]
    assert accepted.json()["total"] == 2
    [requested] = orchestrator.fires
    assert str(requested.fire_id) == fire_id and requested.manual
    fire = (await client.get(f"/jobs/{job['id']}/fires/{fire_id}")).json()
    assert fire["state"] == "running" and fire["counts"] == {"scheduled": 2}
    assert {run["device_id"] for run in fire["runs"]["items"]} == set(ams[:2])

    outsider = await make_devices(client, 1, site="fra1")
    refused = await client.post(f"/jobs/{job['id']}/runs", json={"devices": [ams[0], outsider[0]]})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "devices[1]"


async def test_a_selector_matching_nothing_makes_fires_of_zero_devices(
    client: httpx.AsyncClient,
) -> None:
    job = (
        await client.post("/jobs", json=JOB | {"target": {"labels": {"site": "nowhere"}}})
    ).json()
    accepted = await client.post(f"/jobs/{job['id']}/runs")
    assert accepted.status_code == 202 and accepted.json()["total"] == 0


async def test_a_device_still_running_the_job_is_skipped_by_the_next_fire(
    client: httpx.AsyncClient,
) -> None:
    ams = await make_devices(client, 2, site="ams1")
    job = (await client.post("/jobs", json=JOB)).json()
    worker = {"X-API-Key": WORKER_KEY}

    async def open_fire(at: datetime, fire_id: str | None = None) -> dict[str, Any]:
        response = await client.post(
            "/internal/fires",
            headers=worker,
            json={
                "job_id": job["id"],
                "fire_id": fire_id or str(uuid.uuid4()),
                "scheduled_at": at.isoformat(),
                "manual": True,
            },
        )
        assert response.status_code == 200, response.text
        plan: dict[str, Any] = response.json()
        return plan

    first = await open_fire(datetime.now(UTC))
    assert len(first["runs"]) == 2
    done = first["runs"][0]["run_id"]
    recorded = await client.post(
        f"/internal/fires/{first['fire_id']}/results",
        headers=worker,
        json={"records": [{"run_id": done, "status": "succeeded", "output": "ok"}]},
    )
    assert recorded.status_code == 204, recorded.text

    second = await open_fire(datetime.now(UTC))
    assert len(second["runs"]) == 1  # the other device is skipped: its run is pending
    fire = (await client.get(f"/jobs/{job['id']}/fires/{second['fire_id']}")).json()
    assert fire["counts"] == {"scheduled": 1, "skipped": 1}
    [skipped] = [run for run in fire["runs"]["items"] if run["status"] == "skipped"]
    assert "still pending" in skipped["error"]
    assert skipped["device_id"] in ams

    # Opening the same fire again (a dispatcher resumed) makes nothing new.
    again = await open_fire(datetime.now(UTC), second["fire_id"])
    assert again["total"] == 2 and again["runs"] == second["runs"]
    finished = await client.post(f"/internal/fires/{first['fire_id']}/finish", headers=worker)
    assert finished.json()["counts"] == {"succeeded": 1, "timed_out": 1}


async def test_reconciliation_restarts_updates_and_stops_job_workflows(
    app: FastAPI, client: httpx.AsyncClient, orchestrator: InMemoryOrchestrator
) -> None:
    lost = uuid.UUID((await client.post("/jobs", json=JOB)).json()["id"])
    behind = uuid.UUID((await client.post("/jobs", json=JOB | {"name": "b"})).json()["id"])
    fine = uuid.UUID((await client.post("/jobs", json=JOB | {"name": "c"})).json()["id"])
    orphan = uuid.uuid4()
    del orchestrator.jobs[lost]
    await client.patch(f"/jobs/{behind}", json={"cron": "5 5 * * *"})
    orchestrator.jobs[behind] = orchestrator.jobs[behind].model_copy(update={"version": 1})
    orchestrator.jobs[orphan] = orchestrator.jobs[fine].model_copy(update={"job_id": orphan})

    repairs = await reconcile_jobs(app.state.sessionmaker, orchestrator, orphan_grace=timedelta(0))
    assert (repairs.started, repairs.updated, repairs.stopped) == ([lost], [behind], [orphan])
    assert orchestrator.jobs[behind].version == 2 and orchestrator.jobs[behind].cron == "5 5 * * *"
    assert set(orchestrator.jobs) == {lost, behind, fine}
    again = await reconcile_jobs(app.state.sessionmaker, orchestrator, orphan_grace=timedelta(0))
    assert again.suspects == 0


CONFIG = "hostname r1\n! Last configuration change at {clock}\nntp server {ntp}\nend\n"


async def test_a_job_that_tracks_changes_keeps_versions_per_device(
    client: httpx.AsyncClient,
) -> None:
    [device] = await make_devices(client, 1, site="ams1")
    job = (
        await client.post("/jobs", json=JOB | {"track_changes": True, "mask": [r"secret \S+"]})
    ).json()
    assert job["track_changes"] is True and job["mask"] == [r"secret \S+"]
    worker = {"X-API-Key": WORKER_KEY}

    async def backup(clock: str, ntp: str) -> str:
        plan = (
            await client.post(
                "/internal/fires",
                headers=worker,
                json={
                    "job_id": job["id"],
                    "fire_id": str(uuid.uuid4()),
                    "scheduled_at": datetime.now(UTC).isoformat(),
                    "manual": True,
                },
            )
        ).json()
        [run] = plan["runs"]
        output = CONFIG.format(clock=clock, ntp=ntp)
        record = {"run_id": run["run_id"], "status": "succeeded", "output": output}
        sent = await client.post(
            f"/internal/fires/{plan['fire_id']}/results", headers=worker, json={"records": [record]}
        )
        assert sent.status_code == 204, sent.text
        await client.post(f"/internal/fires/{plan['fire_id']}/finish", headers=worker)
        run_id: str = run["run_id"]
        return run_id

    first = await backup("10:00", "192.0.2.1")
    same = await backup("11:00", "192.0.2.1")  # only the volatile line moved
    moved = await backup("12:00", "192.0.2.2")

    results = (await client.get(f"/devices/{device}/results", params={"job_id": job["id"]})).json()
    by_run = {r["run_id"]: r for r in results["items"]}
    assert [by_run[r]["changed"] for r in (first, same, moved)] == [True, False, True]
    assert by_run[moved]["diff_stats"] == {"added": 1, "removed": 1}
    assert by_run[same]["output"] == CONFIG.format(clock="11:00", ntp="192.0.2.1")
    assert by_run[first]["content_hash"] == by_run[same]["content_hash"]

    versions = (
        await client.get(f"/devices/{device}/versions", params={"job_id": job["id"]})
    ).json()
    assert [v["run_id"] for v in versions["items"]] == [moved, first]
    diff = await client.get(
        f"/devices/{device}/results/{moved}/diff", headers={"accept": "text/x-diff"}
    )
    assert diff.status_code == 200, diff.text
    assert "-ntp server 192.0.2.1" in diff.text and "+ntp server 192.0.2.2" in diff.text
    neither = await client.get(f"/devices/{device}/versions")
    assert neither.status_code == 422 and "command_id" in neither.text
