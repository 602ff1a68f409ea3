"""Simulated devices, met as a terminal meets them: prompts, enable, paging, rejections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncssh
import pytest

from netcron.platforms import PLATFORMS
from netcron.simulator import Behaviour, SimulatedDevice, start_simulated_devices
from netcron.simulator.server import stop_simulated_devices


class Terminal:
    """An interactive session read up to a marker, as a person at a terminal would."""

    def __init__(self, writer: asyncssh.SSHWriter[str], reader: asyncssh.SSHReader[str]) -> None:
        self.writer, self.reader = writer, reader

    async def upto(self, marker: str) -> str:
        text = ""
        while marker not in text:
            chunk = await asyncio.wait_for(self.reader.read(65536), 5)
            if not chunk:
                raise EOFError(text)
            text += chunk
        return text

    async def send(self, line: str, marker: str) -> str:
        self.writer.write(line + "\n")
        return await self.upto(marker)


@pytest.fixture(scope="module")
async def devices() -> AsyncIterator[dict[str, SimulatedDevice]]:
    started = await start_simulated_devices(password="sim-pass", enable_secret="sim-enable")
    yield {device.platform: device for device in started}
    await stop_simulated_devices(started)


async def terminal(
    device: SimulatedDevice, password: str = "sim-pass"
) -> tuple[asyncssh.SSHClientConnection, Terminal]:
    connection = await asyncssh.connect(
        device.host, device.port, username="netops", password=password, known_hosts=None
    )
    writer, reader, _ = await connection.open_session(term_type="xterm")
    return connection, Terminal(writer, reader)


@pytest.mark.parametrize(
    ("platform", "user_prompt", "privileged_prompt"),
    [
        ("cisco_ios", "cisco-ios-1>", "cisco-ios-1#"),
        ("cisco_xe", "cisco-xe-1>", "cisco-xe-1#"),
        ("arista_eos", "arista-eos-1>", "arista-eos-1#"),
    ],
)
async def test_enable_with_the_secret_moves_to_the_privileged_prompt(
    devices: dict[str, SimulatedDevice], platform: str, user_prompt: str, privileged_prompt: str
) -> None:
    connection, term = await terminal(devices[platform])
    async with connection:
        assert (await term.upto(user_prompt)).endswith(user_prompt)
        assert "Password: " in await term.send("enable", "Password: ")
        assert (await term.send("wrong", user_prompt)).endswith(f"% Access denied\r\n{user_prompt}")
        await term.send("enable", "Password: ")
        assert (await term.send("sim-enable", "#")).endswith(privileged_prompt)


@pytest.mark.parametrize(
    ("platform", "prompt"),
    [
        ("cisco_nxos", "cisco-nxos-1#"),
        ("cisco_xr", "RP/0/RP0/CPU0:cisco-xr-1#"),
        ("juniper_junos", "netops@juniper-junos-1>"),
        ("linux", "netops@linux-1:~$"),
    ],
)
async def test_login_lands_on_the_platform_prompt(
    devices: dict[str, SimulatedDevice], platform: str, prompt: str
) -> None:
    connection, term = await terminal(devices[platform])
    async with connection:
        assert (await term.upto(prompt)).endswith(prompt)


@pytest.mark.parametrize(
    ("platform", "command", "more", "paging_off"),
    [
        ("cisco_nxos", "show running-config", "--More--", "terminal length 0"),
        ("juniper_junos", "show configuration", "---(more)---", "set cli screen-length 0"),
    ],
)
async def test_long_output_pages_until_paging_is_turned_off(
    devices: dict[str, SimulatedDevice], platform: str, command: str, more: str, paging_off: str
) -> None:
    device = devices[platform]
    prompt = device.profile.prompt(device.hostname, "netops", True)
    connection, term = await terminal(device)
    async with connection:
        await term.upto(prompt)
        first_page = await term.send(command, more)
        assert len(first_page.splitlines()) <= 26
        term.writer.write("q")
        await term.upto(prompt)
        await term.send(paging_off, prompt)
        whole = await term.send(command, prompt)
    assert more not in whole
    assert len(whole.splitlines()) > 30


@pytest.mark.parametrize(
    ("platform", "rejection"),
    [
        ("cisco_ios", "% Invalid input detected at '^' marker."),
        ("cisco_nxos", "% Invalid command at '^' marker."),
        ("cisco_xr", "% Invalid input detected at '^' marker."),
        ("arista_eos", "% Invalid input"),
        ("juniper_junos", "syntax error, expecting <command>."),
        ("linux", "-bash: shw: command not found"),
    ],
)
async def test_an_unknown_command_gets_the_platform_rejection(
    devices: dict[str, SimulatedDevice], platform: str, rejection: str
) -> None:
    device = devices[platform]
    prompt = device.profile.prompt(device.hostname, "netops", not device.profile.needs_enable)
    connection, term = await terminal(device)
    async with connection:
        await term.upto(prompt)
        assert rejection in await term.send("shw version", prompt)


async def test_exec_of_an_unknown_command_on_linux_exits_127(
    devices: dict[str, SimulatedDevice],
) -> None:
    device = devices["linux"]
    async with asyncssh.connect(
        device.host, device.port, username="netops", password="sim-pass", known_hosts=None
    ) as connection:
        known = await connection.run("uname -a")
        unknown = await connection.run("frobnicate")
    assert known.exit_status == 0 and str(known.stdout).startswith("Linux linux-1 ")
    assert unknown.exit_status == 127


async def test_refused_logins_are_counted() -> None:
    [device] = await start_simulated_devices(
        ["cisco_ios"], password="sim-pass", behaviour=Behaviour(refuse_logins=True)
    )
    try:
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect(
                device.host,
                device.port,
                username="netops",
                password="sim-pass",
                known_hosts=None,
            )
        assert device.password_attempts >= 1
    finally:
        await device.stop()


async def test_the_configuration_changes_over_time() -> None:
    [device] = await start_simulated_devices(
        ["arista_eos"], behaviour=Behaviour(config_change_interval=0.2)
    )
    try:
        before = device.profile.answer(
            "show running-config", device.hostname, device.revision, True
        )
        await asyncio.sleep(0.25)
        after = device.profile.answer("show running-config", device.hostname, device.revision, True)
        assert before != after
    finally:
        await device.stop()


async def test_a_changed_host_key_keeps_the_port() -> None:
    [device] = await start_simulated_devices(["linux"])
    try:
        port, fingerprint = device.port, device.fingerprint
        await device.change_host_key()
        assert device.port == port and device.fingerprint != fingerprint
    finally:
        await device.stop()


def test_every_platform_has_a_simulated_device() -> None:
    from netcron.simulator import PROFILES

    assert set(PROFILES) == set(PLATFORMS)
