"""Metrics on the real stack: each service serves /metrics, and the numbers move with runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from netcron.dev import DevStack

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(ls).get(label, "") for (n, ls) in samples if n == name}


async def wait_until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not met within {timeout}s")
        await asyncio.sleep(0.3)


async def run_by_hand(api: httpx.AsyncClient, path: str, times: int) -> list[str]:
    run_ids = []
    for _ in range(times):
        response = await api.post(f"{path}/runs")
        assert response.status_code == 202, response.text
        run_ids.append(response.json()["run_id"])
    return run_ids


async def ended(api: httpx.AsyncClient, device_id: str, run_ids: Iterable[str]) -> bool:
    for run_id in run_ids:
        response = await api.get(f"/devices/{device_id}/results/{run_id}")
        if response.status_code != 200 or response.json()["status"] != "succeeded":
            return False
    return True


async def test_every_service_serves_metrics_that_move_after_runs(
    stack: DevStack, api: httpx.AsyncClient
) -> None:
    urls = stack.metrics_urls
    assert set(urls) == {"api", "worker", "executor"}
    before = {name: await scrape(url) for name, url in urls.items()}

    device = (
        await api.post(
            "/devices",
            json={
                "name": "metrics-eos-1",
                "host": "192.0.2.41",
                "platform": "arista_eos",
                "password": "metrics-secret-pw",
            },
        )
    ).json()
    command = (
        await api.post(f"/devices/{device['id']}/commands", json={"name": "v", "text": "show ver"})
    ).json()
    base = f"/devices/{device['id']}/commands/{command['id']}/schedules"
    schedule = (await api.post(base, json={"cron": "0 0 1 1 *", "is_active": False})).json()
    run_ids = await run_by_hand(api, f"{base}/{schedule['id']}", 3)
    await wait_until(lambda: ended(api, device["id"], run_ids))
    executor = await scrape(urls["executor"])
    api_after = await scrape(urls["api"])

    def moved(service: str, after: Samples, name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before[service], name, **labels)

    ran = {"status": "succeeded", "platform": "arista_eos", "error_kind": ""}
    assert moved("executor", executor, "netcron_runs_total", **ran) >= 3
    assert moved("executor", executor, "netcron_start_lag_seconds_count") >= 3
    assert (
        moved(
            "executor",
            executor,
            "netcron_command_duration_seconds_count",
            platform="arista_eos",
            status="succeeded",
        )
        >= 3
    )
    assert total(executor, "netcron_executor_slots") == 16
    assert "netcron_executor_slots_in_use" in {n for n, _ in executor}
    assert moved("api", api_after, "netcron_runs_recorded_total", status="succeeded") >= 3
    routes = label_values(api_after, "netcron_http_request_duration_seconds_count", "route")
    assert "/devices/{device_id}/results/{run_id}" in routes, routes
    assert not any(device["id"] in route for route in routes)

    async def worker_moved() -> bool:
        worker = await scrape(urls["worker"])
        return (
            moved("worker", worker, "netcron_fire_lag_seconds_count") >= 3
            and moved("worker", worker, "netcron_run_end_to_end_seconds_count") >= 3
            # the backlog sampler has run: an idle executor keeps a pull request waiting
            and total(worker, "netcron_executor_pull_requests") >= 1
        )

    await wait_until(worker_moved)
    await api.delete(f"/devices/{device['id']}")


async def test_no_secret_or_id_in_any_metric(stack: DevStack, api: httpx.AsyncClient) -> None:
    for url in stack.metrics_urls.values():
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(url)).text
        for secret in (stack.env["NETCRON_SECRET_KEY"], stack.api_key, "metrics-secret-pw"):
            assert secret not in text
        samples = await scrape(url)
        labels = {name for _, ls in samples for name, _ in ls}
        assert not {"run_id", "device_id", "schedule_id", "device", "schedule"} & labels
