"""Drivers: the emulated one's output, and SSH against a real in-process server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncssh
import pytest

from netcron.crypto import Credentials
from netcron.devstack import free_port
from netcron.executor.drivers.base import DriverError
from netcron.executor.drivers.emulated import EmulatedDriver, emulated_output
from netcron.executor.drivers.ssh import SshDriver

from .conftest import make_task


@pytest.mark.parametrize(
    ("platform", "command", "expected"),
    [
        ("cisco_ios", "show version", "Cisco IOS"),
        ("arista_eos", "show version", "Arista"),
        ("juniper_junos", "show version", "Junos"),
        ("cisco_ios", "show ip interface brief", "GigabitEthernet1/0/1"),
        ("cisco_ios", "show interfaces", "line protocol is"),
        ("cisco_ios", "show running-config", "hostname r-10-1-2-3"),
        ("juniper_junos", "show configuration", "host-name r-10-1-2-3"),
        ("linux", "uname -a", "uname -a"),
    ],
)
def test_emulated_output_is_plausible(platform: str, command: str, expected: str) -> None:
    assert expected in emulated_output(make_task(platform=platform, command=command))


def test_emulated_output_is_stable_per_device_and_command() -> None:
    task = make_task(command="show running-config")
    assert emulated_output(task) == emulated_output(task)
    assert emulated_output(task) != emulated_output(task.model_copy(update={"host": "10.9.9.9"}))


async def test_emulated_failure_rate_one_always_fails() -> None:
    driver = EmulatedDriver(delay_min=0, delay_max=0, failure_rate=1.0)
    with pytest.raises(DriverError, match="emulated failure"):
        await driver.run(make_task(), Credentials())


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "netops" and password == "right-pass"


async def _answer(process: asyncssh.SSHServerProcess[str]) -> None:
    process.stdout.write(f"you ran: {process.command}\n")
    process.exit(0)


@pytest.fixture
async def ssh_port() -> AsyncIterator[int]:
    port = free_port(None)
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(
        _Server, "127.0.0.1", port, server_host_keys=[key], process_factory=_answer
    )
    yield port
    server.close()
    await server.wait_closed()


async def test_ssh_driver_runs_the_command(ssh_port: int) -> None:
    task = make_task(host="127.0.0.1", port=ssh_port, username="netops", command="show clock")
    output = await SshDriver().run(task, Credentials(password="right-pass"))
    assert output == "you ran: show clock\n"


async def test_ssh_wrong_password_fails_without_leaking_it(ssh_port: int) -> None:
    task = make_task(host="127.0.0.1", port=ssh_port, username="netops")
    with pytest.raises(DriverError) as error:
        await SshDriver().run(task, Credentials(password="wrong-pass"))
    assert "wrong-pass" not in str(error.value)
    assert "authentication" in str(error.value)


async def test_ssh_unreachable_device_fails_clearly() -> None:
    task = make_task(host="127.0.0.1", port=free_port(None), username="netops")
    with pytest.raises(DriverError, match="cannot reach"):
        await asyncio.wait_for(SshDriver().run(task, Credentials(password="x")), 15)
