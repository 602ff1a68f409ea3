"""`netcron bench-ssh`: the SSH executor against simulated devices, at the executor level.

Three processes on this machine: an embedded NATS, `netcron simulate` (the devices) and
`netcron executor` with the SSH driver. This process plays the workflows: each round it
publishes one task per device, all due on the same second (as ``* * * * *`` schedules
fire), and collects the results. It reports per round what ran, missed or failed, the
burst's runs/s, start lag, session-open and command times (from the executor's log),
and the executor's CPU per run and peak RSS, sampled with the number of SSH sessions it
held open at once. It is a measurement, not a test.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import psutil

from netcron.crypto import CredentialCipher, Credentials, generate_key
from netcron.devstack import EmbeddedNats
from netcron.messages import ResultMessage, TaskMessage
from netcron.platforms import PLATFORMS
from netcron.runs import RunStatus

PASSWORD = "bench-password"
ENABLE = "bench-enable"
#: Tasks are published this long before their second; the executor holds them until then.
LEAD = 0.5


@dataclass
class Sampler:
    """Samples a process: CPU seconds, peak RSS, and peak TCP connections to some ports."""

    process: psutil.Process
    ports: set[int]
    peak_rss: int = 0
    peak_sessions: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def sample(self) -> None:
        rss = int(self.process.memory_info().rss)
        sessions = sum(
            1
            for conn in self.process.net_connections(kind="tcp")
            if conn.raddr and conn.raddr.port in self.ports and conn.status == "ESTABLISHED"
        )
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_sessions = max(self.peak_sessions, sessions)
        self.samples.append((time.time(), rss, sessions))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            await asyncio.sleep(0.1)


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "netcron", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE if args[0] == "simulate" else log.open("wb"),
        stderr=log.open("ab") if args[0] == "simulate" else subprocess.STDOUT,
    )


async def _until(results: dict[str, ResultMessage], run_ids: list[str], end: float) -> None:
    """Poll until every run has its final result or the wall clock reaches ``end``."""
    for _ in range(int(max(0.0, end - time.time()) / 0.1) + 1):
        if all(run_id in results for run_id in run_ids):
            return
        await asyncio.sleep(0.1)


def _timings(log: Path) -> dict[str, tuple[float, float]]:
    """run_id → (session open ms, command ms), from the executor's JSON log lines."""
    found: dict[str, tuple[float, float]] = {}
    for line in log.read_text().splitlines():
        if '"connect_ms"' not in line:
            continue
        record = json.loads(line)
        found[record["run_id"]] = (float(record["connect_ms"]), float(record["command_ms"]))
    return found


async def _bench(
    devices: int, rounds: int, interval: float, latency: float, concurrency: int, work: Path
) -> dict[str, Any]:
    server = EmbeddedNats(work / "nats", log_file=work / "nats.log")
    url = server.start(preferred_port=None)
    key = generate_key()
    per_platform = math.ceil(devices / len(PLATFORMS))
    simulator = _spawn(
        [
            "simulate",
            "--per-platform",
            str(per_platform),
            "--password",
            PASSWORD,
            "--enable-secret",
            ENABLE,
            "--latency",
            str(latency),
            "--json",
        ],
        {},
        work / "simulate.log",
    )
    executor: subprocess.Popen[bytes] | None = None
    try:
        assert simulator.stdout is not None
        line = await asyncio.to_thread(simulator.stdout.readline)
        listed = json.loads(line)
        # round-robin over platforms, so any count mixes them
        by_platform = [[d for d in listed if d["platform"] == p] for p in PLATFORMS]
        targets = [group[i] for i in range(per_platform) for group in by_platform][:devices]
        env = {
            "NETCRON_NATS_URL": url,
            "NETCRON_SECRET_KEY": key,
            "NETCRON_EXECUTOR_DRIVER": "ssh",
            "NETCRON_EXECUTOR_CONCURRENCY": str(concurrency),
            "NETCRON_EXECUTOR_ID": "bench-executor",
            "NETCRON_LOG_FORMAT": "json",
            "NETCRON_LOG_LEVEL": "INFO",
        }
        executor_log = work / "executor.log"
        executor = _spawn(["executor"], env, executor_log)
        sampler = Sampler(psutil.Process(executor.pid), {int(d["port"]) for d in targets})
        cipher = CredentialCipher(key)
        token = cipher.encrypt(Credentials(password=PASSWORD, enable_secret=ENABLE))
        device_ids = [uuid.uuid4() for _ in targets]
        nc = await nats.connect(url)
        js = nc.jetstream()
        results: dict[str, ResultMessage] = {}

        async def on_result(msg: Any) -> None:
            result = ResultMessage.model_validate_json(msg.data)
            if result.status != RunStatus.RUNNING:
                results[result.run_id] = result

        await nc.subscribe("netcron.results.>", cb=on_result)
        while "consuming" not in executor_log.read_text():
            if executor.poll() is not None:
                raise RuntimeError(f"the executor exited; see {executor_log}")
            await asyncio.sleep(0.1)
        stop = asyncio.Event()
        sampling = asyncio.create_task(sampler.run(stop))
        cpu_start = sampler.cpu()
        idle_rss = int(sampler.process.memory_info().rss)
        first = math.ceil(time.time()) + 2
        report: list[dict[str, Any]] = []
        for index in range(rounds):
            due = datetime.fromtimestamp(first + index * interval, UTC)
            await asyncio.sleep(max(0.0, due.timestamp() - LEAD - time.time()))
            cpu_before = sampler.cpu()
            run_ids = []
            for device_id, target in zip(device_ids, targets, strict=True):
                task = TaskMessage(
                    run_id=f"{device_id}:{int(due.timestamp())}",
                    schedule_id=device_id,
                    device_id=device_id,
                    command_id=device_id,
                    scheduled_at=due,
                    deadline=due + timedelta(seconds=interval),
                    platform=target["platform"],
                    host=target["host"],
                    port=int(target["port"]),
                    username=target["username"],
                    credentials=token,
                    command="show version" if target["platform"] != "linux" else "uname -a",
                    timeout=30,
                    connect_timeout=15,
                )
                run_ids.append(task.run_id)
                await js.publish(
                    task.subject,
                    task.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": task.msg_id},
                )
            await _until(results, run_ids, due.timestamp() + interval)
            ran = [results[r] for r in run_ids if r in results]
            ok = [r for r in ran if r.status == RunStatus.SUCCEEDED]
            finished = [r.finished_at.timestamp() for r in ran if r.finished_at]
            span = (max(finished) - due.timestamp()) if finished else None
            timings = _timings(executor_log)
            connect = [timings[r.run_id][0] for r in ok if r.run_id in timings]
            command = [timings[r.run_id][1] for r in ok if r.run_id in timings]
            lag = [
                round((r.started_at - due).total_seconds() * 1000, 1) for r in ran if r.started_at
            ]
            cpu = sampler.cpu() - cpu_before
            row = {
                "round": index + 1,
                "expected": len(run_ids),
                "succeeded": len(ok),
                "failed": len(ran) - len(ok),
                "missed": len(run_ids) - len(ran),
                "errors": sorted({r.error_kind or "" for r in ran if r.status != "succeeded"}),
                "burst_seconds": round(span, 2) if span else None,
                "runs_per_second": round(len(ok) / span, 1) if span else None,
                "start_lag_ms_p50_p99": [_percentile(lag, 0.5), _percentile(lag, 0.99)],
                "connect_ms_p50_p99": [_percentile(connect, 0.5), _percentile(connect, 0.99)],
                "command_ms_p50_p99": [_percentile(command, 0.5), _percentile(command, 0.99)],
                "executor_cpu_ms_per_run": round(cpu * 1000 / max(len(ran), 1), 1),
            }
            report.append(row)
            print(json.dumps(row), flush=True)
        stop.set()
        await sampling
        await nc.close()
        return {
            "devices": len(targets),
            "platforms": sorted({t["platform"] for t in targets}),
            "rounds": report,
            "device_latency_s": latency,
            "executor_concurrency": concurrency,
            "executor_cpu_s": round(sampler.cpu() - cpu_start, 2),
            "executor_idle_rss_mib": round(idle_rss / 2**20, 1),
            "executor_peak_rss_mib": round(sampler.peak_rss / 2**20, 1),
            "executor_peak_open_sessions": sampler.peak_sessions,
        }
    finally:
        for process in (executor, simulator):
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        server.stop()


def run_bench_ssh(
    devices: int, rounds: int, interval: float, latency: float, concurrency: int, out: Path
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="netcron-bench-ssh-") as work:
        summary = asyncio.run(_bench(devices, rounds, interval, latency, concurrency, Path(work)))
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"bench-ssh-{stamp}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}), flush=True)
    print(f"written to {path}", flush=True)
    return summary
