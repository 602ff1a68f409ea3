"""Real devices on the whole stack: the ssh driver against simulated devices over SSH."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from netcron.dev import DevStack

from .conftest import running_stack
from .test_pipeline import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def simulated() -> Iterator[dict[str, dict[str, Any]]]:
    """One simulated device per platform, by platform."""
    process = subprocess.Popen(
        [sys.executable, "-m", "netcron", "simulate", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    rows = json.loads(process.stdout.readline())
    yield {row["platform"]: row for row in rows}
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def ssh_stack(tmp_path_factory: pytest.TempPathFactory, secret_key: str) -> Iterator[DevStack]:
    service_env = {"NETCRON_EXECUTOR_DRIVER": "ssh", "NETCRON_RECONCILE_INTERVAL": "0"}
    with running_stack(tmp_path_factory.mktemp("ssh-stack"), secret_key, service_env) as dev:
        yield dev


@pytest.fixture(scope="module")
async def ssh_api(ssh_stack: DevStack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-API-Key": ssh_stack.api_key}
    async with httpx.AsyncClient(base_url=ssh_stack.api_url, timeout=30, headers=headers) as c:
        yield c


async def _device(api: httpx.AsyncClient, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "name": f"{row['hostname']}-{len(changes)}-{changes.get('password', 'ok')[:4]}",
        "host": row["host"],
        "port": row["port"],
        "platform": row["platform"],
        "username": row["username"],
        "password": row["password"],
        "enable_secret": row["enable_secret"],
    } | changes
    response = await api.post("/devices", json=body)
    assert response.status_code == 201, response.text
    device: dict[str, Any] = response.json()
    return device


async def _run_now(api: httpx.AsyncClient, device: dict[str, Any], text: str) -> dict[str, Any]:
    """A paused schedule run by hand, retried up to 3 attempts; its final run."""
    command = (
        await api.post(f"/devices/{device['id']}/commands", json={"name": "c", "text": text})
    ).json()
    path = f"/devices/{device['id']}/commands/{command['id']}/schedules"
    schedule = (
        await api.post(
            path,
            json={
                "cron": "0 0 1 1 *",
                "is_active": False,
                "retry_max_attempts": 3,
                "retry_backoff_seconds": 0,
            },
        )
    ).json()
    accepted = await api.post(f"{path}/{schedule['id']}/runs")
    assert accepted.status_code == 202, accepted.text
    url = accepted.json()["results_url"]

    async def final() -> dict[str, Any] | None:
        run: dict[str, Any] = (await api.get(url)).json()
        return run if run.get("finished_at") and run["status"] != "running" else None

    return await eventually(final, timeout=60)


@pytest.mark.parametrize("platform", ["cisco_ios", "juniper_junos", "arista_eos"])
async def test_a_run_reaches_a_device_over_ssh_and_keeps_clean_output(
    ssh_api: httpx.AsyncClient, simulated: dict[str, dict[str, Any]], platform: str
) -> None:
    row = simulated[platform]
    device = await _device(ssh_api, row)
    run = await _run_now(ssh_api, device, "show version")
    assert run["status"] == "succeeded", run
    assert run["output"] and "--More--" not in run["output"]
    assert row["hostname"] + "#" not in run["output"] and "show version" not in run["output"]
    stored = (await ssh_api.get(f"/devices/{device['id']}")).json()
    assert stored["host_key"] == row["host_key"]  # trusted on first use


async def test_a_refused_login_fails_as_auth_failed_and_is_not_retried(
    ssh_api: httpx.AsyncClient, simulated: dict[str, dict[str, Any]]
) -> None:
    device = await _device(ssh_api, simulated["cisco_ios"], password="not-the-password")
    run = await _run_now(ssh_api, device, "show version")
    assert (run["status"], run["error_kind"], run["attempt"]) == ("failed", "auth_failed", 1)
    assert "not-the-password" not in json.dumps(run)


async def test_a_pinned_key_that_does_not_match_fails_without_login(
    ssh_api: httpx.AsyncClient, simulated: dict[str, dict[str, Any]]
) -> None:
    wrong = "SHA256:" + "x" * 43
    device = await _device(ssh_api, simulated["cisco_xe"], host_key_policy="pinned", host_key=wrong)
    run = await _run_now(ssh_api, device, "show version")
    assert (run["status"], run["error_kind"], run["attempt"]) == (
        "failed",
        "host_key_mismatch",
        1,
    )


async def test_a_check_reads_the_platform_and_version(
    ssh_api: httpx.AsyncClient, simulated: dict[str, dict[str, Any]]
) -> None:
    row = simulated["cisco_nxos"]
    device = await _device(ssh_api, row)
    response = await ssh_api.post(f"/devices/{device['id']}/check")
    assert response.status_code == 200, response.text
    check = response.json()
    assert (check["ok"], check["login"], check["host_key"]) == (True, "ok", row["host_key"])
    assert check["software_version"]
    stored = (await ssh_api.get(f"/devices/{device['id']}")).json()
    assert stored["last_check"]["software_version"] == check["software_version"]
