"""The broker contract: JSON round trips, subjects and dedup ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from netcron.messages import ResultMessage, TaskMessage
from netcron.runs import RunStatus

AT = datetime(2026, 1, 1, tzinfo=UTC)


def task(**changes: object) -> TaskMessage:
    base = TaskMessage(
        run_id="s:1",
        schedule_id=uuid.uuid4(),
        device_id=uuid.uuid4(),
        command_id=uuid.uuid4(),
        scheduled_at=AT,
        deadline=AT + timedelta(minutes=5),
        platform="arista_eos",
        host="10.0.0.1",
        port=22,
        command="show version",
        timeout=30,
    )
    return base.model_copy(update=changes)


def test_task_round_trips_through_json() -> None:
    original = task(attempt=2)
    assert TaskMessage.model_validate_json(original.model_dump_json()) == original
    assert original.subject == "netcron.tasks.arista_eos"
    assert original.msg_id == "s:1:2"


def test_result_carries_the_task_ids() -> None:
    original = task()
    result = ResultMessage.for_task(original, RunStatus.SUCCEEDED, "ex-1", output="ok")
    assert (result.run_id, result.schedule_id, result.command_id) == (
        original.run_id,
        original.schedule_id,
        original.command_id,
    )
    assert result.subject == f"netcron.results.{original.schedule_id}"
    assert result.msg_id == "s:1:1:succeeded"
    assert ResultMessage.model_validate_json(result.model_dump_json()) == result


def test_running_and_final_results_have_different_dedup_ids() -> None:
    original = task()
    running = ResultMessage.for_task(original, RunStatus.RUNNING, "ex-1")
    done = ResultMessage.for_task(original, RunStatus.FAILED, "ex-1")
    assert running.msg_id != done.msg_id


def test_unknown_version_is_rejected() -> None:
    data = task().model_dump(mode="json") | {"version": 2}
    with pytest.raises(ValidationError):
        TaskMessage.model_validate(data)


def test_an_sse_block_parses_to_an_event_with_its_id() -> None:
    from netcron.events import Event, parse_sse

    event = Event(type="run.failed", run_id="s:1", data={"status": "failed"})
    block = ["id: 42", "event: run.failed", f"data: {event.model_dump_json()}"]
    parsed = parse_sse(block)
    assert parsed is not None
    assert (parsed.id, parsed.type, parsed.run_id) == (42, "run.failed", "s:1")
    assert "run.failed" in parsed.line() and "run=s:1" in parsed.line()
    assert parse_sse([": heartbeat"]) is None
