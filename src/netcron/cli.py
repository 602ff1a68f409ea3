"""The one entry point: `netcron api | worker | executor | migrate | dev | simulate | …`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from netcron.config import Settings, get_settings
from netcron.logging import setup_logging

log = logging.getLogger("netcron")


def _settings(service: str) -> Settings:
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format, service=service)
    return settings


def _service_settings(service: str) -> Settings:
    """Settings, logging and (with an OTLP endpoint) tracing for a long-running service."""
    from netcron.observability.tracing import setup_tracing

    settings = _settings(service)
    setup_tracing(settings, service)
    return settings


def cmd_api(args: argparse.Namespace) -> int:
    from netcron.api.app import run_api

    run_api(_service_settings("api"))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from netcron.workflows.worker import run_worker

    asyncio.run(run_worker(_service_settings("worker")))
    return 0


def cmd_executor(args: argparse.Namespace) -> int:
    from netcron.executor.service import run_executor

    asyncio.run(run_executor(_service_settings("executor")))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from netcron.db.migrate import upgrade

    settings = _settings("migrate")
    upgrade(settings.database_url)
    log.info("database is at the latest migration")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from netcron.crypto import generate_key

    print(generate_key())
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from netcron.devstack import DEV_STACK_HINT, missing_dev_stack

    settings = _settings("dev")
    if not args.external:
        missing = missing_dev_stack()
        if missing:
            print(
                f"netcron dev: {missing} is not installed; {DEV_STACK_HINT}"
                " (or use servers you run yourself: netcron dev --external)",
                file=sys.stderr,
            )
            return 2
    from netcron.dev import DevStack
    from netcron.devstack import EmbeddedServerError

    # The demo's device is a simulated one reached over real SSH, unless a driver is set.
    ssh_demo = args.demo and "executor_driver" not in settings.model_fields_set
    if ssh_demo:
        settings = settings.model_copy(update={"executor_driver": "ssh"})
    stack = DevStack(
        settings=settings,
        data_dir=Path(args.data_dir).resolve(),
        api_port=args.api_port,
        external=args.external,
        service_env={"NETCRON_EXECUTOR_DRIVER": "ssh"} if ssh_demo else {},
    )
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    simulator: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        stack.start()
        took = time.monotonic() - started
        if args.demo:
            from netcron.demo import create_demo

            device = None
            if settings.executor_driver == "ssh":
                simulator, device = _simulated_demo_device()
            asyncio.run(create_demo(stack.api_url, stack.api_key, device))
        ui = (
            f" · Temporal UI: {stack.ui_url} (decoded: {stack.api_url}/codec)"
            if stack.ui_url
            else ""
        )
        print(
            f"netcron is ready in {took:.1f}s on {stack.servers}"
            f" — console: {stack.api_url}/ui · API docs: {stack.api_url}/docs{ui}"
            f" · API key: {stack.api_key}"
            f" · metrics: {', '.join(stack.metrics_urls.values())}"
            f" · data: {stack.data_dir}",
            flush=True,
        )
        while not stopping:
            dead = stack.dead_services()
            if dead:
                log.error("%s exited; stopping netcron dev", ", ".join(dead))
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        log.info("stopping netcron dev")
    except EmbeddedServerError as exc:
        log.error("%s", exc)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        if simulator is not None:
            simulator.terminate()
    log.info("netcron dev stopped")
    return 0


def _simulated_demo_device() -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    """A simulated cisco_ios device in a child process, as the demo device's address."""
    import json

    simulator = subprocess.Popen(
        [sys.executable, "-m", "netcron", "simulate", "--platforms", "cisco_ios", "--json"],
        stdout=subprocess.PIPE,
    )
    assert simulator.stdout is not None
    [row] = json.loads(simulator.stdout.readline())
    log.info("demo device is simulated: %s:%s", row["host"], row["port"])
    device = {key: row[key] for key in ("host", "port", "username", "password", "enable_secret")}
    return simulator, device


def cmd_events(args: argparse.Namespace) -> int:
    """Follow the live event stream, one line per event; reconnects where it left off."""
    import httpx

    from netcron.api_target import find_api_target
    from netcron.events import parse_sse

    settings = _settings("events")
    target = find_api_target(settings, url=args.url, key=args.key)
    print(f"netcron events: {target.describe()}", file=sys.stderr)
    key = target.key
    params = {
        name: value
        for name, value in (
            ("type", args.type),
            ("device_id", args.device_id),
            ("schedule_id", args.schedule_id),
        )
        if value
    }
    last: int | None = None
    while True:
        headers = {"X-API-Key": key} | ({"Last-Event-ID": str(last)} if last else {})
        try:
            with httpx.stream(
                "GET",
                f"{target.url}/events",
                params=params,
                headers=headers,
                timeout=httpx.Timeout(10, read=60),
            ) as response:
                if response.status_code != 200:
                    print(
                        f"error {response.status_code}: {response.read().decode()}", file=sys.stderr
                    )
                    return 1
                block: list[str] = []
                for line in response.iter_lines():
                    if line:
                        block.append(line)
                        continue
                    event = parse_sse(block)
                    block = []
                    if event is not None:
                        last = event.id or last
                        print(event.line(), flush=True)
        except httpx.TransportError as exc:
            print(f"disconnected ({exc}); reconnecting", file=sys.stderr)
            time.sleep(1)


#: The api read load of `netcron bench`, and of `--fleet` (a light one beside the fire).
DEFAULT_API_RPS = 200.0
FLEET_API_RPS = 20.0
#: How long the load runs; with --fleet, within the fire (10,000 devices: 12-14 s).
DEFAULT_API_SECONDS = 15.0
FLEET_API_SECONDS = 10.0


def cmd_bench(args: argparse.Namespace) -> int:
    from netcron.bench import ApiLoad, run_bench

    _settings("bench")
    if args.history:
        from netcron.bench_history import run_bench_history

        run_bench_history(
            Path(args.out), devices=args.history, days=args.days, clock_drift=args.clock_drift
        )
        return 0
    if args.reconcile:
        from netcron.bench_reconcile import run_bench_reconcile

        run_bench_reconcile(args.reconcile, Path(args.out or "bench-results"))
        return 0
    if args.fleet:
        from netcron.bench_fleet import FleetOptions, run_fleet_bench

        run_fleet_bench(
            FleetOptions(
                devices=args.fleet,
                compare=args.compare,
                max_in_flight=args.max_in_flight,
                executor_concurrency=args.executor_concurrency,
                ceiling_s=args.ceiling_seconds,
                api_rps=args.api_rps if args.api_rps != DEFAULT_API_RPS else FLEET_API_RPS,
                api_seconds=(
                    args.api_seconds
                    if args.api_seconds != DEFAULT_API_SECONDS
                    else FLEET_API_SECONDS
                ),
                out=Path(args.out or "docs/bench"),
            )
        )
        return 0
    if args.ui:
        from netcron.ui.bench import run_bench_ui

        run_bench_ui(
            Path(args.out), devices=args.ui_devices, runs=args.ui_runs, repeat=args.ui_repeat
        )
        return 0
    ramp = [int(step) for step in args.ramp.split(",")] if args.ramp else []
    run_bench(
        devices=args.devices,
        schedules=args.schedules,
        duration=args.duration,
        delay=args.delay,
        ramp=ramp,
        out=Path(args.out or "bench-results"),
        ceiling_s=args.ceiling_seconds,
        api_load=ApiLoad(rps=args.api_rps, seconds=args.api_seconds),
    )
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    from netcron.tools.chaos import ChaosOptions, run_chaos

    _settings("chaos")
    options = ChaosOptions(
        faults=[name.strip() for name in args.faults.split(",") if name.strip()],
        schedules=args.schedules,
        devices=args.devices,
        delay=args.delay,
        ttl=args.ttl,
        warmup=args.warmup,
        baseline=args.baseline,
        lead=args.lead,
        down=args.down,
        settle=args.settle,
        freeze=args.freeze,
        out=Path(args.out),
    )
    run = run_chaos(options)
    print(run.table)
    print(f"wrote {run.json_path}; logs in {run.data_dir / 'logs'}")
    return 0 if all(report.met_targets for report in run.reports) else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    """Start simulated devices and print how to reach them; Ctrl-C stops them."""
    import json

    from netcron.platforms import PLATFORMS
    from netcron.simulator import Behaviour, start_simulated_devices
    from netcron.simulator.server import stop_simulated_devices

    _settings("simulate")
    platforms = (
        [name.strip() for name in args.platforms.split(",")] if args.platforms else PLATFORMS
    )
    behaviour = Behaviour(
        latency=args.latency,
        hang_after_login=args.hang_after_login,
        hang_on=args.hang_on or None,
        refuse_logins=args.refuse_logins,
        drop_on=args.drop_on or None,
        config_change_interval=args.config_change_interval,
    )

    async def serve() -> None:
        devices = await start_simulated_devices(
            platforms,
            args.per_platform,
            host=args.host,
            username=args.username,
            password=args.password or None,
            enable_secret=args.enable_secret or None,
            behaviour=behaviour,
        )
        try:
            rows = [
                {
                    "platform": d.platform,
                    "hostname": d.hostname,
                    "host": d.host,
                    "port": d.port,
                    "username": d.username,
                    "password": d.password,
                    "enable_secret": d.enable_secret,
                    "host_key": d.fingerprint,
                }
                for d in devices
            ]
            if args.json:
                print(json.dumps(rows), flush=True)
            else:
                print(
                    f"{'platform':<14} {'host':<10} {'port':>5}  {'user':<8} {'password':<17}"
                    f" {'enable':<17} host key"
                )
                for row in rows:
                    print(
                        f"{row['platform']:<14} {row['host']:<10} {row['port']:>5}  "
                        f"{row['username']:<8} {row['password']:<17} "
                        f"{row['enable_secret'] or '-':<17} {row['host_key']}",
                        flush=True,
                    )
                print(f"{len(rows)} simulated device(s) running; Ctrl-C stops them", flush=True)
            await asyncio.Event().wait()
        finally:
            await stop_simulated_devices(devices)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


def cmd_bench_ssh(args: argparse.Namespace) -> int:
    from netcron.bench_ssh import run_bench_ssh

    _settings("bench")
    run_bench_ssh(
        devices=args.devices,
        rounds=args.rounds,
        interval=args.interval,
        latency=args.latency,
        concurrency=args.concurrency,
        out=Path(args.out),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netcron", description="Run commands on network devices on cron schedules."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, func, text in (
        ("api", cmd_api, "run the REST api (FastAPI + uvicorn)"),
        ("worker", cmd_worker, "run the Temporal worker and the results relay"),
        ("executor", cmd_executor, "run commands from the task stream on devices"),
        ("migrate", cmd_migrate, "apply the database migrations"),
        ("keygen", cmd_keygen, "print a new NETCRON_SECRET_KEY"),
    ):
        sub.add_parser(name, help=text, description=f"netcron {name}: {text}.").set_defaults(
            func=func
        )
    dev_help = "run everything on embedded PostgreSQL, NATS and Temporal (Ctrl-C stops)"
    dev = sub.add_parser("dev", help=dev_help, description=f"netcron dev: {dev_help}.")
    dev.add_argument("--api-port", type=int, default=8000, help="api port (default 8000)")
    dev.add_argument(
        "--data-dir", default=".netcron", help="where state is kept (default .netcron/)"
    )
    dev.add_argument(
        "--demo",
        action="store_true",
        help="also create a demo device and a 10-second schedule (with NETCRON_EXECUTOR_DRIVER"
        "=ssh: a simulated cisco_ios device)",
    )
    dev.add_argument(
        "--external",
        action="store_true",
        help="use the PostgreSQL, NATS and Temporal configured in NETCRON_* / .env"
        " instead of embedded servers",
    )
    dev.set_defaults(func=cmd_dev)
    events_help = "follow live events (runs, changes) in the terminal"
    events = sub.add_parser(
        "events", help=events_help, description=f"netcron events: {events_help}."
    )
    events.add_argument(
        "--url", default="", help="api base URL (default NETCRON_API_URL, else .netcron/api.url)"
    )
    events.add_argument(
        "--key", default="", help="API key (default NETCRON_API_KEY, else .netcron/api.key)"
    )
    events.add_argument("--type", default="", help="type prefix, e.g. run.")
    events.add_argument("--device-id", default="", help="only this device")
    events.add_argument("--schedule-id", default="", help="only this schedule")
    events.set_defaults(func=cmd_events)
    bench_help = "measure fire lag, latency, throughput and cost on the embedded stack"
    bench = sub.add_parser("bench", help=bench_help, description=f"netcron bench: {bench_help}.")
    bench.add_argument("--devices", type=int, default=5, help="devices (default 5)")
    bench.add_argument("--schedules", type=int, default=4, help="schedules per device (default 4)")
    bench.add_argument("--duration", type=float, default=30, help="seconds measured (default 30)")
    bench.add_argument("--delay", type=float, default=0.0, help="emulated command delay (s)")
    bench.add_argument("--ramp", default="", help="total schedule counts, e.g. 10,20,40")
    bench.add_argument("--ceiling-seconds", type=float, default=10, help="ceiling run (s)")
    bench.add_argument(
        "--api-rps",
        type=float,
        default=DEFAULT_API_RPS,
        help=f"api read load per step, req/s (0: none; {FLEET_API_RPS:g} with --fleet)",
    )
    bench.add_argument(
        "--api-seconds",
        type=float,
        default=DEFAULT_API_SECONDS,
        help=f"api load run (s; {FLEET_API_SECONDS:g} with --fleet)",
    )
    bench.add_argument(
        "--out", default="", help="where JSON and PNG go (bench-results/; docs/bench/ with --fleet)"
    )
    bench.add_argument(
        "--reconcile",
        type=int,
        metavar="N",
        help="instead: time reconciliation passes over N schedules (e.g. 10000)",
    )
    bench.add_argument(
        "--history",
        type=int,
        metavar="DEVICES",
        help="instead: bytes on disk and read latency of hourly config backups of DEVICES "
        "devices over --days days (1000 for the README)",
    )
    bench.add_argument("--days", type=int, default=30, help="--history: days seeded (default 30)")
    bench.add_argument(
        "--clock-drift",
        type=float,
        default=1.0,
        help="--history: share of devices whose ntp clock-period moves every hour (default 1)",
    )
    bench.add_argument(
        "--fleet",
        type=int,
        metavar="N",
        help="instead: one job over N emulated devices, fired once (e.g. 10000)",
    )
    bench.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="M",
        help="with --fleet: M devices as per-device schedules against one job over them",
    )
    bench.add_argument(
        "--max-in-flight", type=int, default=1000, help="with --fleet: the job's max_in_flight"
    )
    bench.add_argument(
        "--executor-concurrency",
        type=int,
        default=1000,
        help="with --fleet: NETCRON_EXECUTOR_CONCURRENCY of the executor",
    )
    bench.add_argument(
        "--ui", action="store_true", help="instead: time the console's pages over a large database"
    )
    bench.add_argument("--ui-devices", type=int, default=10_000, help="--ui: devices (10000)")
    bench.add_argument("--ui-runs", type=int, default=1_000_000, help="--ui: runs (1000000)")
    bench.add_argument("--ui-repeat", type=int, default=40, help="--ui: requests per page (40)")
    bench.set_defaults(func=cmd_bench)
    from netcron.tools.chaos_report import FAULTS

    chaos_help = "kill, restart and freeze each part of the embedded stack under load"
    chaos = sub.add_parser("chaos", help=chaos_help, description=f"netcron chaos: {chaos_help}.")
    chaos.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"faults to run, in order (default {','.join(FAULTS)})",
    )
    chaos.add_argument("--schedules", type=int, default=10, help="schedules firing every second")
    chaos.add_argument("--devices", type=int, default=2, help="devices they run on (default 2)")
    chaos.add_argument("--delay", type=float, default=0.2, help="emulated command delay (s)")
    chaos.add_argument("--ttl", type=int, default=10, help="the schedules' ttl_seconds")
    chaos.add_argument("--warmup", type=float, default=5, help="load before the first window (s)")
    chaos.add_argument("--baseline", type=float, default=10, help="a window with no fault (s)")
    chaos.add_argument("--lead", type=float, default=5, help="load before each fault (s)")
    chaos.add_argument("--down", type=float, default=3, help="how long a process is down (s)")
    chaos.add_argument("--settle", type=float, default=20, help="window after it is back (s)")
    chaos.add_argument(
        "--freeze", type=float, default=0, help="executor frozen for (s; default TTL + 5)"
    )
    chaos.add_argument("--out", default="chaos-results", help="where the JSON goes")
    chaos.set_defaults(func=cmd_chaos)
    simulate_help = "start simulated SSH devices of every platform on 127.0.0.1 (Ctrl-C stops)"
    simulate = sub.add_parser(
        "simulate", help=simulate_help, description=f"netcron simulate: {simulate_help}."
    )
    simulate.add_argument("--per-platform", type=int, default=1, help="devices per platform")
    simulate.add_argument("--platforms", default="", help="comma-separated (default: all)")
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on")
    simulate.add_argument("--username", default="netops", help="login (default netops)")
    simulate.add_argument("--password", default="", help="password (default: generated)")
    simulate.add_argument("--enable-secret", default="", help="enable secret (default: generated)")
    simulate.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    simulate.add_argument(
        "--hang-after-login", action="store_true", help="log in, then never show a prompt"
    )
    simulate.add_argument("--hang-on", default="", help="a command (prefix) that never answers")
    simulate.add_argument("--drop-on", default="", help="a command (prefix) cut off halfway")
    simulate.add_argument("--refuse-logins", action="store_true", help="every login fails")
    simulate.add_argument(
        "--config-change-interval",
        type=float,
        default=0.0,
        help="the configuration changes every this many seconds (0: never)",
    )
    simulate.add_argument("--json", action="store_true", help="print the devices as JSON")
    simulate.set_defaults(func=cmd_simulate)
    bench_ssh_help = "measure the SSH executor against simulated devices (runs/s, latency, RSS)"
    bench_ssh = sub.add_parser(
        "bench-ssh", help=bench_ssh_help, description=f"netcron bench-ssh: {bench_ssh_help}."
    )
    bench_ssh.add_argument("--devices", type=int, default=200, help="devices (default 200)")
    bench_ssh.add_argument("--rounds", type=int, default=3, help="fires per device (default 3)")
    bench_ssh.add_argument(
        "--interval", type=float, default=60, help="seconds between fires (default 60)"
    )
    bench_ssh.add_argument(
        "--latency", type=float, default=0.3, help="device seconds per answer (default 0.3)"
    )
    bench_ssh.add_argument(
        "--concurrency", type=int, default=200, help="executor concurrency (default 200)"
    )
    bench_ssh.add_argument("--out", default="bench-results", help="where the JSON goes")
    bench_ssh.set_defaults(func=cmd_bench_ssh)
    return parser


def command_names() -> set[str]:
    """The subcommands the CLI knows (the compose file's commands are checked against it)."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


#: Long-running services: they leave through ``exit_process`` once stopped cleanly.
SERVICES = frozenset({"api", "worker", "executor"})


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)
    if args.command in SERVICES:
        from netcron.shutdown import exit_process

        exit_process(code)
    sys.exit(code)
