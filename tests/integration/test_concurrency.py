"""Deleted means deleted, under concurrency, on the whole real stack (issue #10).

Eight clients create, patch, pause, resume, run now and delete devices, commands and
schedules for 20 s against two api replicas (the session's, reconciling every 2 s, and
one started here reconciling every 1 s), while `*/1` and `*/2` second schedules fire
and their results are recorded. Then:

- no answer >= 500, to the clients or to the worker (the api logs every 500 it gives);
- no task published for a schedule after a DELETE of it, its command or its device
  answered 204; none (but run-now) after a PATCH that paused it answered, unless a
  resume of it was sent before the task and did not end before that pause began;
- no running ScheduleWorkflow without a row, no row without its workflow (and the
  workflow holds the row's spec version and active state); no row and no result row
  left for anything whose delete answered 204.

"Published after the answer" is decided exactly, by order, not by clocks: one NATS
connection (the tap) subscribes to the task subjects and to a marker subject, and the
client publishes a marker on that connection right after each answer arrives (and,
flushed, right before each resume is sent). The server delivers to one connection in
the order it processed the messages, so a task that reaches the tap after the marker
was accepted by the broker after the answer had arrived. (A task accepted between the
answer being sent and the marker is missed, never wrongly blamed.) A task re-sent with
a Nats-Msg-Id the tap already saw is one the broker drops, so only its first send counts.
The invariants are checked after the clients stop and 5 s pass (several reconciliations).

The seed is printed; rerun one with NETCRON_CONC_SEED=<seed>.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from nats.aio.client import Client as NatsClient
from temporalio.client import Client

from netcron.dev import DevStack
from netcron.devstack import free_port, stop_process
from netcron.messages import TaskMessage

from .test_pipeline import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CLIENTS = 8
DURATION = 20.0
MAX_DEVICES = 5
MAX_SCHEDULES = 14
CRONS = ("* * * * * *", "*/1 * * * * *", "*/2 * * * * *")
PLATFORMS = ("cisco_ios", "arista_eos", "juniper_junos", "linux")
UNHANDLED = "unhandled error on"


class OrderedTap(NatsClient):
    """A NATS client that notes every message in the order the server sent them.

    nats-py hands each subscription's messages to its own queue, which loses the order
    across subscriptions; the parser calls ``_process_msg`` in wire order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, str, bytes]] = []

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes
    ) -> None:
        name = subject.decode() if isinstance(subject, bytes) else str(subject)
        self.seen.append((time.monotonic(), name, bytes(data)))
        await super()._process_msg(sid, subject, reply, data, headers)


@dataclass
class Op:
    kind: str
    method: str
    url: str
    body: Any
    device_id: str | None = None
    command_id: str | None = None
    schedule_id: str | None = None
    start: int = 0  # marker ids
    end: int = 0
    status: int | None = None
    sent_at: float = 0.0
    answered_at: float = 0.0
    answered_wall: datetime | None = None
    text: str = ""


@dataclass
class World:
    """What the clients know; shared by the client loops of one event loop."""

    rng: random.Random
    tap: OrderedTap
    marker_subject: str
    devices: dict[str, str] = field(default_factory=dict)  # id -> platform
    commands: dict[str, str] = field(default_factory=dict)  # id -> device id
    schedules: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> device, command
    alive_devices: set[str] = field(default_factory=set)
    alive_commands: set[str] = field(default_factory=set)
    alive_schedules: set[str] = field(default_factory=set)
    ops: list[Op] = field(default_factory=list)
    markers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def mark(self, flush: bool = False) -> int:
        marker = next(self.markers)
        await self.tap.publish(self.marker_subject, str(marker).encode())
        if flush:  # the server has it before we go on
            await self.tap.flush(timeout=10)
        return marker

    async def call(self, client: httpx.AsyncClient, op: Op) -> httpx.Response | None:
        op.start = await self.mark(flush=op.kind == "resume")
        response: httpx.Response | None = None
        op.sent_at = time.monotonic()
        try:
            response = await client.request(op.method, op.url, json=op.body)
            op.status = response.status_code
            op.text = response.text[:500]
        except httpx.HTTPError as exc:
            op.text = f"{type(exc).__name__}: {exc}"
        op.answered_at = time.monotonic()
        op.answered_wall = datetime.now(UTC)
        op.end = await self.mark()
        self.ops.append(op)
        return response


def schedule_path(device_id: str, command_id: str, schedule_id: str) -> str:
    return f"/devices/{device_id}/commands/{command_id}/schedules/{schedule_id}"


async def one_operation(world: World, client: httpx.AsyncClient) -> None:
    rng = world.rng
    choices: list[tuple[str, float]] = [
        ("create_device", 3.0 if len(world.alive_devices) < MAX_DEVICES else 0.0),
        ("create_command", 3.0 if world.alive_devices else 0.0),
        (
            "create_schedule",
            5.0 if world.alive_commands and len(world.alive_schedules) < MAX_SCHEDULES else 0.0,
        ),
    ]
    if world.alive_schedules:
        choices += [
            ("patch", 3.0),
            ("pause", 3.0),
            ("resume", 3.0),
            ("run_now", 3.0),
            ("delete_schedule", 2.0),
        ]
    if world.alive_commands:
        choices += [("patch_command", 1.0), ("delete_command", 1.0)]
    if world.alive_devices:
        choices += [("delete_device", 0.7)]
    kinds, weights = zip(*choices, strict=True)
    kind = rng.choices(kinds, weights)[0]

    if kind == "create_device":
        platform = rng.choice(PLATFORMS)
        body = {"name": f"conc-{uuid.uuid4().hex[:10]}", "host": "192.0.2.30"}
        body |= {"platform": platform, "username": "u", "password": "p"}
        response = await world.call(client, Op(kind, "POST", "/devices", body))
        if response is not None and response.status_code == 201:
            device_id = response.json()["id"]
            world.devices[device_id] = platform
            world.alive_devices.add(device_id)
        return

    if kind == "create_command":
        device_id = rng.choice(sorted(world.alive_devices))
        body = {"name": "intf", "text": "show interfaces {ifname}", "params": {"ifname": "Gi0/1"}}
        op = Op(kind, "POST", f"/devices/{device_id}/commands", body, device_id=device_id)
        response = await world.call(client, op)
        if response is not None and response.status_code == 201:
            command_id = response.json()["id"]
            world.commands[command_id] = device_id
            if device_id in world.alive_devices:
                world.alive_commands.add(command_id)
        return

    if kind == "create_schedule":
        command_id = rng.choice(sorted(world.alive_commands))
        device_id = world.commands[command_id]
        url = f"/devices/{device_id}/commands/{command_id}/schedules"
        op = Op(kind, "POST", url, {"cron": rng.choice(CRONS)}, device_id, command_id)
        response = await world.call(client, op)
        if response is not None and response.status_code == 201:
            schedule_id = response.json()["id"]
            op.schedule_id = schedule_id
            world.schedules[schedule_id] = (device_id, command_id)
            if command_id in world.alive_commands:
                world.alive_schedules.add(schedule_id)
        return

    if kind in ("patch_command", "delete_command"):
        command_id = rng.choice(sorted(world.alive_commands))
        device_id = world.commands[command_id]
        url = f"/devices/{device_id}/commands/{command_id}"
        if kind == "patch_command":
            body = {"text": rng.choice(["show interfaces {ifname}", "show run int {ifname}"])}
            await world.call(client, Op(kind, "PATCH", url, body, device_id, command_id))
            return
        response = await world.call(client, Op(kind, "DELETE", url, None, device_id, command_id))
        if response is not None and response.status_code in (204, 404):
            world.alive_commands.discard(command_id)
            world.alive_schedules -= {s for s, (_, c) in world.schedules.items() if c == command_id}
        return

    if kind == "delete_device":
        device_id = rng.choice(sorted(world.alive_devices))
        op = Op(kind, "DELETE", f"/devices/{device_id}", None, device_id=device_id)
        response = await world.call(client, op)
        if response is not None and response.status_code in (204, 404):
            world.alive_devices.discard(device_id)
            world.alive_commands -= {c for c, d in world.commands.items() if d == device_id}
            world.alive_schedules -= {s for s, (d, _) in world.schedules.items() if d == device_id}
        return

    schedule_id = rng.choice(sorted(world.alive_schedules))
    device_id, command_id = world.schedules[schedule_id]
    path = schedule_path(device_id, command_id, schedule_id)
    ids = (device_id, command_id, schedule_id)
    if kind == "patch":
        body = rng.choice(
            [{"cron": rng.choice(CRONS)}, {"params": {"ifname": f"Gi0/{rng.randint(1, 48)}"}}]
        )
        await world.call(client, Op(kind, "PATCH", path, body, *ids))
    elif kind == "pause":
        await world.call(client, Op(kind, "PATCH", path, {"is_active": False}, *ids))
    elif kind == "resume":
        await world.call(client, Op(kind, "PATCH", path, {"is_active": True}, *ids))
    elif kind == "run_now":
        await world.call(client, Op(kind, "POST", f"{path}/runs", None, *ids))
    else:
        response = await world.call(client, Op(kind, "DELETE", path, None, *ids))
        if response is not None and response.status_code in (204, 404):
            world.alive_schedules.discard(schedule_id)


async def client_loop(world: World, client: httpx.AsyncClient, until: float) -> None:
    while time.monotonic() < until:
        await one_operation(world, client)
        await asyncio.sleep(world.rng.uniform(0.0, 0.3))


@pytest.fixture
async def second_api(stack: DevStack, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """Another api replica on the same database, reconciling every second."""
    port = free_port(None)
    log_file = tmp_path / "api2.log"
    env = stack.env | {
        "NETCRON_API_PORT": str(port),
        "NETCRON_API_URL": f"http://127.0.0.1:{port}",
        "NETCRON_RECONCILE_INTERVAL": "1",
    }
    proc = _spawn_api(env, log_file)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as probe:

            async def ready() -> bool:
                try:
                    return (await probe.get("/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=30)
        yield url, log_file
    finally:
        stop_process(proc)


def _spawn_api(env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with open(log_file, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "netcron", "api"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _errors_in_log(path: Path, offset: int) -> list[str]:
    """Each 500 the api logged since ``offset``: its request line and its exception."""
    if not path.exists():
        return []
    with open(path, "rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
    errors: list[str] = []
    for index, line in enumerate(lines):
        if UNHANDLED not in line:
            continue
        request = line.split(UNHANDLED, 1)[1].replace(" service=api", "").strip()
        cause = next(
            (
                later.strip()
                for later in lines[index + 1 : index + 200]
                if later[:1].isalpha()
                and not later.startswith(("Traceback", "The above"))
                and ":" in later
            ),
            "?",
        )
        errors.append(f"{request}: {cause[:300]}")
    return errors


async def test_deleted_means_deleted_under_concurrency(
    stack: DevStack, temporal: Client, second_api: tuple[str, Path]
) -> None:
    seed = int(os.environ.get("NETCRON_CONC_SEED") or random.randrange(2**31))
    print(f"seed: {seed} (rerun with NETCRON_CONC_SEED={seed})")
    api2_url, api2_log = second_api
    assert stack.log_dir is not None
    api_log = stack.log_dir / "api.log"
    api_log_offset = _log_size(api_log)

    tap = OrderedTap()
    await tap.connect(servers=[stack.env["NETCRON_NATS_URL"]], name="conctest-tap")

    async def ignore(msg: Any) -> None:
        return None

    marker_subject = f"conctest.markers.{uuid.uuid4().hex}"
    await tap.subscribe("netcron.tasks.>", cb=ignore)
    await tap.subscribe(marker_subject, cb=ignore)
    await tap.flush()
    world = World(rng=random.Random(seed), tap=tap, marker_subject=marker_subject)

    headers = {"X-API-Key": stack.api_key}
    clients = [
        httpx.AsyncClient(base_url=url, headers=headers, timeout=20)
        for url in (stack.api_url, api2_url)
    ]
    started = time.monotonic()
    clients_ran = 0.0
    try:
        until = started + DURATION
        await asyncio.gather(*(client_loop(world, clients[i % 2], until) for i in range(CLIENTS)))
        clients_ran = time.monotonic() - started
        # Quiesce: runs in flight finish and record, and both replicas reconcile.
        await asyncio.sleep(5)
        await tap.flush()
    finally:
        for client in clients:
            await client.aclose()
        await tap.close()

    ops = world.ops
    print(
        f"{len(ops)} requests in {clients_ran:.1f}s: "
        f"{dict(Counter((op.kind, op.status) for op in ops))}"
    )

    # --- 1. No answer >= 500: to the clients, and to the worker (from the api logs).
    failed = [op for op in ops if op.status is None or op.status >= 500]
    logged = _errors_in_log(api_log, api_log_offset) + _errors_in_log(api2_log, 0)
    problems: list[str] = [
        f"{n} x {kind} answered {status}"
        for (kind, status), n in Counter((op.kind, op.status) for op in failed).items()
    ]
    problems += [f"{op.method} {op.url} {op.body} -> {op.status}: {op.text}" for op in failed[:3]]
    causes = Counter((line.split()[0], line.split(": ", 1)[1].split(":")[0]) for line in logged)
    problems += [f"api log: {n} x {method} ... {cause}" for (method, cause), n in causes.items()]
    problems += [f"api log: {line}" for line in logged[:3]]

    # --- 2. Tasks against the answers, by the order the tap saw them in.
    marker_pos: dict[int, int] = {}
    tasks: list[tuple[int, float, TaskMessage]] = []
    published: set[str] = set()
    for position, (seen_at, subject, data) in enumerate(tap.seen):
        if subject == marker_subject:
            marker_pos[int(data)] = position
        elif subject.startswith("netcron.tasks."):
            task = TaskMessage.model_validate_json(data)
            # A re-sent publish (same Nats-Msg-Id) is dropped by the broker: not published.
            if task.msg_id not in published:
                published.add(task.msg_id)
                tasks.append((position, seen_at, task))
    print(f"tap: {len(tasks)} tasks, {len(marker_pos)} markers")
    mine = [t for t in tasks if str(t[2].schedule_id) in world.schedules]
    assert len(mine) >= 20, f"too few tasks of this test's schedules to judge: {len(mine)}"

    def start(op: Op) -> int:
        return marker_pos[op.start]

    def end(op: Op) -> int:
        return marker_pos[op.end]

    def covers(op: Op, schedule_id: str) -> bool:
        device_id, command_id = world.schedules[schedule_id]
        if op.kind == "delete_device":
            return op.device_id == device_id
        if op.kind == "delete_command":
            return op.command_id == command_id
        return op.schedule_id == schedule_id

    deletes = [op for op in ops if op.kind.startswith("delete_") and op.status == 204]
    deleted: dict[str, Op] = {}  # schedule id -> the first delete that answered for it
    for op in sorted(deletes, key=end):
        for schedule_id in world.schedules:
            if covers(op, schedule_id):
                deleted.setdefault(schedule_id, op)
    created = {op.schedule_id: op for op in ops if op.kind == "create_schedule" and op.schedule_id}
    pauses: dict[str, list[Op]] = {}
    resumes: dict[str, list[Op]] = {}
    for op in ops:
        if op.kind == "pause" and op.status == 200:
            pauses.setdefault(str(op.schedule_id), []).append(op)
        elif op.kind == "resume":  # whatever it answered, it may have taken effect
            resumes.setdefault(str(op.schedule_id), []).append(op)

    after_delete: list[str] = []
    after_pause: list[str] = []
    for position, seen_at, task in mine:
        schedule_id = str(task.schedule_id)
        gone = deleted.get(schedule_id)
        if gone is not None and position > end(gone):
            create = created[schedule_id]
            raced = " (its create was still in flight)" if end(create) > start(gone) else ""
            after_delete.append(
                f"{task.run_id} published {seen_at - gone.answered_at:+.3f}s after "
                f"{gone.method} {gone.url} answered {gone.status}{raced}"
            )
            continue
        if ":manual-" in task.run_id:
            continue  # run-now runs paused schedules too
        for pause in pauses.get(schedule_id, []):
            if position < end(pause):
                continue
            if any(
                start(r) < position and end(r) > start(pause) for r in resumes.get(schedule_id, [])
            ):
                continue
            after_pause.append(
                f"{task.run_id} published {seen_at - pause.answered_at:+.3f}s after "
                f"the pause ({pause.url}) answered"
            )
            break

    suspects = dict.fromkeys(line.split(":", 1)[0] for line in after_pause + after_delete)
    for schedule_id in list(suspects)[:8]:
        print(f"timeline of {schedule_id} (s since start, tap order):")
        device_id, command_id = world.schedules[schedule_id]
        events = [
            (marker_pos[op.end], op.answered_at, f"{op.kind} answered {op.status}")
            for op in ops
            if op.schedule_id == schedule_id
            or (op.kind in ("delete_command", "patch_command") and op.command_id == command_id)
            or (op.kind == "delete_device" and op.device_id == device_id)
        ]
        events += [
            (marker_pos[op.start], op.sent_at, f"  ({op.kind} sent)")
            for op in ops
            if op.schedule_id == schedule_id and op.kind in ("pause", "resume", "patch")
        ]
        events += [
            (p, t, f"task {m.run_id}") for p, t, m in mine if str(m.schedule_id) == schedule_id
        ]
        for _, at, what in sorted(events):
            print(f"  {at - started:7.3f} {what}")

    # --- 3. Temporal against PostgreSQL.
    query = "WorkflowType = 'ScheduleWorkflow' AND ExecutionStatus = 'Running'"
    running = {
        execution.id.removeprefix("schedule-"): execution.start_time
        async for execution in temporal.list_workflows(query)
    }
    url = stack.env["NETCRON_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url)
    try:
        rows = {
            str(r["id"]): r
            for r in await conn.fetch("SELECT id, spec_version, is_active FROM schedules")
        }
        gone_ids = list(deleted)
        left_schedules = await conn.fetch(
            "SELECT id::text FROM schedules WHERE id::text = ANY($1::text[])", gone_ids
        )
        left_results = await conn.fetch(
            "SELECT schedule_id::text, run_id, status FROM command_results"
            " WHERE schedule_id::text = ANY($1::text[])",
            gone_ids,
        )
        deleted_devices = [op.device_id for op in deletes if op.kind == "delete_device"]
        deleted_commands = [op.command_id for op in deletes if op.kind == "delete_command"]
        left_devices = await conn.fetch(
            "SELECT id::text FROM devices WHERE id::text = ANY($1::text[])", deleted_devices
        )
        left_commands = await conn.fetch(
            "SELECT id::text FROM commands WHERE id::text = ANY($1::text[])", deleted_commands
        )
    finally:
        await conn.close()
    without_row = sorted(set(running) - set(rows))
    without_workflow = sorted(set(rows) - set(running))
    drifted: list[str] = []
    for schedule_id in sorted(set(rows) & set(running) & set(world.schedules)):
        state = await temporal.get_workflow_handle(f"schedule-{schedule_id}").query(
            "state", result_type=dict
        )
        row = rows[schedule_id]
        if state["version"] != row["spec_version"] or state["active"] != row["is_active"]:
            drifted.append(
                f"{schedule_id}: row v{row['spec_version']} active={row['is_active']}, "
                f"workflow v{state['version']} active={state['active']}"
            )

    print(
        f"deleted schedules: {len(deleted)}, pauses: {sum(map(len, pauses.values()))}, "
        f"running workflows: {len(running)}, schedule rows: {len(rows)}"
    )

    def whose(schedule_id: str) -> str:
        if schedule_id in deleted:
            op = deleted[schedule_id]
            assert op.answered_wall is not None
            lag = (running[schedule_id] - op.answered_wall).total_seconds()
            return f"workflow started {lag:+.2f}s after {op.method} {op.url} answered {op.status}"
        return "this test's" if schedule_id in world.schedules else "not made by this test"

    findings = {
        "answers >= 500 (or no answer)": problems,
        "tasks published after a delete answered": after_delete,
        "tasks published after a pause answered": after_pause,
        "running workflows without a row": [f"{s} ({whose(s)})" for s in without_row],
        "rows without a running workflow": without_workflow,
        "workflows whose spec differs from the row": drifted,
        "schedule rows left after their delete answered": [r["id"] for r in left_schedules],
        "result rows of deleted schedules": [
            f"{r['schedule_id']} {r['run_id']} {r['status']}" for r in left_results
        ],
        "device rows left after their delete answered": [r["id"] for r in left_devices],
        "command rows left after their delete answered": [r["id"] for r in left_commands],
    }
    report = "\n".join(
        f"{name}: {len(items)}\n" + "\n".join(f"    {item}" for item in items[:12])
        for name, items in findings.items()
        if items
    )
    assert not report, f"seed {seed}:\n{report}"
