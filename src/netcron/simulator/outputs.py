"""What simulated devices print: per-platform command output from a hostname and a revision.

The revision is the device's configuration generation (it moves on over time when the
device's behaviour asks), so descriptions, addresses and routes change with it.
"""

from __future__ import annotations

from collections.abc import Callable

#: What a command answers: the device's hostname and configuration revision in, text out.
Output = Callable[[str, int], str]


def _interfaces(revision: int) -> list[tuple[int, str, bool]]:
    return [(index, f"10.{index}.{revision % 250}.1", index % 4 != 0) for index in range(1, 9)]


def ios_version(xe: bool) -> Output:
    def produce(hostname: str, revision: int) -> str:
        if xe:
            head = (
                "Cisco IOS XE Software, Version 17.09.04a\n"
                "Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), "
                "Version 17.9.4a, RELEASE SOFTWARE (fc3)\n"
            )
            model = "cisco C9300-48P (X86) processor with 1338934K/6147K bytes of memory."
        else:
            head = (
                "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), "
                "Version 15.2(7)E8, RELEASE SOFTWARE (fc2)\n"
            )
            model = "cisco WS-C2960X-48TS-L (APM86XXX) processor with 524288K bytes of memory."
        return (
            f"{head}Technical Support: http://www.cisco.com/techsupport\n"
            "Copyright (c) 1986-2023 by Cisco Systems, Inc.\n"
            "Compiled Thu 19-Oct-23 09:12 by mcpre\n\n"
            "ROM: Bootstrap program is C2960X boot loader\n"
            f"{hostname} uptime is 41 weeks, 2 days, 3 hours, 12 minutes\n"
            "System returned to ROM by power-on\n"
            'System image file is "flash:packages.conf"\n\n'
            f"{model}\nProcessor board ID FOC2145X0AB\n"
            "48 Gigabit Ethernet interfaces\n4 Ten Gigabit Ethernet interfaces\n"
            "Configuration register is 0x102\n"
        )

    return produce


def ios_interfaces(hostname: str, revision: int) -> str:
    blocks = []
    for index, address, up in _interfaces(revision):
        state = "up" if up else "administratively down"
        blocks.append(
            f"GigabitEthernet1/0/{index} is {state}, line protocol is {'up' if up else 'down'}\n"
            f"  Hardware is Gigabit Ethernet, address is 70b3.1755.{index:04x}\n"
            f"  Internet address is {address}/24\n"
            "  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec,\n"
            "     reliability 255/255, txload 1/255, rxload 1/255\n"
            "  Encapsulation ARPA, loopback not set\n"
            f"  5 minute input rate {index * 1000} bits/sec, {index * 2} packets/sec\n"
            f"     {index * 918273} packets input, {index * 123456789} bytes, 0 no buffer\n"
            f"     {index * 817263} packets output, {index * 98765432} bytes, 0 underruns\n"
        )
    return "".join(blocks)


def ios_route(hostname: str, revision: int) -> str:
    lines = [
        "Codes: L - local, C - connected, S - static, R - RIP, M - mobile, B - BGP",
        "       O - OSPF, IA - OSPF inter area, * - candidate default",
        "",
        "Gateway of last resort is 10.1.0.254 to network 0.0.0.0",
        "",
        "S*    0.0.0.0/0 [1/0] via 10.1.0.254",
    ]
    for index, address, up in _interfaces(revision):
        if up:
            network = address.rsplit(".", 1)[0]
            lines.append(
                f"C        {network}.0/24 is directly connected, GigabitEthernet1/0/{index}"
            )
            lines.append(f"L        {address}/32 is directly connected, GigabitEthernet1/0/{index}")
    return "\n".join(lines) + "\n"


def ios_config(hostname: str, revision: int) -> str:
    lines = [
        "Building configuration...",
        "",
        f"Current configuration : {4000 + revision} bytes",
        "!",
        f"! Last configuration change: revision {revision}",
        "version 17.9",
        "service timestamps debug datetime msec",
        f"hostname {hostname}",
        "!",
        "username netops privilege 15 secret 9 <removed>",
        "!",
    ]
    for index, address, up in _interfaces(revision):
        lines += [f"interface GigabitEthernet1/0/{index}"]
        lines += [
            f" description uplink-{index} rev{revision}",
            f" ip address {address} 255.255.255.0",
        ]
        lines += [] if up else [" shutdown"]
        lines += ["!"]
    lines += ["ip route 0.0.0.0 0.0.0.0 10.1.0.254", "ip ssh version 2", "!"]
    lines += ["line vty 0 15", " transport input ssh", "!", "end"]
    return "\n".join(lines) + "\n"


def nxos_version(hostname: str, revision: int) -> str:
    return (
        "Cisco Nexus Operating System (NX-OS) Software\n"
        "TAC support: http://www.cisco.com/tac\n"
        "Copyright (C) 2002-2023, Cisco and/or its affiliates.\n\n"
        "Software\n  BIOS: version 05.47\n  NXOS: version 10.3(4a)\n"
        "  NXOS image file is: bootflash:///nxos64-cs.10.3.4a.M.bin\n\n"
        "Hardware\n  cisco Nexus9000 C93180YC-FX Chassis\n"
        f"  Device name: {hostname}\n  bootflash: 115805708 kB\n\n"
        "Kernel uptime is 212 day(s), 4 hour(s), 7 minute(s), 31 second(s)\n"
    )


def nxos_interfaces(hostname: str, revision: int) -> str:
    blocks = []
    for index, address, up in _interfaces(revision):
        blocks.append(
            f"Ethernet1/{index} is {'up' if up else 'down (Administratively down)'}\n"
            f"admin state is {'up' if up else 'down'}, Dedicated Interface\n"
            f"  Hardware: 100/1000/10000/25000 Ethernet, address: 00de.fb12.{index:04x}\n"
            f"  Internet Address is {address}/24\n"
            "  MTU 9216 bytes, BW 25000000 Kbit , DLY 10 usec\n"
            f"  {index * 4411} input packets  {index * 9912} output packets\n"
        )
    return "".join(blocks)


def nxos_route(hostname: str, revision: int) -> str:
    lines = [
        'IP Route Table for VRF "default"',
        "'*' denotes best ucast next-hop",
        "",
        "0.0.0.0/0, ubest/mbest: 1/0",
        "    *via 10.1.0.254, [1/0], 30w2d, static",
    ]
    for index, address, up in _interfaces(revision):
        if up:
            network = address.rsplit(".", 1)[0]
            lines.append(f"{network}.0/24, ubest/mbest: 1/0, attached")
            lines.append(f"    *via {address}, Eth1/{index}, [0/0], 30w2d, direct")
    return "\n".join(lines) + "\n"


def nxos_config(hostname: str, revision: int) -> str:
    lines = [
        "!Command: show running-config",
        f"!Running configuration last done at: revision {revision}",
        "version 10.3(4a) Bios:version 05.47",
        f"hostname {hostname}",
        "feature ssh",
        "",
    ]
    for index, address, up in _interfaces(revision):
        lines += [f"interface Ethernet1/{index}", f"  description uplink-{index} rev{revision}"]
        lines += [f"  ip address {address}/24", "  no shutdown" if up else "  shutdown", ""]
    return "\n".join(lines) + "\n"


def xr_version(hostname: str, revision: int) -> str:
    return (
        "Cisco IOS XR Software, Version 7.9.2\n"
        "Copyright (c) 2013-2023 by Cisco Systems, Inc.\n\n"
        "Build Information:\n Built By     : ingunawa\n"
        " Built On     : Tue Aug 22 10:01:23 PDT 2023\n\n"
        f"cisco ASR9K () processor\nSystem uptime is 18 weeks 3 days 7 hours 2 minutes\n"
        f"{hostname} is a router\n"
    )


def xr_interfaces(hostname: str, revision: int) -> str:
    blocks = []
    for index, address, up in _interfaces(revision):
        blocks.append(
            f"GigabitEthernet0/0/0/{index} is {'up' if up else 'administratively down'}, "
            f"line protocol is {'up' if up else 'down'}\n"
            f"  Interface state transitions: {index}\n"
            f"  Hardware is GigabitEthernet, address is 0257.3c4d.{index:04x}\n"
            f"  Internet address is {address}/24\n"
            "  MTU 1514 bytes, BW 1000000 Kbit (Max: 1000000 Kbit)\n"
        )
    return "".join(blocks)


def xr_route(hostname: str, revision: int) -> str:
    lines = [
        "Codes: C - connected, S - static, L - local",
        "",
        "Gateway of last resort is 10.1.0.254",
    ]
    lines.append("S*   0.0.0.0/0 [1/0] via 10.1.0.254, 18w3d")
    for index, address, up in _interfaces(revision):
        if up:
            network = address.rsplit(".", 1)[0]
            lines.append(
                f"C    {network}.0/24 is directly connected, 18w3d, GigabitEthernet0/0/0/{index}"
            )
    return "\n".join(lines) + "\n"


def xr_config(hostname: str, revision: int) -> str:
    lines = [
        "Building configuration...",
        "!! IOS XR Configuration 7.9.2",
        f"!! Last configuration change: revision {revision}",
        "!",
        f"hostname {hostname}",
    ]
    for index, address, up in _interfaces(revision):
        lines += [
            f"interface GigabitEthernet0/0/0/{index}",
            f" description uplink-{index} rev{revision}",
        ]
        lines += [f" ipv4 address {address} 255.255.255.0"] + ([] if up else [" shutdown"]) + ["!"]
    return "\n".join([*lines, "end"]) + "\n"


def eos_version(hostname: str, revision: int) -> str:
    return (
        "Arista DCS-7050SX3-48YC8\nHardware version: 11.00\nSerial number: JPE21301234\n"
        "Hardware MAC address: 985d.8201.0001\nSystem MAC address: 985d.8201.0001\n\n"
        "Software image version: 4.30.2F\nArchitecture: x86_64\n"
        "Internal build version: 4.30.2F-33092206.4302F\n\n"
        "Uptime: 21 weeks, 1 day, 4 hours and 2 minutes\n"
        "Total memory: 8099732 kB\nFree memory: 5612084 kB\n"
    )


def eos_interfaces(hostname: str, revision: int) -> str:
    blocks = []
    for index, address, up in _interfaces(revision):
        blocks.append(
            f"Ethernet{index} is {'up' if up else 'administratively down'}, "
            f"line protocol is {'up (connected)' if up else 'down (disabled)'}\n"
            f"  Hardware is Ethernet, address is 985d.8201.{index:04x}\n"
            f"  Internet address is {address}/24\n"
            "  IP MTU 1500 bytes, BW 25000000 kbit\n"
        )
    return "".join(blocks)


def eos_config(hostname: str, revision: int) -> str:
    lines = ["! Command: show running-config", f"! config revision {revision}", "!"]
    lines += [f"hostname {hostname}", "!"]
    for index, address, up in _interfaces(revision):
        lines += [f"interface Ethernet{index}", f"   description uplink-{index} rev{revision}"]
        lines += [f"   ip address {address}/24"] + ([] if up else ["   shutdown"]) + ["!"]
    return "\n".join([*lines, "end"]) + "\n"


def junos_version(hostname: str, revision: int) -> str:
    return (
        f"Hostname: {hostname}\nModel: mx204\nJunos: 22.4R1.10\n"
        "JUNOS OS Kernel 64-bit  [20221205.0c7f7b8_builder_stable_12]\n"
        "JUNOS OS libs [20221205.0c7f7b8_builder_stable_12]\n"
        "JUNOS Packet Forwarding Engine Support (MX FIPS) [22.4R1.10]\n"
    )


def junos_interfaces(hostname: str, revision: int) -> str:
    blocks = []
    for index, address, up in _interfaces(revision):
        blocks.append(
            f"Physical interface: ge-0/0/{index}, {'Enabled' if up else 'Administratively down'}, "
            f"Physical link is {'Up' if up else 'Down'}\n"
            f"  Interface index: {140 + index}, SNMP ifIndex: {500 + index}\n"
            "  Link-level type: Ethernet, MTU: 1514, Speed: 1000mbps\n"
            f"  Logical interface ge-0/0/{index}.0 (Index {330 + index})\n"
            f"    Protocol inet, MTU: 1500\n      Addresses, Flags: Is-Preferred Is-Primary\n"
            f"        Local: {address}\n"
        )
    return "\n".join(blocks)


def junos_route(hostname: str, revision: int) -> str:
    lines = [
        "inet.0: 17 destinations, 17 routes (17 active, 0 holddown, 0 hidden)",
        "+ = Active Route, - = Last Active, * = Both",
        "",
        "0.0.0.0/0          *[Static/5] 30w2d 04:11:02",
        "                    >  to 10.1.0.254 via ge-0/0/1.0",
    ]
    for index, address, up in _interfaces(revision):
        if up:
            network = address.rsplit(".", 1)[0]
            lines.append(f"{network}.0/24       *[Direct/0] 30w2d 04:11:02")
            lines.append(f"                    >  via ge-0/0/{index}.0")
    return "\n".join(lines) + "\n"


def junos_config(hostname: str, revision: int) -> str:
    units = "".join(
        f'    ge-0/0/{index} {{\n        description "uplink-{index} rev{revision}";\n'
        + ("" if up else "        disable;\n")
        + f"        unit 0 {{\n            family inet {{\n                address {address}/24;\n"
        "            }\n        }\n    }\n"
        for index, address, up in _interfaces(revision)
    )
    return (
        f"## Last commit: revision {revision} by netops\nversion 22.4R1.10;\n"
        f"system {{\n    host-name {hostname};\n    services {{\n        ssh;\n    }}\n}}\n"
        f"interfaces {{\n{units}}}\n"
    )


def linux_version(hostname: str, revision: int) -> str:
    return (
        f"Linux {hostname} 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) "
        "x86_64 GNU/Linux\n"
    )


def linux_interfaces(hostname: str, revision: int) -> str:
    lines = [
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN",
        "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00",
        "    inet 127.0.0.1/8 scope host lo",
    ]
    for index, address, up in _interfaces(revision):
        flags, state = ("BROADCAST,MULTICAST,UP,LOWER_UP", "UP") if up else ("BROADCAST", "DOWN")
        broadcast = address.rsplit(".", 1)[0] + ".255"
        lines += [
            f"{index + 1}: eth{index}: <{flags}> mtu 1500 qdisc mq state {state}",
            f"    link/ether 52:54:00:12:34:{index:02x} brd ff:ff:ff:ff:ff:ff",
            f"    inet {address}/24 brd {broadcast} scope global eth{index}",
            "       valid_lft forever preferred_lft forever",
        ]
    return "\n".join(lines) + "\n"


def linux_route(hostname: str, revision: int) -> str:
    lines = ["default via 10.1.0.254 dev eth1 proto static"]
    for index, address, up in _interfaces(revision):
        if up:
            network = address.rsplit(".", 1)[0]
            lines.append(f"{network}.0/24 dev eth{index} proto kernel scope link src {address}")
    return "\n".join(lines) + "\n"


def linux_config(hostname: str, revision: int) -> str:
    return f"# revision {revision}\n127.0.0.1 localhost\n127.0.1.1 {hostname}\n"


def cisco_like(
    version: Output, interfaces: Output, route: Output, config: Output
) -> dict[str, Output]:
    return {
        "show version": version,
        "show interfaces": interfaces,
        "show ip route": route,
        "show running-config": config,
    }
