"""Locust users for `netcron bench`: list devices and read a device's runs (or the paths
given), at a fixed rate.

Loaded by locust in its own process (see ``netcron.bench_load``); configured through
the environment so that nothing secret goes on a command line. Each user makes
``NETCRON_BENCH_USER_RPS`` requests a second on a fixed timetable, and the n-th user's
timetable starts n / total rate seconds late, so that the requests arrive evenly spaced.
(Locust's ``constant_throughput`` paces from when a user was created, which lined every
user up again and sent the requests in bursts.)
"""

from __future__ import annotations

import itertools
import os
import random
import time

from locust import FastHttpUser, task

DEVICES = os.environ.get("NETCRON_BENCH_DEVICES", "").split(",")
USER_RPS = float(os.environ.get("NETCRON_BENCH_USER_RPS", "1"))
TOTAL_RPS = float(os.environ.get("NETCRON_BENCH_RPS", "1"))
#: ``name<TAB>path`` lines: read these instead of the two default endpoints.
PATHS = [
    tuple(line.split("\t", 1)) for line in os.environ.get("NETCRON_BENCH_PATHS", "").splitlines()
]
_started = itertools.count()


class ApiReader(FastHttpUser):
    default_headers = {"X-API-Key": os.environ.get("NETCRON_BENCH_API_KEY", "")}  # noqa: RUF012
    _next = 0.0

    def on_start(self) -> None:
        time.sleep((next(_started) / TOTAL_RPS) % (1 / USER_RPS))
        self._next = time.monotonic()

    def wait_time(self) -> float:
        self._next += 1 / USER_RPS
        return max(0.0, self._next - time.monotonic())

    @task
    def read(self) -> None:
        if PATHS:
            name, path = random.choice(PATHS)
            self.client.get(path, name=name)
        elif random.random() < 0.5:
            self.client.get("/devices", name="GET /devices")
        else:
            device = random.choice(DEVICES)
            self.client.get(f"/devices/{device}/results", name="GET /devices/{id}/results")
