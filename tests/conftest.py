"""Session-wide embedded servers, started on free ports only when a test asks for them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from netcron.crypto import generate_key
from netcron.devstack import EmbeddedNats, EmbeddedPostgres, EmbeddedTemporal


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def postgres_url(stack_dir: Path) -> Iterator[str]:
    """An asyncpg SQLAlchemy URL of a fresh embedded PostgreSQL (empty database)."""
    server = EmbeddedPostgres(stack_dir / "postgres")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def nats_url(stack_dir: Path) -> Iterator[str]:
    server = EmbeddedNats(stack_dir / "nats", log_file=stack_dir / "nats.log")
    yield server.start(preferred_port=None)
    server.stop()


@pytest.fixture(scope="session")
def temporal_server(stack_dir: Path) -> Iterator[EmbeddedTemporal]:
    server = EmbeddedTemporal(
        stack_dir / "temporal", headless=True, log_file=stack_dir / "temporal.log"
    )
    server.start(preferred_port=None)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def temporal_address(temporal_server: EmbeddedTemporal) -> str:
    return temporal_server.address


@pytest.fixture(scope="session")
def secret_key() -> str:
    return generate_key()


@pytest.fixture(autouse=True, scope="session")
def _no_env_file_leaks() -> None:
    """Tests build their settings explicitly; a developer's .env must not leak in."""
    os.environ.pop("NETCRON_SECRET_KEY", None)
