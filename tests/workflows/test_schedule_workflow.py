"""ScheduleWorkflow behaviour, in the time-skipping environment (minutes pass in milliseconds)."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from netcron.firelead import MAX_LEAD, FireLead
from netcron.platforms import ErrorKind
from netcron.runs import RunStatus
from netcron.runspec import (
    MEMO_SPEC_VERSION,
    SIGNAL_STOP,
    SIGNAL_UPDATE,
    UPDATE_SPEC,
    UPDATE_STOP,
    UPDATE_TRIGGER,
)
from netcron.workflows import schedule as schedule_module
from netcron.workflows.schedule import ScheduleWorkflow

from .conftest import SCHEDULE_ID, Harness, Stubs, make_spec, result_for, send_result, until


async def test_fires_at_each_cron_time_and_records_the_result(harness: Harness) -> None:
    stubs = harness.stubs
    handle = await harness.start(make_spec(ttl_seconds=300))
    for fire in range(1, 3):
        await harness.env.sleep(60)
        await until(lambda fire=fire: len(stubs.tasks) == fire)
        task = stubs.tasks[-1]
        assert task.scheduled_at.second == 0
        assert task.run_id == f"{task.schedule_id}:{int(task.scheduled_at.timestamp())}"
        assert task.command == "show version"
        assert task.credentials == "token"
        await send_result(handle, result_for(task))
        await until(lambda fire=fire: len(stubs.records) == fire)
        record = stubs.records[-1].record
        assert (record.run_id, record.status) == (task.run_id, RunStatus.SUCCEEDED)
        assert record.output == "ok"
    first, second = stubs.tasks
    assert second.scheduled_at - first.scheduled_at == timedelta(minutes=1)


async def test_run_without_result_ends_timed_out_after_ttl(harness: Harness) -> None:
    await harness.start(make_spec(ttl_seconds=30))
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 1)
    await harness.env.sleep(31)
    await until(lambda: harness.stubs.records)
    record = harness.stubs.records[0].record
    assert record.status == RunStatus.TIMED_OUT
    assert record.run_id == harness.stubs.tasks[0].run_id


async def test_paused_schedule_does_not_fire_and_resumes_without_catch_up(harness: Harness) -> None:
    handle = await harness.start(make_spec(is_active=False))
    await harness.env.sleep(300)
    assert harness.stubs.tasks == []
    await handle.signal(SIGNAL_UPDATE, make_spec(version=2, is_active=True))
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 1)
    assert RunStatus.SKIPPED not in harness.stubs.statuses()


async def test_update_takes_effect_from_the_next_fire(harness: Harness) -> None:
    handle = await harness.start(make_spec())
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 1)
    await send_result(handle, result_for(harness.stubs.tasks[0]))
    await handle.signal(SIGNAL_UPDATE, make_spec(version=2, command="show clock"))
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 2)
    assert [task.command for task in harness.stubs.tasks] == ["show version", "show clock"]


async def test_an_older_spec_is_ignored(harness: Harness) -> None:
    handle = await harness.start(make_spec(version=5))
    await handle.signal(SIGNAL_UPDATE, make_spec(version=4, command="show clock"))
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 1)
    assert harness.stubs.tasks[0].command == "show version"


async def test_overlap_skip_records_the_second_fire_as_skipped(harness: Harness) -> None:
    await harness.start(make_spec(ttl_seconds=300, overlap="skip"))
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 1)
    await harness.env.sleep(60)
    await until(lambda: RunStatus.SKIPPED in harness.stubs.statuses())
    assert len(harness.stubs.tasks) == 1
    skipped = harness.stubs.records[0].record
    assert skipped.scheduled_at - harness.stubs.tasks[0].scheduled_at == timedelta(minutes=1)


async def test_an_early_fire_waits_for_a_pending_run_instead_of_skipping(
    harness: Harness,
) -> None:
    lead = FireLead(mean=MAX_LEAD, samples=1)
    handle = await harness.start(make_spec(ttl_seconds=300, overlap="skip"), fire_lead=lead)
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 1)
    first = harness.stubs.tasks[0]
    # Past the second fire's early moment, but before its time: the first run still pending.
    second_at = first.scheduled_at + timedelta(minutes=1)
    now = await harness.env.get_current_time()
    await harness.env.sleep((second_at - now).total_seconds() - MAX_LEAD / 2)
    assert len(harness.stubs.tasks) == 1
    await send_result(handle, result_for(first))
    await until(lambda: len(harness.stubs.tasks) == 2)
    assert harness.stubs.tasks[1].scheduled_at == second_at
    assert RunStatus.SKIPPED not in harness.stubs.statuses()


async def test_overlap_allow_runs_side_by_side(harness: Harness) -> None:
    await harness.start(make_spec(ttl_seconds=300, overlap="allow"))
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 1)
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 2)
    assert RunStatus.SKIPPED not in harness.stubs.statuses()


async def test_missed_fires_run_once_and_skip_the_rest(harness: Harness) -> None:
    now = await harness.env.get_current_time()
    await harness.start(
        make_spec(starting_deadline_seconds=120), last_fire_at=now - timedelta(minutes=10)
    )
    await until(lambda: len(harness.stubs.records) >= 9 and harness.stubs.tasks)
    await harness.env.sleep(1)
    assert len(harness.stubs.tasks) == 1
    skipped = [r.record for r in harness.stubs.records if r.record.status == RunStatus.SKIPPED]
    assert len(skipped) == 9
    assert max(r.scheduled_at for r in skipped) < harness.stubs.tasks[0].scheduled_at


async def test_a_fire_past_the_starting_deadline_is_skipped(harness: Harness) -> None:
    now = await harness.env.get_current_time()
    await harness.start(
        make_spec(cron="0 * * * *", starting_deadline_seconds=5),
        last_fire_at=now - timedelta(hours=1, minutes=1),
    )
    await until(lambda: harness.stubs.records)
    assert harness.stubs.tasks == []
    assert harness.stubs.statuses() == [RunStatus.SKIPPED]


async def test_a_result_for_another_run_is_ignored(harness: Harness) -> None:
    handle = await harness.start(make_spec(ttl_seconds=30))
    await harness.env.sleep(60)
    await until(lambda: len(harness.stubs.tasks) == 1)
    task = harness.stubs.tasks[0]
    stray = result_for(task).model_copy(update={"run_id": f"{task.schedule_id}:1"})
    await send_result(handle, stray)
    await harness.env.sleep(31)
    await until(lambda: harness.stubs.records)
    assert harness.stubs.records[0].record.status == RunStatus.TIMED_OUT


async def test_schedule_gone_ends_the_workflow(harness: Harness) -> None:
    harness.stubs.schedule_gone = True
    handle = await harness.start(make_spec(ttl_seconds=300))
    await harness.env.sleep(60)
    await until(lambda: harness.stubs.tasks)
    await send_result(handle, result_for(harness.stubs.tasks[0]))
    assert await handle.result() is None


async def test_stop_signal_ends_the_workflow(harness: Harness) -> None:
    handle = await harness.start(make_spec())
    await handle.signal(SIGNAL_STOP)
    assert await handle.result() is None
    assert harness.stubs.tasks == []


async def test_after_the_stop_update_not_even_a_pending_retry_is_published(
    harness: Harness,
) -> None:
    spec = make_spec(
        cron="0 0 1 1 *", ttl_seconds=300, retry_max_attempts=3, retry_backoff_seconds=10
    )
    handle = await harness.start(spec)
    await handle.execute_update(UPDATE_TRIGGER, result_type=str)
    await until(lambda: harness.stubs.tasks)
    await send_result(handle, result_for(harness.stubs.tasks[0], RunStatus.FAILED))
    await until(lambda: harness.stubs.records)  # attempt 1 failed; a retry waits 10 s
    await handle.execute_update(UPDATE_STOP)
    await harness.env.sleep(60)
    assert await handle.result() is None
    assert [task.attempt for task in harness.stubs.tasks] == [1]


async def test_the_spec_update_answers_with_the_version_held_before_and_keeps_it_in_the_memo(
    harness: Harness,
) -> None:
    handle = await harness.start(make_spec(cron="* * * * *"))
    before = await handle.execute_update(
        UPDATE_SPEC, make_spec(version=3, is_active=False), result_type=int
    )
    assert before == 1
    assert await handle.execute_update(UPDATE_SPEC, make_spec(version=2), result_type=int) == 3
    assert (await (await handle.describe()).memo())[MEMO_SPEC_VERSION] == 3
    await harness.env.sleep(300)
    assert harness.stubs.tasks == []


@pytest.mark.parametrize(
    ("kind", "attempts"),
    [
        (ErrorKind.AUTH_FAILED, [1]),
        (ErrorKind.COMMAND_REJECTED, [1]),
        (ErrorKind.UNREACHABLE, [1, 2]),
    ],
)
async def test_only_an_unreachable_or_timed_out_device_is_retried(
    harness: Harness, kind: ErrorKind, attempts: list[int]
) -> None:
    spec = make_spec(
        cron="0 0 1 1 *", ttl_seconds=300, retry_max_attempts=2, retry_backoff_seconds=10
    )
    handle = await harness.start(spec)
    await handle.execute_update(UPDATE_TRIGGER, result_type=str)
    await until(lambda: harness.stubs.tasks)
    failed = result_for(harness.stubs.tasks[0], RunStatus.FAILED)
    await send_result(handle, failed.model_copy(update={"error_kind": kind}))
    await harness.env.sleep(30)
    await until(lambda: [t.attempt for t in harness.stubs.tasks] == attempts)
    if attempts == [1]:
        await until(lambda: harness.stubs.records)
        record = harness.stubs.records[-1].record
        assert (record.status, record.error_kind) == (RunStatus.FAILED, kind)


async def test_trigger_runs_now_with_its_own_run_id(harness: Harness) -> None:
    handle = await harness.start(make_spec(cron="0 0 1 1 *", ttl_seconds=300))
    run_id = await handle.execute_update(UPDATE_TRIGGER, result_type=str)
    assert run_id.startswith(f"{SCHEDULE_ID}:") and ":manual-" in run_id
    await until(lambda: harness.stubs.tasks)
    task = harness.stubs.tasks[0]
    assert task.run_id == run_id
    await send_result(handle, result_for(task))
    await until(lambda: harness.stubs.records)
    assert harness.stubs.records[0].record.status == RunStatus.SUCCEEDED


async def test_a_failed_attempt_is_retried_after_its_backoff(harness: Harness) -> None:
    spec = make_spec(
        cron="0 0 1 1 *", ttl_seconds=300, retry_max_attempts=3, retry_backoff_seconds=10
    )
    handle = await harness.start(spec)
    await handle.execute_update(UPDATE_TRIGGER, result_type=str)
    await until(lambda: harness.stubs.tasks)
    first = harness.stubs.tasks[0]
    await send_result(handle, result_for(first, RunStatus.FAILED))
    await until(lambda: harness.stubs.records)
    interim = harness.stubs.records[0].record
    assert (interim.status, interim.attempt) == (RunStatus.RUNNING, 1)
    await harness.env.sleep(10)
    await until(lambda: len(harness.stubs.tasks) == 2)
    second = harness.stubs.tasks[1]
    assert (second.run_id, second.attempt) == (first.run_id, 2)
    await send_result(handle, result_for(first, RunStatus.FAILED))  # a stale attempt-1 result
    await send_result(handle, result_for(second))
    await until(lambda: len(harness.stubs.records) == 2)
    final = harness.stubs.records[1].record
    assert (final.status, final.attempt) == (RunStatus.SUCCEEDED, 2)


async def test_retries_end_at_the_last_attempt(harness: Harness) -> None:
    spec = make_spec(
        cron="0 0 1 1 *", ttl_seconds=300, retry_max_attempts=2, retry_backoff_seconds=5
    )
    handle = await harness.start(spec)
    await handle.execute_update(UPDATE_TRIGGER, result_type=str)
    await until(lambda: harness.stubs.tasks)
    await send_result(handle, result_for(harness.stubs.tasks[0], RunStatus.FAILED))
    await harness.env.sleep(5)
    await until(lambda: len(harness.stubs.tasks) == 2)
    await send_result(handle, result_for(harness.stubs.tasks[1], RunStatus.FAILED))
    await until(lambda: len(harness.stubs.records) == 2)
    final = harness.stubs.records[1].record
    assert (final.status, final.attempt) == (RunStatus.FAILED, 2)
    assert len(harness.stubs.tasks) == 2


async def test_continue_as_new_keeps_firing_without_gaps(
    time_skipping: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schedule_module, "HISTORY_LIMIT", 25)
    stubs = Stubs()
    async with Worker(
        time_skipping.client,
        task_queue="can-test",
        workflows=[ScheduleWorkflow],
        activities=[stubs.publish_task, stubs.record_run],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        harness = Harness(time_skipping, time_skipping.client, stubs, "can-test")
        handle = await harness.start(make_spec(ttl_seconds=300))
        for fire in range(1, 7):
            await time_skipping.sleep(60)
            await until(lambda fire=fire: len(stubs.tasks) == fire)
            await send_result(handle, result_for(stubs.tasks[-1]))
            await until(lambda fire=fire: len(stubs.records) == fire)
        description = await handle.describe()
        assert description.run_id != handle.first_execution_run_id
        times = [task.scheduled_at for task in stubs.tasks]
        assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(times))
        assert len({task.run_id for task in stubs.tasks}) == 6
        await harness.terminate_all()


async def test_fires_go_on_while_the_api_refuses_a_record(harness: Harness) -> None:
    """A record retried while the api is down must not hold the workflow's next fires."""
    stubs = harness.stubs
    with harness.env.auto_time_skipping_disabled():
        handle = await harness.start(make_spec(cron="* * * * * *"))
        await until(lambda: stubs.tasks)
        stubs.refuse_records_until = time.monotonic() + 3
        answered = 0
        deadline = time.monotonic() + 15
        while len(stubs.tasks) < 7 and time.monotonic() < deadline:
            for task in stubs.tasks[answered:]:
                await send_result(handle, result_for(task))
            answered = len(stubs.tasks)
            await asyncio.sleep(0.05)
    seconds = [int(task.scheduled_at.timestamp()) for task in stubs.tasks[:7]]
    assert seconds == list(range(seconds[0], seconds[0] + 7)), f"a fire was held up: {seconds}"
    assert RunStatus.SKIPPED not in stubs.statuses()


async def test_missed_fires_are_recorded_side_by_side_not_one_after_another(
    harness: Harness,
) -> None:
    """Each record holds the workflow task open; in a row, they held up the next fire."""
    harness.stubs.record_delay = 0.5
    now = await harness.env.get_current_time()
    await harness.start(
        make_spec(starting_deadline_seconds=120), last_fire_at=now - timedelta(minutes=9)
    )
    started = time.monotonic()
    await until(lambda: len(harness.stubs.records) >= 8)
    assert time.monotonic() - started < 3, "8 records of 0.5 s each were made one by one"
