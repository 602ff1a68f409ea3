"""`netcron dev`: the whole system on one machine, on embedded servers.

Starts PostgreSQL, NATS with JetStream and the Temporal dev server with its UI (or, with
``external``, uses the configured servers instead), applies migrations, then runs the
api, the worker and the executor as child processes, and stops all of it on Ctrl-C or
SIGTERM: executor and worker first, the api last. A ``.env`` written for the containers
does not move it off its embedded servers. The test session and the benchmark use the
same :class:`DevStack`.
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
#: Services that serve /metrics on a port of their own (the api serves it on its port).
METRICS_SERVICES = ("worker", "executor")
#: Stopped first, so that the worker records its last runs while the api still listens.
STOP_FIRST = ("executor", "worker")
#: Files in the data dir that client commands (`netcron events`) read.
API_URL_FILE = "api.url"
API_KEY_FILE = "api.key"


def load_or_create_secret(path: Path, generate: Callable[[], str] = generate_key) -> str:
    """A secret kept in the data dir (owner-only), generated on first use."""
    if path.exists():
        return path.read_text().strip()
    key = generate()
    write_secret(path, key)
    return key


def write_secret(path: Path, value: str) -> None:
    """``value`` in ``path``, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(value + "\n")


@dataclass
class DevStack:
    """Embedded servers plus the three services, started and stopped as one."""

    settings: Settings
    data_dir: Path
    api_port: int = 8000
    with_ui: bool = True
    service_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    #: Use the configured PostgreSQL, NATS and Temporal instead of embedded servers.
    external: bool = False
    postgres: EmbeddedPostgres | None = field(default=None, init=False)
    nats: EmbeddedNats | None = field(default=None, init=False)
    temporal: EmbeddedTemporal | None = field(default=None, init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    env: dict[str, str] = field(default_factory=dict, init=False)
    #: The port each of METRICS_SERVICES serves /metrics on.
    metrics_ports: dict[str, int] = field(default_factory=dict, init=False)
    api_key: str = field(default="", init=False, repr=False)

    @property
    def api_url(self) -> str:
        return self.env["NETCRON_API_URL"]

    @property
    def metrics_urls(self) -> dict[str, str]:
        """Where each service serves its metrics."""
        urls = {"api": f"{self.api_url}/metrics"}
        for name, port in self.metrics_ports.items():
            urls[name] = f"http://127.0.0.1:{port}/metrics"
        return urls

    @property
    def ui_url(self) -> str | None:
        return self.temporal.ui_url if self.temporal else None

    @property
    def servers(self) -> str:
        """Which servers the stack uses, for the ready line."""
        if not self.external:
            return "embedded PostgreSQL, NATS and Temporal"
        from netcron.external_servers import redact_url

        return (
            f"external PostgreSQL {redact_url(self.env['NETCRON_DATABASE_URL'])}, "
            f"NATS {','.join(map(redact_url, self.env['NETCRON_NATS_URL'].split(',')))},"
            f" Temporal {self.env['NETCRON_TEMPORAL_ADDRESS']}"
        )

    def start_servers(self) -> dict[str, str]:
        """Start the embedded servers (or check the external ones); return their settings."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port(self.api_port)
        if port != self.api_port:
            log.warning("port %d is taken; the api listens on %d", self.api_port, port)
        api_url = f"http://127.0.0.1:{port}"
        overrides: dict[str, str] = {}
        if self.external:
            from netcron.external_servers import check_external

            check_external(self.settings)
            overrides["database_url"] = self.settings.database_url
            overrides["nats_url"] = self.settings.nats_url
            overrides["temporal_address"] = self.settings.temporal_address
        else:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            overrides["database_url"] = self.postgres.start()
            self.nats = EmbeddedNats(self.data_dir / "nats", log_file=self._log("nats"))
            overrides["nats_url"] = self.nats.start()
            self.temporal = EmbeddedTemporal(
                self.data_dir / "temporal",
                headless=not self.with_ui,
                log_file=self._log("temporal"),
                codec_endpoint=f"{api_url}/codec",
            )
            overrides["temporal_address"] = self.temporal.start()
            if self.temporal.ui_port:
                overrides["codec_origins"] = ",".join(
                    f"http://{host}:{self.temporal.ui_port}" for host in ("127.0.0.1", "localhost")
                )
        overrides["api_port"] = str(port)
        overrides["api_host"] = "127.0.0.1"
        overrides["api_url"] = api_url
        overrides["temporal_namespace"] = self.settings.temporal_namespace
        secret = self.settings.secret_key or load_or_create_secret(self.data_dir / "secret.key")
        overrides["secret_key"] = secret
        self.api_key = self.settings.client_api_key() or load_or_create_secret(
            self.data_dir / API_KEY_FILE, generate_api_key
        )
        overrides["api_keys"] = self.settings.api_keys or self.api_key
        # What a client in this checkout needs (`netcron events`): where, and with which key.
        write_secret(self.data_dir / API_KEY_FILE, self.api_key)
        (self.data_dir / API_URL_FILE).write_text(api_url + "\n")
        self.env = service_env(**overrides) | self.service_env
        for name in METRICS_SERVICES:
            metrics_port = free_port(None)
            while metrics_port in {port, *self.metrics_ports.values()}:
                metrics_port = free_port(None)
            self.metrics_ports[name] = metrics_port
        return overrides

    def migrate(self) -> None:
        from netcron.db.migrate import upgrade

        url = self.env["NETCRON_DATABASE_URL"]
        if not self.external:
            upgrade(url)
            return
        from netcron.external_servers import ServerUnusable, redact_url

        try:
            upgrade(url)
        except Exception as exc:  # a database netcron may not write to: say so in one line
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise ServerUnusable(
                "NETCRON_DATABASE_URL",
                redact_url(url),
                f"migrations failed, {type(exc).__name__}: {reason}",
            ) from None

    def start_services(self) -> None:
        for name in SERVICES:
            self.processes[name] = self._spawn(name)

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        log_file = self._log(name)
        out = open(log_file, "ab") if log_file else None  # noqa: SIM115
        # A session of its own: Ctrl-C in the terminal reaches `netcron dev` only, which
        # then stops the services in order (the api last).
        env = self.env
        if name in self.metrics_ports:
            env = env | {"NETCRON_METRICS_PORT": str(self.metrics_ports[name])}
        return subprocess.Popen(
            [sys.executable, "-m", "netcron", name],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
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
        """Stop the services first (so none logs a dead dependency), then the servers.

        Executor and worker stop before the api: the worker records its last runs
        through the api on its way out.
        """
        first = [self.processes[name] for name in STOP_FIRST if name in self.processes]
        for proc in first:
            if proc.poll() is None:
                proc.terminate()
        for proc in first:
            stop_process(proc, timeout=15)
        for proc in self.processes.values():
            stop_process(proc, timeout=15)
        self.processes.clear()
        for server in (self.temporal, self.nats, self.postgres):
            if server is not None:
                server.stop()
