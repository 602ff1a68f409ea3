"""The api under read load for `netcron bench`: locust, headless, at a fixed request rate.

Locust (from PyPI) runs in its own process so that its gevent patching and its CPU stay
out of the benchmark's own loop. Each simulated user makes one request a second, and the
users start evenly over that second, so that the requests arrive evenly spaced: users
started together send their requests in bursts and measure the bursts (twenty users at
ten a second: p50 40 ms, where an evenly paced client saw 3.6 ms). The figures come
from locust's CSV summary, per endpoint.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: Requests per second each simulated user makes.
USER_RPS = 1.0
LOCUSTFILE = Path(__file__).with_name("bench_locustfile.py")
ENDPOINTS = ("GET /devices", "GET /devices/{id}/results")


def run_api_load(
    api_url: str,
    api_key: str,
    device_ids: list[str],
    rps: float,
    seconds: float,
    paths: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """Latency percentiles (ms) and achieved rate per endpoint, and over all of them.

    ``paths`` (name → path) replaces the default endpoints: each request picks one.
    """
    users = max(1, round(rps / USER_RPS))
    with tempfile.TemporaryDirectory(prefix="netcron-load-") as tmp:
        prefix = Path(tmp) / "load"
        env = {
            **os.environ,
            "NETCRON_BENCH_API_KEY": api_key,
            "NETCRON_BENCH_DEVICES": ",".join(device_ids),
            "NETCRON_BENCH_USER_RPS": str(rps / users),
            "NETCRON_BENCH_RPS": str(rps),
            "NETCRON_BENCH_PATHS": "\n".join(f"{k}\t{v}" for k, v in (paths or {}).items()),
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "--only-summary",
                "--reset-stats",
                "--users",
                str(users),
                "--spawn-rate",
                str(users),
                "--run-time",
                f"{seconds:g}s",
                "--host",
                api_url,
                "--csv",
                str(prefix),
                "--loglevel",
                "ERROR",
                # failed requests are figures (counted per endpoint), not an error
                "--exit-code-on-error",
                "0",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=seconds + 60,
        )
        return read_stats(prefix.with_name("load_stats.csv"))


def read_stats(path: Path) -> dict[str, dict[str, float]]:
    """Locust's ``*_stats.csv``: one row per endpoint plus ``Aggregated``."""
    figures: dict[str, dict[str, float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            name = "all" if row["Name"] == "Aggregated" else row["Name"]
            figures[name] = {
                "requests": float(row["Request Count"]),
                "failures": float(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1),
                "p50": float(row["50%"]),
                "p95": float(row["95%"]),
                "p99": float(row["99%"]),
                "max": round(float(row["Max Response Time"]), 1),
            }
    return figures
