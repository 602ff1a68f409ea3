"""The emulated driver: plausible, stable output per platform and command."""

from __future__ import annotations

import pytest

from netcron.crypto import Credentials
from netcron.executor.drivers.base import DriverError
from netcron.executor.drivers.emulated import EmulatedDriver, emulated_output

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
