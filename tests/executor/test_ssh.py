"""The SSH driver against simulated devices over real SSH: every platform, every error kind."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import warnings
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncssh
import pytest

from netcron.crypto import Credentials
from netcron.devstack import free_port
from netcron.executor.drivers.base import DriverError
from netcron.executor.drivers.ssh import SshDriver
from netcron.messages import CheckRequest, TaskMessage
from netcron.observability.metrics import EXECUTOR
from netcron.platforms import PLATFORMS, ErrorKind, HostKeyPolicy
from netcron.simulator import Behaviour, SimulatedDevice, start_simulated_devices
from netcron.simulator.server import stop_simulated_devices

from .conftest import make_task

PASSWORD = "Sim-Pa55-word"
ENABLE = "Sim-En4ble"
RIGHT = Credentials(password=PASSWORD, enable_secret=ENABLE)

#: A long command per platform: longer than a page, so paging must be off.
CONFIG = {"juniper_junos": "show configuration", "linux": "ip addr"}
FIRST_LINE = {
    "cisco_ios": "Building configuration...",
    "cisco_xe": "Building configuration...",
    "cisco_nxos": "!Command: show running-config",
    "cisco_xr": "Building configuration...",
    "arista_eos": "! Command: show running-config",
    "juniper_junos": "## Last commit: revision 0 by netops",
    "linux": "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN",
}


@pytest.fixture(scope="module")
async def devices() -> AsyncIterator[dict[str, SimulatedDevice]]:
    started = await start_simulated_devices(password=PASSWORD, enable_secret=ENABLE)
    yield {device.platform: device for device in started}
    await stop_simulated_devices(started)


@pytest.fixture
async def faulty(request: pytest.FixtureRequest) -> AsyncIterator[SimulatedDevice]:
    """One device (cisco_ios unless the test says) with the test's Behaviour."""
    platform, behaviour = request.param
    [device] = await start_simulated_devices(
        [platform], password=PASSWORD, enable_secret=ENABLE, behaviour=behaviour
    )
    yield device
    await device.stop()


def task_for(device: SimulatedDevice, command: str | None = None, **changes: Any) -> TaskMessage:
    return make_task(
        platform=device.platform,
        host=device.host,
        port=device.port,
        username=device.username,
        command=command or CONFIG.get(device.platform, "show running-config"),
        **changes,
    )


async def failure(task: TaskMessage, credentials: Credentials = RIGHT) -> DriverError:
    with pytest.raises(DriverError) as caught:
        await asyncio.wait_for(SshDriver().run(task, credentials), 20)
    return caught.value


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_every_platform_returns_clean_output_with_paging_off(
    devices: dict[str, SimulatedDevice], platform: str
) -> None:
    device = devices[platform]
    output = await SshDriver().run(task_for(device), RIGHT)
    lines = output.text.splitlines()
    assert lines[0] == FIRST_LINE[platform]  # no echo of the command, no banner
    assert len(lines) > 24  # more than a page
    prompt = device.profile.prompt(device.hostname, device.username, True)
    assert prompt not in output.text
    assert "More" not in output.text and "\x1b" not in output.text and "\r" not in output.text
    assert output.host_key == device.fingerprint
    if device.profile.paging_off:
        assert set(device.profile.paging_off) <= set(device.commands)


@pytest.mark.parametrize("platform", ["cisco_ios", "cisco_xe", "arista_eos"])
async def test_enable_is_used_where_the_platform_has_it(
    devices: dict[str, SimulatedDevice], platform: str
) -> None:
    device = devices[platform]
    device.commands.clear()
    output = await SshDriver().run(task_for(device), RIGHT)
    assert "enable" in device.commands
    assert "hostname" in output.text  # privileged-only command


async def test_a_wrong_enable_secret_is_privilege_failed(
    devices: dict[str, SimulatedDevice],
) -> None:
    error = await failure(
        task_for(devices["cisco_ios"]), Credentials(password=PASSWORD, enable_secret="nope")
    )
    assert error.kind == ErrorKind.PRIVILEGE_FAILED
    assert "nope" not in str(error)


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_an_unknown_command_is_command_rejected(
    devices: dict[str, SimulatedDevice], platform: str
) -> None:
    error = await failure(task_for(devices[platform], "shw version"))
    assert error.kind == ErrorKind.COMMAND_REJECTED
    assert error.host_key == devices[platform].fingerprint


async def test_a_wrong_password_is_auth_failed_and_leaves_no_trace(
    devices: dict[str, SimulatedDevice], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    known = "Known-Wr0ng-Password"
    error = await failure(task_for(devices["cisco_xe"]), Credentials(password=known))
    assert error.kind == ErrorKind.AUTH_FAILED
    assert known not in str(error)
    assert caplog.records  # asyncssh and scrapli did log the attempt
    assert known not in caplog.text
    assert all(known not in str(record.args) for record in caplog.records)


async def test_a_closed_port_is_unreachable() -> None:
    task = make_task(host="127.0.0.1", port=free_port(None), username="netops")
    error = await failure(task)
    assert error.kind == ErrorKind.UNREACHABLE
    assert error.host_key is None


@pytest.mark.parametrize(
    "faulty", [("cisco_nxos", Behaviour(hang_after_login=True))], indirect=True
)
async def test_a_device_without_a_prompt_times_out_at_the_connect_timeout(
    faulty: SimulatedDevice,
) -> None:
    started = time.monotonic()
    error = await failure(task_for(faulty, connect_timeout=0.5, timeout=5))
    assert error.kind == ErrorKind.TIMEOUT
    assert 0.5 <= time.monotonic() - started < 2
    assert error.host_key == faulty.fingerprint


@pytest.mark.parametrize("faulty", [("cisco_xr", Behaviour(hang_on="show running"))], indirect=True)
async def test_a_hung_command_times_out_at_the_command_timeout_and_closes(
    faulty: SimulatedDevice,
) -> None:
    started = time.monotonic()
    error = await failure(task_for(faulty, connect_timeout=5, timeout=0.5))
    assert error.kind == ErrorKind.TIMEOUT
    assert 0.5 <= time.monotonic() - started < 2
    await asyncio.sleep(0.2)
    assert faulty.connections == 0


@pytest.mark.parametrize(
    "faulty", [("arista_eos", Behaviour(hang_on="show running"))], indirect=True
)
async def test_both_timeouts_stay_inside_the_deadline(faulty: SimulatedDevice) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=0.6)
    started = time.monotonic()
    error = await failure(task_for(faulty, connect_timeout=5, timeout=30, deadline=deadline))
    assert error.kind == ErrorKind.TIMEOUT
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "faulty", [("juniper_junos", Behaviour(drop_on="show configuration"))], indirect=True
)
async def test_a_connection_dropped_mid_output_is_protocol(faulty: SimulatedDevice) -> None:
    error = await failure(task_for(faulty))
    assert error.kind == ErrorKind.PROTOCOL


@pytest.mark.parametrize("faulty", [("cisco_ios", Behaviour(latency=0.05))], indirect=True)
async def test_latency_slows_but_does_not_fail(faulty: SimulatedDevice) -> None:
    started = time.monotonic()
    output = await SshDriver().run(task_for(faulty, "show version"), RIGHT)
    assert "Cisco IOS Software" in output.text
    assert time.monotonic() - started > 0.2  # banner, and each on-open command and the command


@pytest.mark.parametrize("policy", [HostKeyPolicy.TRUST_ON_FIRST_USE, HostKeyPolicy.PINNED])
@pytest.mark.parametrize("faulty", [("cisco_ios", Behaviour())], indirect=True)
async def test_a_changed_host_key_fails_before_the_password_is_sent(
    faulty: SimulatedDevice, policy: HostKeyPolicy
) -> None:
    known = faulty.fingerprint
    await faulty.change_host_key()
    attempts = faulty.password_attempts
    error = await failure(task_for(faulty, host_key_policy=policy, host_key=known))
    assert error.kind == ErrorKind.HOST_KEY_MISMATCH
    assert error.host_key == faulty.fingerprint != known
    assert faulty.password_attempts == attempts


async def test_pinned_without_a_key_refuses_before_the_password(
    devices: dict[str, SimulatedDevice],
) -> None:
    device = devices["linux"]
    attempts = device.password_attempts
    error = await failure(task_for(device, host_key_policy=HostKeyPolicy.PINNED, host_key=None))
    assert error.kind == ErrorKind.HOST_KEY_MISMATCH
    assert device.password_attempts == attempts


async def test_trust_on_first_use_accepts_and_reports_the_key(
    devices: dict[str, SimulatedDevice],
) -> None:
    device = devices["cisco_nxos"]
    first = await SshDriver().run(task_for(device, "show version"), RIGHT)
    again = await SshDriver().run(task_for(device, "show version", host_key=first.host_key), RIGHT)
    assert first.host_key == again.host_key == device.fingerprint
    assert first.host_key and first.host_key.startswith("SHA256:")


async def test_ignore_accepts_any_key_and_warns_on_every_connection(
    devices: dict[str, SimulatedDevice], caplog: pytest.LogCaptureFixture
) -> None:
    device = devices["cisco_xr"]
    task = task_for(
        device, "show version", host_key_policy=HostKeyPolicy.IGNORE, host_key="SHA256:other"
    )
    with caplog.at_level(logging.WARNING):
        await SshDriver().run(task, RIGHT)
        await SshDriver().run(task, RIGHT)
    warnings = [r for r in caplog.records if "not checked" in r.getMessage()]
    assert len(warnings) == 2


@pytest.mark.parametrize("faulty", [("linux", Behaviour())], indirect=True)
async def test_a_private_key_with_a_passphrase_logs_in(faulty: SimulatedDevice) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    faulty.authorized_key = key
    faulty.password = "not-this-one"
    with warnings.catch_warnings():  # ssh-keygen's default 16 rounds, which bcrypt finds few
        warnings.simplefilter("ignore", UserWarning)
        exported = key.export_private_key("openssh", passphrase="key-phrase", rounds=16).decode()
    task = task_for(faulty, "uname -a")
    output = await SshDriver().run(task, Credentials(private_key=exported, password="key-phrase"))
    assert output.text.startswith("Linux linux-1")
    assert faulty.password_attempts == 0
    error = await failure(task, Credentials(private_key=exported, password="wrong-phrase"))
    assert error.kind == ErrorKind.AUTH_FAILED


@pytest.mark.parametrize(
    "faulty", [("cisco_ios", Behaviour(config_change_interval=0.3))], indirect=True
)
async def test_a_changing_configuration_is_seen_by_the_next_run(faulty: SimulatedDevice) -> None:
    first = await SshDriver().run(task_for(faulty), RIGHT)
    await asyncio.sleep(0.35)
    second = await SshDriver().run(task_for(faulty), RIGHT)
    assert first.text != second.text


def check_request(device: SimulatedDevice, **changes: Any) -> CheckRequest:
    request = CheckRequest(
        device_id=uuid.uuid4(),
        platform=device.platform,
        host=device.host,
        port=device.port,
        username=device.username,
        connect_timeout=5,
    )
    return request.model_copy(update=changes)


@pytest.mark.parametrize(
    ("platform", "prompt", "version"),
    [
        ("cisco_ios", "cisco-ios-1#", "15.2(7)E8"),
        ("cisco_xe", "cisco-xe-1#", "17.09.04a"),
        ("cisco_nxos", "cisco-nxos-1#", "10.3(4a)"),
        ("cisco_xr", "RP/0/RP0/CPU0:cisco-xr-1#", "7.9.2"),
        ("arista_eos", "arista-eos-1#", "4.30.2F"),
        ("juniper_junos", "netops@juniper-junos-1>", "22.4R1.10"),
        ("linux", None, "6.1.0-18-amd64"),
    ],
)
async def test_a_check_reports_login_prompt_key_platform_and_version(
    devices: dict[str, SimulatedDevice], platform: str, prompt: str | None, version: str
) -> None:
    device = devices[platform]
    result = await SshDriver().check(check_request(device), RIGHT, "ex-1")
    assert result.ok and result.reachable and result.login == "ok"
    assert result.connect_ms is not None and result.connect_ms >= 0
    assert result.host_key == device.fingerprint
    assert result.prompt == prompt
    assert (result.platform, result.software_version) == (platform, version)


async def test_a_check_with_a_wrong_password_says_so(devices: dict[str, SimulatedDevice]) -> None:
    device = devices["arista_eos"]
    result = await SshDriver().check(check_request(device), Credentials(password="x"), "ex-1")
    assert not result.ok and result.reachable
    assert (result.login, result.error_kind) == ("failed", ErrorKind.AUTH_FAILED)
    assert result.host_key == device.fingerprint


async def test_a_check_of_a_closed_port_is_unreachable() -> None:
    request = CheckRequest(
        device_id=uuid.uuid4(), platform="cisco_ios", host="127.0.0.1", port=free_port(None)
    )
    result = await SshDriver().check(request, RIGHT, "ex-1")
    assert not result.ok and not result.reachable
    assert (result.login, result.error_kind) == ("not_tried", ErrorKind.UNREACHABLE)


async def test_session_opening_is_measured_and_failures_counted_by_kind(
    devices: dict[str, SimulatedDevice],
) -> None:
    def sample(name: str, **labels: str) -> float:
        return EXECUTOR.get_sample_value(name, labels) or 0.0

    opened = sample("netcron_ssh_connect_seconds_count", platform="arista_eos")
    refused = sample("netcron_ssh_connect_failures_total", kind="auth_failed")
    await SshDriver().run(task_for(devices["arista_eos"]), RIGHT)
    await failure(task_for(devices["arista_eos"]), Credentials(password="Wr0ng-for-metrics"))
    assert sample("netcron_ssh_connect_seconds_count", platform="arista_eos") == opened + 1
    assert sample("netcron_ssh_connect_failures_total", kind="auth_failed") == refused + 1
