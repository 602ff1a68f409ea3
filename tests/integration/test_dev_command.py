"""`netcron dev` as a new user runs it: beside a compose `.env`, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from netcron.config import Settings
from netcron.crypto import generate_key
from netcron.devstack import free_port
from netcron.external_servers import ServerUnusable, check_external

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory holding the `.env` the README's Containers section has one write."""
    env = (ROOT / ".env.example").read_text()
    env += f"NETCRON_SECRET_KEY={generate_key()}\nNETCRON_API_KEYS=compose-key-0123456789\n"
    (tmp_path / ".env").write_text(env)
    return tmp_path


def _wait_for(out: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out.read_text(errors="replace")
        found = re.search(pattern, text)
        if found:
            return found.group(0)
        assert proc.poll() is None, text
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} in {timeout:.0f}s:\n{out.read_text(errors='replace')}")


def _events_stderr(cwd: Path, env: dict[str, str]) -> str:
    """What `netcron events`, run in the checkout, says on stderr once it has connected."""
    err = cwd / "events.err"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netcron", "events"],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        _wait_for(err, r"netcron events: .*", proc, timeout=30)
        time.sleep(2)  # a refused key or URL would be reported by now
        assert proc.poll() is None, err.read_text()
    finally:
        proc.terminate()
        proc.wait(10)
    return err.read_text()


def test_dev_beside_a_compose_env_runs_on_embedded_servers_and_stops_cleanly(
    checkout: Path,
) -> None:
    out = checkout / "dev.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETCRON_")}
    env["NETCRON_EMULATED_DELAY_MIN"] = env["NETCRON_EMULATED_DELAY_MAX"] = "0.05"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netcron", "dev", "--demo", "--api-port", str(free_port(None))],
            cwd=checkout,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = _wait_for(out, r"netcron is ready .*", proc, timeout=120)
        assert "on embedded PostgreSQL, NATS and Temporal" in ready
        url = (checkout / ".netcron" / "api.url").read_text().strip()
        assert url in ready
        key = {"X-API-Key": "compose-key-0123456789"}
        assert httpx.get(f"{url}/ready", timeout=5).status_code == 200
        # Runs in flight while it stops: the demo schedule fires every 10 s.
        _wait_for(out, r"run succeeded", proc, timeout=30)
        assert httpx.get(f"{url}/devices", headers=key, timeout=5).json()["total"] == 1
        events = _events_stderr(checkout, env)
        assert f"api {url} (from {checkout / '.netcron' / 'api.url'})" in events, events
        assert f"key from {checkout / '.netcron' / 'api.key'}" in events, events
        assert "error" not in events, events
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(checkout / ".netcron", ignore_errors=True)
    combined = out.read_text(errors="replace")
    assert code == 0, combined
    assert took < 20, f"netcron dev took {took:.1f}s to stop"
    assert "Traceback" not in combined
    assert "Fatal Python error" not in combined
    assert "color_message" not in combined
    assert "netcron dev stopped" in combined


def _settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_an_external_server_that_does_not_answer_is_one_line(postgres_url: str) -> None:
    closed = free_port(None)
    settings = _settings(database_url=postgres_url, nats_url=f"nats://user:pw@127.0.0.1:{closed}")
    with pytest.raises(ServerUnusable) as error:
        check_external(settings, timeout=1)
    message = str(error.value)
    assert f"NETCRON_NATS_URL=nats://user:***@127.0.0.1:{closed}" in message
    assert "pw" not in message.replace("***", "")
    assert "without --external" in message
    assert "\n" not in message


def test_an_unusable_database_names_its_setting(tmp_path: Path) -> None:
    closed = free_port(None)
    settings = _settings(
        database_url=f"postgresql+asyncpg://netcron:hunter2@127.0.0.1:{closed}/netcron",
    )
    with pytest.raises(ServerUnusable) as error:
        check_external(settings, timeout=2)
    message = str(error.value)
    assert message.startswith("NETCRON_DATABASE_URL=postgresql+asyncpg://netcron:***@")
    assert "hunter2" not in message
    assert "\n" not in message


def test_dev_external_with_an_unusable_server_is_one_line_not_a_traceback(
    checkout: Path,
) -> None:
    closed = free_port(None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETCRON_")}
    env["NETCRON_DATABASE_URL"] = f"postgresql+asyncpg://netcron:hunter2@127.0.0.1:{closed}/nc"
    result = subprocess.run(
        [sys.executable, "-m", "netcron", "dev", "--external"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "NETCRON_DATABASE_URL" in line]
    assert f"netcron:***@127.0.0.1:{closed}" in line
    assert "hunter2" not in output


def test_dev_external_runs_on_the_configured_servers(
    postgres_url: str, nats_url: str, temporal_address: str, secret_key: str, tmp_path: Path
) -> None:
    from sqlalchemy import make_url

    from netcron.dev import DevStack

    # A database of its own on the session's PostgreSQL: no other test's schedules in it.
    url = make_url(postgres_url)
    database = f"external_{free_port(None)}"
    asyncpg_url = url.set(database=database).render_as_string(hide_password=False)
    _create_database(url.render_as_string(hide_password=False), database)
    settings = _settings(
        database_url=asyncpg_url,
        nats_url=nats_url,
        temporal_address=temporal_address,
        temporal_task_queue="netcron-external-test",
        secret_key=secret_key,
    )
    stack = DevStack(
        settings=settings,
        data_dir=tmp_path / "data",
        api_port=free_port(None),
        with_ui=False,
        external=True,
        log_dir=tmp_path / "logs",
        # The services read their settings from the environment, as under `netcron dev`.
        service_env={"NETCRON_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue},
    )
    try:
        stack.start(timeout=90)
        assert stack.postgres is None and stack.nats is None and stack.temporal is None
        assert stack.servers.startswith("external PostgreSQL")
        assert stack.env["NETCRON_NATS_URL"] == nats_url
        assert httpx.get(f"{stack.api_url}/ready", timeout=5).status_code == 200
    finally:
        stack.stop()


def _create_database(url: str, name: str) -> None:
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def create() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(create())
