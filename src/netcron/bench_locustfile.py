"""Locust users for `netcron bench`: list devices and read a device's runs, at a fixed rate.

Loaded by locust in its own process (see ``netcron.bench_load``); configured through
the environment so that nothing secret goes on a command line.
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, constant_throughput, task

DEVICES = os.environ.get("NETCRON_BENCH_DEVICES", "").split(",")
HEADERS = {"X-API-Key": os.environ.get("NETCRON_BENCH_API_KEY", "")}


class ApiReader(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("NETCRON_BENCH_USER_RPS", "10")))
    default_headers = HEADERS

    @task
    def list_devices(self) -> None:
        self.client.get("/devices", name="GET /devices")

    @task
    def device_results(self) -> None:
        device = random.choice(DEVICES)
        self.client.get(f"/devices/{device}/results", name="GET /devices/{id}/results")
