"""The executor: running → final result, ack after publish, deadlines, timeouts, sharing."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from netcron.config import Settings
from netcron.crypto import CredentialCipher, Credentials
from netcron.executor.drivers.base import DriverError
from netcron.executor.drivers.emulated import EmulatedDriver
from netcron.executor.executions import read_executions
from netcron.messages import TaskMessage
from netcron.platforms import ErrorKind
from netcron.runs import RunStatus

from .conftest import Broker, RecordingDriver, executor_for, make_task, running


async def test_a_task_reports_running_then_succeeded_and_is_acked(
    broker: Broker, settings: Settings
) -> None:
    driver = EmulatedDriver(delay_min=0, delay_max=0.01)
    task = make_task()
    async with running(executor_for(broker, settings, driver)):
        await broker.publish_task(task)
        running_result, final = await broker.wait_results(2)
    assert running_result.status == RunStatus.RUNNING
    assert final.status == RunStatus.SUCCEEDED
    assert final.run_id == task.run_id
    assert "Cisco IOS" in (final.output or "")
    assert final.executor_id == "ex-1"
    assert final.started_at and final.finished_at and final.finished_at >= final.started_at
    assert await broker.pending_tasks() == 0


async def test_a_task_past_its_deadline_is_not_run(broker: Broker, settings: Settings) -> None:
    driver = RecordingDriver()
    task = make_task()
    task = task.model_copy(update={"deadline": task.scheduled_at})
    async with running(executor_for(broker, settings, driver)):
        await broker.publish_task(task)
        [result] = await broker.wait_results(1)
    assert result.status == RunStatus.TIMED_OUT
    assert "deadline" in (result.error or "")
    assert driver.calls == []


async def test_a_driver_failure_is_reported_failed(broker: Broker, settings: Settings) -> None:
    async def fail(task: TaskMessage, credentials: Credentials) -> str:
        raise DriverError("connection refused by 10.1.2.3")

    async with running(executor_for(broker, settings, RecordingDriver(behaviour=fail))):
        await broker.publish_task(make_task())
        final = (await broker.wait_results(2))[-1]
    assert final.status == RunStatus.FAILED
    assert final.error == "connection refused by 10.1.2.3"


async def test_a_run_slower_than_its_connect_and_command_timeouts_is_timed_out(
    broker: Broker, settings: Settings
) -> None:
    async def slow(task: TaskMessage, credentials: Credentials) -> str:
        await asyncio.sleep(5)
        return "late"

    async with running(executor_for(broker, settings, RecordingDriver(behaviour=slow))):
        await broker.publish_task(make_task(timeout=0.2, connect_timeout=0.1))
        final = (await broker.wait_results(2))[-1]
    assert final.status == RunStatus.TIMED_OUT
    assert final.error_kind == ErrorKind.TIMEOUT
    assert final.started_at and final.finished_at
    assert (final.finished_at - final.started_at).total_seconds() < 1
    assert await broker.pending_tasks() == 0


async def test_long_output_is_cut_and_flagged(broker: Broker, settings: Settings) -> None:
    async with running(executor_for(broker, settings, RecordingDriver(output="x" * 5000))):
        await broker.publish_task(make_task())
        final = (await broker.wait_results(2))[-1]
    assert final.output_truncated is True
    assert len((final.output or "").encode()) == settings.output_max_bytes


async def test_a_malformed_task_is_dropped_and_work_goes_on(
    broker: Broker, settings: Settings
) -> None:
    async with running(executor_for(broker, settings, RecordingDriver())):
        await broker.js.publish("netcron.tasks.cisco_ios", b"{not json")
        await broker.publish_task(make_task())
        final = (await broker.wait_results(2))[-1]
    assert final.status == RunStatus.SUCCEEDED
    assert await broker.pending_tasks() == 0


async def test_two_executors_share_the_work_and_each_task_runs_once(
    broker: Broker, settings: Settings
) -> None:
    first, second = RecordingDriver(), RecordingDriver()
    tasks = [make_task() for _ in range(20)]
    async with (
        running(executor_for(broker, settings, first, "ex-a")),
        running(executor_for(broker, settings, second, "ex-b")),
    ):
        for task in tasks:
            await broker.publish_task(task)
        await broker.wait_results(40)
    ran = [task.run_id for task, _ in first.calls + second.calls]
    assert sorted(ran) == sorted(task.run_id for task in tasks)


async def test_a_republished_task_is_dropped_by_the_broker(
    broker: Broker, settings: Settings
) -> None:
    driver = RecordingDriver()
    task = make_task()
    await broker.publish_task(task)
    await broker.publish_task(task)
    async with running(executor_for(broker, settings, driver)):
        await broker.wait_results(2)
        await asyncio.sleep(0.3)
    assert len(driver.calls) == 1


async def test_credentials_reach_the_driver_and_nothing_else(
    broker: Broker, secret_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(_env_file=None, secret_key=secret_key, executor_driver="ssh")  # type: ignore[call-arg]
    token = CredentialCipher(secret_key).encrypt(Credentials(password="t0p-secret"))
    driver = RecordingDriver()
    caplog.set_level(logging.DEBUG)
    async with running(executor_for(broker, settings, driver)):
        await broker.publish_task(make_task(credentials=token))
        results = await broker.wait_results(2)
    assert driver.calls[0][1].password == "t0p-secret"
    assert all("t0p-secret" not in result.model_dump_json() for result in results)
    assert "t0p-secret" not in caplog.text


async def test_a_task_published_early_starts_at_its_scheduled_time(
    broker: Broker, settings: Settings
) -> None:
    called_at: list[datetime] = []

    async def note_time(task: TaskMessage, credentials: Credentials) -> str:
        called_at.append(datetime.now(UTC))
        return "ok"

    driver = RecordingDriver(behaviour=note_time)
    scheduled = datetime.now(UTC) + timedelta(milliseconds=300)
    task = make_task(scheduled_at=scheduled, deadline=scheduled + timedelta(seconds=30))
    async with running(executor_for(broker, settings, driver)):
        await broker.publish_task(task)
        running_result, final = await broker.wait_results(2)
    assert running_result.started_at is not None and running_result.started_at >= scheduled
    assert final.status == RunStatus.SUCCEEDED
    assert called_at and called_at[0] >= scheduled


async def test_a_quick_command_reports_only_its_final_result(
    broker: Broker, settings: Settings
) -> None:
    driver = EmulatedDriver(delay_min=0, delay_max=0)
    async with running(executor_for(broker, settings, driver, running_after=0.5)):
        await broker.publish_task(make_task())
        [final] = await broker.wait_results(1)
        await asyncio.sleep(0.7)
        assert await broker.wait_results(1) == [final]
    assert final.status == RunStatus.SUCCEEDED
    assert final.started_at is not None


async def test_a_slow_command_reports_running_while_it_runs(
    broker: Broker, settings: Settings
) -> None:
    driver = EmulatedDriver(delay_min=0.6, delay_max=0.6)
    async with running(executor_for(broker, settings, driver, running_after=0.2)):
        await broker.publish_task(make_task())
        running_result, final = await broker.wait_results(2)
    assert running_result.status == RunStatus.RUNNING
    assert final.status == RunStatus.SUCCEEDED
    assert running_result.started_at == final.started_at


async def test_a_task_held_for_its_time_leaves_its_slot_to_a_task_due_now(
    broker: Broker, secret_key: str
) -> None:
    settings = Settings(_env_file=None, secret_key=secret_key, executor_concurrency=1)  # type: ignore[call-arg]
    called: dict[str, datetime] = {}

    async def note(task: TaskMessage, credentials: Credentials) -> str:
        called[task.command] = datetime.now(UTC)
        return "ok"

    later = datetime.now(UTC) + timedelta(milliseconds=600)
    early = make_task(command="later", scheduled_at=later, deadline=later + timedelta(seconds=30))
    async with running(executor_for(broker, settings, RecordingDriver(behaviour=note))):
        await broker.publish_task(early)
        await asyncio.sleep(0.1)
        published = datetime.now(UTC)
        await broker.publish_task(make_task(command="now"))
        await broker.wait_results(4)
    assert called["now"] < later
    assert called["now"] - published < timedelta(milliseconds=300)
    assert called["later"] >= later


async def test_the_execution_log_has_a_line_per_command_started_and_none_for_an_expired_task(
    broker: Broker, settings: Settings, tmp_path: Path
) -> None:
    log_path = tmp_path / "executions.log"
    settings = settings.model_copy(update={"executor_execution_log": str(log_path)})
    task = make_task()
    expired = make_task()
    expired = expired.model_copy(update={"deadline": expired.scheduled_at})
    executor = executor_for(broker, settings, RecordingDriver(), running_after=60)
    async with running(executor):
        await broker.publish_task(task)
        await broker.publish_task(expired)
        await broker.wait_results(2)
    executor.executions.close()
    assert read_executions(log_path) == Counter({(task.run_id, 1): 1})
