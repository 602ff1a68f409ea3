"""`netcron chaos`: the whole stack under steady load, one fault after another.

Starts the stack as `netcron dev` does (embedded PostgreSQL, NATS and Temporal, the api,
worker and executor each its own process), creates schedules firing every second, and
then, while they fire, breaks one thing at a time: kill -9 a service and start it again,
stop a server and start it again on the same port and data, or freeze the executor
(SIGSTOP) for longer than its runs' TTL. Each fault has its own window of seconds; the
report (``chaos_report``) says what the window's fires became. Executors write each
command they start to an execution log (``NETCRON_EXECUTOR_EXECUTION_LOG``), so that a
command run twice for the same run and attempt shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil

from netcron.config import Settings
from netcron.dev import SERVICES, DevStack
from netcron.devstack import free_port
from netcron.executor.executions import read_executions
from netcron.runs import RunStatus
from netcron.tools.chaos_report import (
    FAULTS,
    FLOW_LATENCY,
    FaultReport,
    Row,
    Window,
    analyse,
    expected_fires,
    markdown_table,
)

CRON = "* * * * * *"

log = logging.getLogger(__name__)


@dataclass
class ChaosOptions:
    """The load, the faults and how long each part lasts (seconds)."""

    faults: list[str] = field(default_factory=lambda: list(FAULTS))
    schedules: int = 10
    devices: int = 2
    delay: float = 0.2
    ttl: int = 10
    #: Steady load before the first window, and a window with no fault (0: none).
    warmup: float = 5.0
    baseline: float = 10.0
    #: Load before the fault, how long a killed or stopped process stays down, and how
    #: long the window watches after it is back.
    lead: float = 5.0
    down: float = 3.0
    settle: float = 20.0
    #: How long the executor stays frozen (default: the TTL and 5 s).
    freeze: float = 0.0
    #: How long to wait, once the schedules are paused, for the last runs' final rows.
    patience: float = 60.0
    out: Path = Path("chaos-results")
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; pick from {FAULTS}")
        if self.freeze <= 0:
            self.freeze = self.ttl + 5.0


@dataclass
class ChaosRun:
    """What the suite saw: a report per window, and where the logs are."""

    options: ChaosOptions
    reports: list[FaultReport]
    data_dir: Path
    json_path: Path | None = None

    @property
    def table(self) -> str:
        return markdown_table(self.reports)


def run_chaos(options: ChaosOptions) -> ChaosRun:
    """Start the stack, load it, run the faults, report; the stack is stopped afterwards."""
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="netcron-chaos-"))
    execution_log = data_dir / "executions.log"
    stack = DevStack(
        settings=Settings(_env_file=None),
        data_dir=data_dir,
        api_port=free_port(None),
        with_ui=False,
        log_dir=data_dir / "logs",
        service_env={
            "NETCRON_EMULATED_DELAY_MIN": str(options.delay),
            "NETCRON_EMULATED_DELAY_MAX": str(options.delay),
            "NETCRON_EXECUTOR_EXECUTION_LOG": str(execution_log),
        },
    )
    try:
        stack.start()
        schedules = asyncio.run(_create_load(stack, options))
        time.sleep(options.warmup)
        suite = Suite(stack, options)
        if options.baseline > 0:
            suite.observe("none", "no fault", options.baseline)
        for fault in options.faults:
            suite.inject(fault)
        asyncio.run(_pause(stack, schedules))
        reports = asyncio.run(_reports(stack, schedules, suite, execution_log, options.patience))
    finally:
        stack.stop()
    run = ChaosRun(options=options, reports=reports, data_dir=data_dir)
    run.json_path = _write_json(run)
    return run


@dataclass
class Schedule:
    """One schedule of the load: its id, its cron and its api path."""

    id: str
    cron: str
    path: str


class Suite:
    """Runs the faults one after another, each in its own window of whole seconds."""

    def __init__(self, stack: DevStack, options: ChaosOptions) -> None:
        self.stack = stack
        self.options = options
        self.windows: list[tuple[Window, list[str]]] = []

    def observe(self, fault: str, action: str, seconds: float) -> None:
        start = _next_second()
        end = start + math.ceil(seconds)
        _sleep_until(end)
        self.windows.append((Window(fault, action, start, start, start, end), []))

    def inject(self, fault: str) -> None:
        options = self.options
        start = _next_second()
        _sleep_until(start + options.lead)
        act, action = self._action(fault)
        log.warning("fault %s: %s", fault, action)
        injected_at = time.time()
        act()
        back_at = time.time()
        log.warning("fault %s: back after %.1f s", fault, back_at - injected_at)
        end = math.ceil(back_at + options.settle)
        _sleep_until(end)
        crashed = self._restart_the_dead()
        window = Window(fault, action, start, injected_at, back_at, end)
        self.windows.append((window, crashed))

    def _action(self, fault: str) -> tuple[Callable[[], None], str]:
        stack, down = self.stack, self.options.down
        if fault in SERVICES:

            def kill() -> None:
                stack.kill(fault)
                time.sleep(down)
                stack.restart(fault)

            return kill, f"kill -9, started again after {down:g} s"
        if fault == "freeze":
            seconds = self.options.freeze

            def freeze() -> None:
                stack.pause("executor")
                time.sleep(seconds)
                stack.resume("executor")

            return freeze, f"executor SIGSTOP for {seconds:g} s (TTL {self.options.ttl} s)"

        def restart() -> None:
            stack.stop_server(fault)
            time.sleep(down)
            stack.start_server(fault)

        return restart, f"stopped, started again after {down:g} s"

    def _restart_the_dead(self) -> list[str]:
        """A service that exited by itself is a finding: note it, and start it again."""
        dead = self.stack.dead_services()
        for name in dead:
            log.error("%s exited by itself; starting it again", name)
            self.stack.restart(name)
        return dead


def _next_second() -> int:
    now = time.time()
    second = math.ceil(now)
    time.sleep(second - now)
    return second


def _sleep_until(moment: float) -> None:
    time.sleep(max(moment - time.time(), 0.0))


async def _create_load(stack: DevStack, options: ChaosOptions) -> list[Schedule]:
    schedules: list[Schedule] = []
    tag = uuid.uuid4().hex[:6]
    per_device = math.ceil(options.schedules / options.devices)
    headers = {"X-API-Key": stack.api_key}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as api:
        for number in range(options.devices):
            count = min(per_device, options.schedules - len(schedules))
            if count <= 0:
                break
            device = await _post(
                api,
                "/devices",
                {
                    "name": f"chaos-{tag}-{number}",
                    "host": f"10.9.0.{number + 1}",
                    "platform": "cisco_ios",
                },
            )
            command = await _post(
                api, f"/devices/{device['id']}/commands", {"name": "v", "text": "show version"}
            )
            base = f"/devices/{device['id']}/commands/{command['id']}/schedules"
            for _ in range(count):
                schedule = await _post(api, base, {"cron": CRON, "ttl_seconds": options.ttl})
                schedules.append(Schedule(schedule["id"], CRON, f"{base}/{schedule['id']}"))
    return schedules


async def _post(api: httpx.AsyncClient, path: str, body: dict[str, object]) -> dict[str, str]:
    response = await api.post(path, json=body)
    response.raise_for_status()
    created: dict[str, str] = response.json()
    return created


async def _pause(stack: DevStack, schedules: list[Schedule]) -> None:
    headers = {"X-API-Key": stack.api_key}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as api:
        for schedule in schedules:
            (await api.patch(schedule.path, json={"is_active": False})).raise_for_status()


async def _reports(
    stack: DevStack,
    schedules: list[Schedule],
    suite: Suite,
    execution_log: Path,
    patience: float,
) -> list[FaultReport]:
    crons = {schedule.id: schedule.cron for schedule in schedules}
    expected = [expected_fires(crons, window.start, window.end) for window, _ in suite.windows]
    every_fire = set().union(*expected)
    start = min(window.start for window, _ in suite.windows)
    end = max(window.end for window, _ in suite.windows)
    deadline = time.monotonic() + patience
    while True:
        rows = await _rows(stack, list(crons), start, end)
        final = {(r.schedule_id, r.second) for r in rows if RunStatus(r.status).is_final}
        if every_fire <= final or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    executions = read_executions(execution_log)
    return [
        analyse(window, fires, rows, executions, crashed)
        for (window, crashed), fires in zip(suite.windows, expected, strict=True)
    ]


async def _rows(stack: DevStack, schedule_ids: list[str], start: int, end: int) -> list[Row]:
    url = stack.env["NETCRON_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url)
    try:
        records = await conn.fetch(
            "SELECT schedule_id, scheduled_at, status, error, updated_at FROM command_results"
            " WHERE schedule_id = ANY($1::uuid[]) AND scheduled_at >= $2 AND scheduled_at < $3",
            schedule_ids,
            datetime.fromtimestamp(start, UTC),
            datetime.fromtimestamp(end, UTC),
        )
    finally:
        await conn.close()
    return [
        Row(
            schedule_id=str(r["schedule_id"]),
            second=int(r["scheduled_at"].timestamp()),
            status=r["status"],
            latency_s=(r["updated_at"] - r["scheduled_at"]).total_seconds(),
            error=r["error"],
        )
        for r in records
    ]


def _write_json(run: ChaosRun) -> Path:
    out = run.options.out
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    options = {k: v for k, v in asdict(run.options).items() if k not in ("out", "data_dir")}
    payload = {
        "taken_at": stamp,
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "options": options,
        "flow_latency_s": FLOW_LATENCY,
        "faults": [asdict(report) for report in run.reports],
    }
    path = out / f"chaos-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
