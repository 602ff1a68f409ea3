"""Every service stops cleanly on SIGTERM: exit 0 within 10 s, no fatal error, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netcron.db.migrate import upgrade
from netcron.devstack import free_port

READY_LINE = {
    "api": "Application startup complete",
    "worker": "worker is polling task queue",
    "executor": "is consuming NETCRON_TASKS",
}
STOP_WITHIN = 10.0


@pytest.fixture(scope="module")
def service_env(
    postgres_url: str, nats_url: str, temporal_address: str, secret_key: str
) -> dict[str, str]:
    upgrade(postgres_url)
    port = free_port(None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETCRON_")}
    return env | {
        "NETCRON_DATABASE_URL": postgres_url,
        "NETCRON_NATS_URL": nats_url,
        "NETCRON_TEMPORAL_ADDRESS": temporal_address,
        "NETCRON_TEMPORAL_TASK_QUEUE": "netcron-stop-test",
        "NETCRON_SECRET_KEY": secret_key,
        "NETCRON_API_KEYS": "stop-test-key",
        "NETCRON_API_HOST": "127.0.0.1",
        "NETCRON_API_PORT": str(port),
        "NETCRON_API_URL": f"http://127.0.0.1:{port}",
        "NETCRON_RECONCILE_INTERVAL": "0",
    }


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, log.read_text(errors="replace")
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in {timeout:.0f}s:\n{log.read_text(errors='replace')}")


@pytest.mark.parametrize("service", ["api", "worker", "executor"])
def test_service_stops_cleanly_on_sigterm(
    service: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / f"{service}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netcron", service],
            env=service_env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(log, READY_LINE[service], proc, timeout=60)
        time.sleep(1)  # let it settle into polling
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(STOP_WITHIN + 5)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text(errors="replace")
    assert code == 0, output
    assert took < STOP_WITHIN, f"{service} took {took:.1f}s to stop"
    assert "Fatal Python error" not in output
    assert "Traceback" not in output
