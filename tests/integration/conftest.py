"""The whole system, real: embedded PostgreSQL, NATS, Temporal dev server, api, worker, executor."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from netcron.codec import data_converter
from netcron.config import Settings
from netcron.dev import DevStack
from netcron.devstack import free_port


@contextlib.contextmanager
def running_stack(
    data_dir: Path, secret_key: str, service_env: dict[str, str]
) -> Iterator[DevStack]:
    """The whole stack on embedded servers in ``data_dir``; its logs printed if it fails."""
    settings = Settings(_env_file=None, secret_key=secret_key)  # type: ignore[call-arg]
    dev = DevStack(
        settings=settings,
        data_dir=data_dir,
        api_port=free_port(None),
        with_ui=False,
        log_dir=data_dir / "logs",
        service_env=service_env,
    )
    try:
        dev.start(timeout=120)
        yield dev
    except Exception:
        _print_logs(data_dir / "logs")
        raise
    finally:
        dev.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, secret_key: str) -> Iterator[DevStack]:
    service_env = {
        "NETCRON_EMULATED_DELAY_MIN": "0.05",
        "NETCRON_EMULATED_DELAY_MAX": "0.1",
        "NETCRON_LOG_LEVEL": "DEBUG",
        "NETCRON_RECONCILE_INTERVAL": "2",
    }
    with running_stack(tmp_path_factory.mktemp("devstack"), secret_key, service_env) as dev:
        yield dev


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that restart a server run last, so that no other test runs while it recovers."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


def _print_logs(log_dir: Path) -> None:
    for path in sorted(log_dir.glob("*.log")):
        print(f"----- {path.name} (last 40 lines) -----")
        print("\n".join(path.read_text(errors="replace").splitlines()[-40:]))


@pytest.fixture(scope="session")
def api_responses() -> list[bytes]:
    """Every response body the session's api client received (for the no-leak test)."""
    return []


@pytest.fixture(scope="session")
async def api(stack: DevStack, api_responses: list[bytes]) -> AsyncIterator[httpx.AsyncClient]:
    async def keep(response: httpx.Response) -> None:
        api_responses.append(await response.aread())

    headers = {"X-API-Key": stack.api_key}
    async with httpx.AsyncClient(
        base_url=stack.api_url, timeout=10, headers=headers, event_hooks={"response": [keep]}
    ) as client:
        yield client


@pytest.fixture(scope="session")
async def temporal(stack: DevStack) -> Client:
    return await Client.connect(
        stack.env["NETCRON_TEMPORAL_ADDRESS"],
        data_converter=data_converter(stack.env["NETCRON_SECRET_KEY"]),
    )
