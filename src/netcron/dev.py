"""`netcron dev`: the whole system on one machine, on embedded servers.

Starts PostgreSQL (unless a database URL is configured), NATS with JetStream and the
Temporal dev server with its UI, applies migrations, then runs the api, the worker and
the executor as child processes, and stops all of it on Ctrl-C or SIGTERM. The test
session and the benchmark use the same :class:`DevStack`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from netcron.apikeys import generate_api_key
from netcron.config import Settings
from netcron.crypto import generate_key
from netcron.devstack import (
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedServerError,
    EmbeddedTemporal,
    free_port,
    service_env,
    stop_process,
)

log = logging.getLogger(__name__)

SERVICES = ("api", "worker", "executor")


def load_or_create_secret(path: Path, generate: Callable[[], str] = generate_key) -> str:
    """A secret kept in the data dir (owner-only), generated on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


@dataclass
class DevStack:
    """Embedded servers plus the three services, started and stopped as one."""

    settings: Settings
    data_dir: Path
    api_port: int = 8000
    with_ui: bool = True
    service_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    postgres: EmbeddedPostgres | None = field(default=None, init=False)
    nats: EmbeddedNats | None = field(default=None, init=False)
    temporal: EmbeddedTemporal | None = field(default=None, init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    env: dict[str, str] = field(default_factory=dict, init=False)
    api_key: str = field(default="", init=False, repr=False)

    @property
    def api_url(self) -> str:
        return self.env["NETCRON_API_URL"]

    @property
    def ui_url(self) -> str | None:
        return self.temporal.ui_url if self.temporal else None

    def start_servers(self) -> dict[str, str]:
        """Start the embedded servers; return the settings that point at them."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        overrides: dict[str, str] = {}
        if "database_url" in self.settings.model_fields_set:
            overrides["database_url"] = self.settings.database_url
        else:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            overrides["database_url"] = self.postgres.start()
        self.nats = EmbeddedNats(self.data_dir / "nats", log_file=self._log("nats"))
        overrides["nats_url"] = self.nats.start()
        self.temporal = EmbeddedTemporal(
            self.data_dir / "temporal", headless=not self.with_ui, log_file=self._log("temporal")
        )
        overrides["temporal_address"] = self.temporal.start()
        port = free_port(self.api_port)
        if port != self.api_port:
            log.warning("port %d is taken; the api listens on %d", self.api_port, port)
        overrides["api_port"] = str(port)
        overrides["api_host"] = "127.0.0.1"
        overrides["api_url"] = f"http://127.0.0.1:{port}"
        overrides["temporal_namespace"] = self.settings.temporal_namespace
        secret = self.settings.secret_key or load_or_create_secret(self.data_dir / "secret.key")
        overrides["secret_key"] = secret
        self.api_key = self.settings.client_api_key() or load_or_create_secret(
            self.data_dir / "api.key", generate_api_key
        )
        overrides["api_keys"] = self.settings.api_keys or self.api_key
        self.env = service_env(**overrides) | self.service_env
        return overrides

    def migrate(self) -> None:
        from netcron.db.migrate import upgrade

        upgrade(self.env["NETCRON_DATABASE_URL"])

    def start_services(self) -> None:
        for name in SERVICES:
            self.processes[name] = self._spawn(name)

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        log_file = self._log(name)
        out = open(log_file, "ab") if log_file else None  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, "-m", "netcron", name],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )

    def _log(self, name: str) -> Path | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / f"{name}.log"

    def start(self, timeout: float = 90) -> None:
        self.start_servers()
        self.migrate()
        self.start_services()
        asyncio.run(self.wait_ready(timeout))

    def kill(self, name: str) -> None:
        """SIGKILL one service, as a crash would (for failure tests)."""
        proc = self.processes[name]
        proc.kill()
        proc.wait(10)

    def restart(self, name: str) -> None:
        self.processes[name] = self._spawn(name)

    def pause(self, name: str) -> None:
        """SIGSTOP one service: it holds its connections and its tasks, and does nothing."""
        self.processes[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGCONT)

    def server(self, name: str) -> EmbeddedPostgres | EmbeddedNats | EmbeddedTemporal:
        """One embedded server by name: ``postgres``, ``nats`` or ``temporal``."""
        server = {"postgres": self.postgres, "nats": self.nats, "temporal": self.temporal}[name]
        if server is None:
            raise EmbeddedServerError(f"{name} is not an embedded server of this stack")
        return server

    def stop_server(self, name: str) -> None:
        self.server(name).stop()

    def start_server(self, name: str) -> None:
        """Start a stopped server again where it was: the services find it at the same URL."""
        self.server(name).start_again()

    def dead_services(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.poll() is not None]

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the api is ready and a worker and an executor are polling for work."""
        deadline = time.monotonic() + timeout
        waiting = "the api"
        async with httpx.AsyncClient(
            base_url=self.api_url, timeout=2, headers={"X-API-Key": self.api_key}
        ) as client:
            while time.monotonic() < deadline:
                dead = self.dead_services()
                if dead:
                    raise EmbeddedServerError(f"{', '.join(dead)} exited while starting")
                not_ready = await self._not_ready(client)
                if not not_ready:
                    return
                waiting = not_ready
                await asyncio.sleep(0.2)
        raise EmbeddedServerError(
            f"netcron did not become ready in {timeout:.0f}s: waiting for {waiting}"
        )

    async def _not_ready(self, client: httpx.AsyncClient) -> str | None:
        try:
            response = await client.get("/ready")
        except httpx.HTTPError:
            return "the api"
        if response.status_code != 200:
            return f"the api's dependencies ({response.text})"
        if not await self._has_pollers():
            return "a worker and an executor"
        return None

    async def _has_pollers(self) -> bool:
        from netcron.broker.jetstream import connect_nats
        from netcron.messages import (
            EXECUTORS_CONSUMER,
            RELAY_CONSUMER,
            RESULTS_STREAM,
            TASKS_STREAM,
        )

        nc = await connect_nats(self.env["NETCRON_NATS_URL"], "netcron-dev", timeout=2)
        try:
            js = nc.jetstream()
            for stream, consumer in (
                (TASKS_STREAM, EXECUTORS_CONSUMER),
                (RESULTS_STREAM, RELAY_CONSUMER),
            ):
                try:
                    info = await js.consumer_info(stream, consumer)
                except Exception:  # the stream is declared by the services themselves
                    return False
                if not info.num_waiting:
                    return False
        finally:
            await nc.close()
        return await self._worker_polls()

    async def _worker_polls(self) -> bool:
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
        from temporalio.client import Client

        client = await Client.connect(self.env["NETCRON_TEMPORAL_ADDRESS"])
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.settings.temporal_namespace,
                task_queue=TaskQueue(name=self.settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return len(response.pollers) > 0

    def stop(self) -> None:
        """Stop the services first (so none logs a dead dependency), then the servers."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            stop_process(proc, timeout=15)
        self.processes.clear()
        for server in (self.temporal, self.nats, self.postgres):
            if server is not None:
                server.stop()
