"""`netcron dev --demo`: a device, a command and a schedule firing every 10 seconds."""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger(__name__)

DEMO_DEVICE = {
    "name": "demo-router-1",
    "host": "192.0.2.1",
    "port": 22,
    "platform": "cisco_ios",
    "username": "netcron",
    "password": "demo-password",
    "labels": {"site": "lab"},
}


async def create_demo(api_url: str, api_key: str, device: dict[str, object] | None = None) -> str:
    """Create (or find) the demo objects; return the device id.

    ``device`` replaces the demo device's address and credentials (a simulated device,
    when the executors use the ssh driver).
    """
    headers = {"X-API-Key": api_key}
    async with httpx.AsyncClient(base_url=api_url, timeout=10, headers=headers) as client:
        found = await client.get("/devices", params={"limit": 500})
        found.raise_for_status()
        for existing in found.json()["items"]:
            if existing["name"] == DEMO_DEVICE["name"]:
                if device:
                    # A new simulator: a new port, new credentials and a new host key.
                    patch = {k: v for k, v in device.items() if k != "platform"}
                    await client.patch(
                        f"/devices/{existing['id']}", json=patch | {"host_key": None}
                    )
                log.info("demo device exists: %s/devices/%s/results", api_url, existing["id"])
                return str(existing["id"])
        body = DEMO_DEVICE | (device or {})
        created = (await client.post("/devices", json=body)).raise_for_status().json()
        command = (
            (
                await client.post(
                    f"/devices/{created['id']}/commands",
                    json={"name": "version", "text": "show version", "timeout": 30},
                )
            )
            .raise_for_status()
            .json()
        )
        (
            await client.post(
                f"/devices/{created['id']}/commands/{command['id']}/schedules",
                json={"cron": "*/10 * * * * *", "timezone": "UTC"},
            )
        ).raise_for_status()
        log.info("demo schedule created: %s/devices/%s/results", api_url, created["id"])
        return str(created["id"])
