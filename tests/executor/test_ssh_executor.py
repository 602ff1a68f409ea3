"""The executor with the SSH driver: session limits across executors, results, checks, secrets."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from netcron.config import Settings
from netcron.crypto import CredentialCipher, Credentials
from netcron.executor.checks import CheckResponder
from netcron.executor.drivers.emulated import EmulatedDriver
from netcron.executor.drivers.ssh import SshDriver
from netcron.executor.service import Executor
from netcron.executor.sessions import SessionLeases, open_sessions_bucket
from netcron.messages import CHECKS_SUBJECT, CheckRequest, CheckResult, TaskMessage
from netcron.platforms import ErrorKind
from netcron.runs import RunStatus
from netcron.simulator import Behaviour, SimulatedDevice, start_simulated_devices

from .conftest import Broker, make_task, running

PASSWORD = "Exec-Pa55-word"
ENABLE = "Exec-En4ble"


@pytest.fixture
def ssh_settings(secret_key: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, secret_key=secret_key, executor_driver="ssh", executor_concurrency=8
    )


@pytest.fixture
def cipher(secret_key: str) -> CredentialCipher:
    return CredentialCipher(secret_key)


@pytest.fixture
async def device() -> AsyncIterator[SimulatedDevice]:
    """A cisco_ios device whose answers take a while (each run holds its session ~0.5 s)."""
    [device] = await start_simulated_devices(
        ["cisco_ios"], password=PASSWORD, enable_secret=ENABLE, behaviour=Behaviour(latency=0.08)
    )
    yield device
    await device.stop()


async def ssh_executor(broker: Broker, settings: Settings, name: str) -> Executor:
    leases = SessionLeases(await open_sessions_bucket(broker.js), name)
    return Executor(
        broker.js, settings, SshDriver(), executor_id=name, running_after=0.5, sessions=leases
    )


def task_for(
    device: SimulatedDevice, cipher: CredentialCipher, device_id: uuid.UUID, **changes: object
) -> TaskMessage:
    credentials = Credentials(password=PASSWORD, enable_secret=ENABLE)
    return make_task(
        device_id=device_id,
        platform=device.platform,
        host=device.host,
        port=device.port,
        username=device.username,
        credentials=cipher.encrypt(credentials),
        command="show version",
        **changes,
    )


def finals(broker: Broker) -> list:  # type: ignore[type-arg]
    return [r for r in broker.results if r.status != RunStatus.RUNNING]


async def wait_finals(broker: Broker, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(finals(broker)) < count:
        assert time.monotonic() < deadline, f"expected {count} final results: {broker.results}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("limit", "peak"), [(1, 1), (2, 2)])
async def test_runs_to_one_device_never_exceed_its_session_limit_across_executors(
    broker: Broker,
    ssh_settings: Settings,
    cipher: CredentialCipher,
    device: SimulatedDevice,
    caplog: pytest.LogCaptureFixture,
    limit: int,
    peak: int,
) -> None:
    device_id = uuid.uuid4()
    tasks = [task_for(device, cipher, device_id, session_limit=limit) for _ in range(4)]
    # one task at a time per executor: any overlap on the device is across executors
    one_each = ssh_settings.model_copy(update={"executor_concurrency": 1})
    first = await ssh_executor(broker, one_each, "ex-1")
    second = await ssh_executor(broker, one_each, "ex-2")
    with caplog.at_level(logging.INFO, logger="netcron.executor.sessions"):
        async with running(first), running(second):
            for task in tasks:
                await broker.publish_task(task)
            await wait_finals(broker, 4)
    results = finals(broker)
    assert {r.status for r in results} == {RunStatus.SUCCEEDED}
    assert {r.executor_id for r in results} == {"ex-1", "ex-2"}
    assert device.peak_connections == peak
    waited = any("waits" in record.getMessage() for record in caplog.records)
    assert waited is (limit < 2)  # two executors, one task each at a time
    if limit == 1:
        # A run that waited for the session started when it got it, not before: it
        # showed queued, not running, while it waited.
        spans = sorted((r.started_at, r.finished_at) for r in results)
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))


async def test_results_carry_the_error_kind_and_host_key_and_never_the_password(
    broker: Broker,
    ssh_settings: Settings,
    cipher: CredentialCipher,
    device: SimulatedDevice,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    known = "Known-Wr0ng-Exec-Password"
    wrong = make_task(
        platform=device.platform,
        host=device.host,
        port=device.port,
        username=device.username,
        credentials=cipher.encrypt(Credentials(password=known, enable_secret=known)),
    )
    right = task_for(device, cipher, uuid.uuid4())
    async with running(await ssh_executor(broker, ssh_settings, "ex-1")):
        await broker.publish_task(wrong)
        await broker.publish_task(right)
        await wait_finals(broker, 2)
    by_run = {r.run_id: r for r in finals(broker)}
    failed, succeeded = by_run[wrong.run_id], by_run[right.run_id]
    assert (failed.status, failed.error_kind) == (RunStatus.FAILED, ErrorKind.AUTH_FAILED)
    assert failed.host_key == succeeded.host_key == device.fingerprint
    assert succeeded.status == RunStatus.SUCCEEDED and succeeded.error_kind is None
    assert "Cisco IOS Software" in (succeeded.output or "")
    assert all(known not in r.model_dump_json() for r in broker.results)
    assert known not in caplog.text
    assert all(known not in str(record.args) for record in caplog.records)


async def test_a_hung_session_is_closed_and_its_slot_freed_at_the_deadline(
    broker: Broker, ssh_settings: Settings, cipher: CredentialCipher
) -> None:
    [hung] = await start_simulated_devices(
        ["cisco_nxos"], password=PASSWORD, behaviour=Behaviour(hang_on="show version")
    )
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=1)
        task = task_for(hung, cipher, uuid.uuid4(), timeout=60, deadline=deadline)
        async with running(await ssh_executor(broker, ssh_settings, "ex-1")) as executor:
            await broker.publish_task(task)
            await wait_finals(broker, 1, timeout=5)
            [final] = finals(broker)
            assert executor.slots._value == ssh_settings.executor_concurrency
        assert (final.status, final.error_kind) == (RunStatus.TIMED_OUT, ErrorKind.TIMEOUT)
        assert final.finished_at and final.finished_at <= deadline + timedelta(seconds=0.5)
        await asyncio.sleep(0.2)
        assert hung.connections == 0
    finally:
        await hung.stop()


async def test_a_check_request_is_answered_over_nats(
    broker: Broker, cipher: CredentialCipher, device: SimulatedDevice
) -> None:
    responder = CheckResponder(broker.nc, SshDriver(), "ex-1", cipher)
    await responder.start()
    request = CheckRequest(
        device_id=uuid.uuid4(),
        platform=device.platform,
        host=device.host,
        port=device.port,
        username=device.username,
        credentials=cipher.encrypt(Credentials(password=PASSWORD, enable_secret=ENABLE)),
        connect_timeout=5,
    )
    try:
        reply = await broker.nc.request(CHECKS_SUBJECT, request.model_dump_json().encode(), 10)
    finally:
        await responder.stop()
    result = CheckResult.model_validate_json(reply.data)
    assert result.ok and result.login == "ok" and result.executor_id == "ex-1"
    assert (result.platform, result.software_version) == ("cisco_ios", "15.2(7)E8")
    assert result.host_key == device.fingerprint
    assert PASSWORD not in reply.data.decode()


async def test_a_check_of_a_hung_device_is_answered_in_bounded_time(
    broker: Broker, cipher: CredentialCipher
) -> None:
    [hung] = await start_simulated_devices(
        ["arista_eos"], password=PASSWORD, behaviour=Behaviour(hang_after_login=True)
    )
    responder = CheckResponder(broker.nc, SshDriver(), "ex-1", cipher)
    await responder.start()
    request = CheckRequest(
        device_id=uuid.uuid4(),
        platform=hung.platform,
        host=hung.host,
        port=hung.port,
        username=hung.username,
        credentials=cipher.encrypt(Credentials(password=PASSWORD)),
        connect_timeout=0.5,
    )
    started = time.monotonic()
    try:
        reply = await broker.nc.request(CHECKS_SUBJECT, request.model_dump_json().encode(), 10)
    finally:
        await responder.stop()
        await hung.stop()
    result = CheckResult.model_validate_json(reply.data)
    assert time.monotonic() - started < 2
    assert not result.ok and result.reachable
    assert result.error_kind == ErrorKind.TIMEOUT


async def test_the_emulated_driver_answers_a_check_from_the_emulation() -> None:
    request = CheckRequest(device_id=uuid.uuid4(), platform="arista_eos", host="10.0.0.9", port=22)
    result = await EmulatedDriver().check(request, Credentials(), "ex-1")
    assert result.ok and result.platform == "arista_eos" and result.software_version == "4.30.2F"


async def test_a_check_waits_for_a_free_session_and_says_when_none_came(
    broker: Broker, cipher: CredentialCipher, device: SimulatedDevice
) -> None:
    leases = SessionLeases(await open_sessions_bucket(broker.js), "ex-1")
    responder = CheckResponder(broker.nc, SshDriver(), "ex-1", cipher, leases)
    await responder.start()
    request = CheckRequest(
        device_id=uuid.uuid4(),
        platform=device.platform,
        host=device.host,
        port=device.port,
        username=device.username,
        credentials=cipher.encrypt(Credentials(password=PASSWORD, enable_secret=ENABLE)),
        connect_timeout=1,
        session_limit=1,
    )
    busy_until = datetime.now(UTC) + timedelta(seconds=5)
    try:
        async with leases.hold(request.device_id, 1, busy_until, "a-long-run"):
            reply = await broker.nc.request(CHECKS_SUBJECT, request.model_dump_json().encode(), 10)
        free = await broker.nc.request(CHECKS_SUBJECT, request.model_dump_json().encode(), 10)
    finally:
        await responder.stop()
    busy = CheckResult.model_validate_json(reply.data)
    assert not busy.ok and busy.error_kind == ErrorKind.TIMEOUT
    assert "no free session" in (busy.error or "")
    assert CheckResult.model_validate_json(free.data).ok
    assert device.peak_connections == 1
