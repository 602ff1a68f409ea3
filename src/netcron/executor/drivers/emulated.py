"""A stand-in for real devices: a delay, then plausible output for the platform and command.

Output is deterministic per (host, command) apart from its volatile lines (the uptime, the
configuration's NVRAM time), so a test or a demo can tell one device from another.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from datetime import UTC, datetime

from netcron.crypto import Credentials
from netcron.executor.drivers.base import DriverError
from netcron.executor.drivers.identify import identify
from netcron.messages import CheckRequest, CheckResult, TaskMessage

CISCO = ("cisco_ios", "cisco_xe", "cisco_xr", "cisco_nxos", "cisco_asa")


def hostname(host: str) -> str:
    return "r-" + host.replace(".", "-").replace(":", "-")[:40]


def _seed(task: TaskMessage) -> random.Random:
    return random.Random(hashlib.sha256(f"{task.host}|{task.command}".encode()).digest())


def _serial(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(11))


def show_version(task: TaskMessage, rng: random.Random) -> str:
    name = hostname(task.host)
    uptime = f"{rng.randint(1, 400)} days, {rng.randint(0, 23)} hours, {rng.randint(0, 59)} minutes"
    if task.platform == "juniper_junos":
        return (
            f"Hostname: {name}\nModel: mx204\nJunos: 22.4R1.10\n"
            f"JUNOS OS Kernel 64-bit  [20221205.0c7f7b8_builder_stable_12]\n"
            f"JUNOS Packet Forwarding Engine Support (MX FIPS) [22.4R1.10]\n"
        )
    if task.platform == "arista_eos":
        return (
            f"Arista DCS-7050SX3-48YC8\nHardware version: 11.00\nSerial number: {_serial(rng)}\n"
            f"Software image version: 4.30.2F\nArchitecture: x86_64\nUptime: {uptime}\n"
            f"Total memory: 8099732 kB\nFree memory: 5612084 kB\n"
        )
    if task.platform == "linux":
        return (
            f"Linux {name} 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64 GNU/Linux\n"
        )
    if task.platform in CISCO:
        return (
            "Cisco IOS XE Software, Version 17.09.04a\n"
            "Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), "
            "Version 17.9.4a, RELEASE SOFTWARE (fc3)\n"
            "Technical Support: http://www.cisco.com/techsupport\n"
            f"ROM: IOS-XE ROMMON\n{name} uptime is {uptime}\n"
            'System image file is "flash:packages.conf"\n'
            f"cisco C9300-48P (X86) processor with 1338934K/6147K bytes of memory.\n"
            f"Processor board ID {_serial(rng)}\n48 Gigabit Ethernet interfaces\n"
            "Configuration register is 0x102\n"
        )
    return f"{name} ({task.platform}) software version 1.0, uptime {uptime}\n"


def _mac(rng: random.Random) -> str:
    return ".".join(f"{rng.randint(0, 0xFFFF):04x}" for _ in range(3))


def _interfaces(rng: random.Random) -> list[tuple[str, str, str]]:
    rows = []
    for index in range(1, 9):
        up = rng.random() > 0.25
        rows.append(
            (
                f"GigabitEthernet1/0/{index}",
                f"10.{rng.randint(0, 254)}.{index}.1",
                "up" if up else "down",
            )
        )
    return rows


def show_interfaces(task: TaskMessage, rng: random.Random) -> str:
    rows = _interfaces(rng)
    if "brief" in task.command or task.platform not in CISCO:
        lines = ["Interface              IP-Address      OK? Method Status                Protocol"]
        lines += [f"{name:<22} {ip:<15} YES NVRAM  {state:<21} {state}" for name, ip, state in rows]
        return "\n".join(lines) + "\n"
    blocks = []
    for name, ip, state in rows:
        blocks.append(
            f"{name} is {state}, line protocol is {state}\n"
            f"  Hardware is Gigabit Ethernet, address is {_mac(rng)}\n"
            f"  Internet address is {ip}/24\n  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec\n"
            f"  {rng.randint(0, 10**9)} packets input, {rng.randint(0, 10**11)} bytes\n"
            f"  {rng.randint(0, 10**9)} packets output, {rng.randint(0, 10**11)} bytes\n"
        )
    return "".join(blocks)


def config_secrets(host: str) -> tuple[str, str, str]:
    """The secrets in a device's emulated configuration (an enable hash, a type 7
    password, an SNMP community): made-up, per host, for tests of masking to look for."""
    seed = hashlib.sha256(host.encode()).hexdigest()
    return f"$9${seed[:14]}${seed[14:57]}", seed[20:38].upper(), f"c0mm-{seed[40:52]}"


def show_running_config(task: TaskMessage, rng: random.Random) -> str:
    name = hostname(task.host)
    enable, password, community = config_secrets(task.host)
    if task.platform == "juniper_junos":
        return (
            f"system {{\n    host-name {name};\n"
            "    services {\n        ssh;\n        netconf { ssh; }\n    }\n}\n"
            "interfaces {\n    ge-0/0/0 {\n"
            "        unit 0 { family inet { address 10.0.0.1/30; } }\n    }\n}\n"
        )
    lines = [
        "Building configuration...",
        "",
        "Current configuration : 4213 bytes",
        "!",
        f"! NVRAM config last updated at {datetime.now(UTC):%H:%M:%S} UTC",
        "!",
        f"hostname {name}",
        "!",
        f"enable secret 9 {enable}",
        f"username netops privilege 15 password 7 {password}",
        "!",
    ]
    for iface, ip, state in _interfaces(rng):
        lines += [f"interface {iface}", f" ip address {ip} 255.255.255.0"]
        lines += [" shutdown"] if state == "down" else []
        lines += ["!"]
    lines += [f"snmp-server community {community} RO", "ip ssh version 2"]
    lines += ["line vty 0 15", " transport input ssh", "!", "end"]
    return "\n".join(lines) + "\n"


def generic(task: TaskMessage, rng: random.Random) -> str:
    prompt = f"{hostname(task.host)}# {task.command}"
    return f"{prompt}\n% output of '{task.command}' on {task.platform}: ok\n"


OUTPUTS: tuple[tuple[tuple[str, ...], Callable[[TaskMessage, random.Random], str]], ...] = (
    (("show version",), show_version),
    (("show interfaces", "show ip interface", "show interface"), show_interfaces),
    (("show running-config", "show run", "show configuration", "show config"), show_running_config),
)


def emulated_output(task: TaskMessage) -> str:
    command = " ".join(task.command.lower().split())
    for prefixes, produce in OUTPUTS:
        if command.startswith(prefixes):
            return produce(task, _seed(task))
    return generic(task, _seed(task))


class EmulatedDriver:
    """Sleeps a random delay, fails at ``failure_rate``, else answers like a device would."""

    def __init__(
        self, delay_min: float = 0.2, delay_max: float = 1.0, failure_rate: float = 0.0
    ) -> None:
        self.delay_min = delay_min
        self.delay_max = max(delay_min, delay_max)
        self.failure_rate = failure_rate
        self.random = random.Random()

    async def run(self, task: TaskMessage, credentials: Credentials) -> str:
        await asyncio.sleep(self.random.uniform(self.delay_min, self.delay_max))
        if self.failure_rate and self.random.random() < self.failure_rate:
            raise DriverError(f"emulated failure: {hostname(task.host)} closed the connection")
        return emulated_output(task)

    async def check(
        self, request: CheckRequest, credentials: Credentials, executor_id: str
    ) -> CheckResult:
        """Answered from the emulation: no device is contacted."""
        task = TaskMessage.model_validate(
            request.model_dump(include={"device_id", "platform", "host", "port", "username"})
            | {
                "run_id": "check",
                "schedule_id": request.device_id,
                "command_id": request.device_id,
                "scheduled_at": datetime.now(UTC),
                "deadline": datetime.now(UTC),
                "command": "show version",
                "timeout": 1,
            }
        )
        platform, version = identify(show_version(task, _seed(task)))
        return CheckResult(
            device_id=request.device_id,
            checked_at=datetime.now(UTC),
            ok=True,
            reachable=True,
            connect_ms=0.0,
            login="ok",
            prompt=f"{hostname(request.host)}#",
            platform=platform,
            software_version=version,
            executor_id=executor_id,
        )
