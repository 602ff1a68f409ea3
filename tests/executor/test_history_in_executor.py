"""The executor masks secrets and parses output before a result leaves it."""

from __future__ import annotations

from netcron.config import Settings
from netcron.history.options import ParseSpec
from netcron.runs import RunStatus
from netcron.simulator import outputs

from ..history.configs import IOS_RUNNING, IOS_SECRETS
from .conftest import Broker, RecordingDriver, executor_for, make_task, running


async def test_no_secret_of_a_configuration_reaches_the_broker(
    broker: Broker, settings: Settings
) -> None:
    task = make_task(command="show running-config", mask=[r"hostname (\S+)"])
    async with running(executor_for(broker, settings, RecordingDriver(output=IOS_RUNNING))):
        await broker.publish_task(task)
        result = (await broker.wait_results(2))[-1]
    assert result.status == RunStatus.SUCCEEDED
    assert result.output is not None and "enable secret 9 <removed>" in result.output
    assert "hostname <removed>" in result.output
    raw = result.model_dump_json()
    assert [secret for secret in (*IOS_SECRETS, "core-sw-1") if secret in raw] == []


async def test_parsed_records_travel_beside_the_text(broker: Broker, settings: Settings) -> None:
    task = make_task(command="show version", parse=ParseSpec(engine="textfsm"))
    text = outputs.ios_version(False)("r1", 1)
    async with running(executor_for(broker, settings, RecordingDriver(output=text))):
        await broker.publish_task(task)
        result = (await broker.wait_results(2))[-1]
    assert result.parsed and result.parsed[0]["hostname"] == "r1"
    assert result.parse_error is None
    assert result.output == text


async def test_a_parse_failure_does_not_fail_the_run(broker: Broker, settings: Settings) -> None:
    task = make_task(
        command="show interfaces", platform="cisco_nxos", parse=ParseSpec(engine="textfsm")
    )
    text = outputs.nxos_interfaces("r1", 1)
    async with running(executor_for(broker, settings, RecordingDriver(output=text))):
        await broker.publish_task(task)
        result = (await broker.wait_results(2))[-1]
    assert result.status == RunStatus.SUCCEEDED
    assert result.parsed is None
    assert result.parse_error is not None and result.parse_error.startswith("textfsm:")
    assert result.output and text.startswith(result.output)


async def test_a_mask_that_does_not_compile_fails_the_run_without_output(
    broker: Broker, settings: Settings
) -> None:
    task = make_task(mask=["(unclosed"])
    async with running(executor_for(broker, settings, RecordingDriver(output=IOS_RUNNING))):
        await broker.publish_task(task)
        result = (await broker.wait_results(2))[-1]
    assert result.status == RunStatus.FAILED
    assert result.output is None
    assert "mask" in (result.error or "")
