"""Deferred progress records: a quick run costs one api write, a slow one shows progress."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from netcron.runs import RunStatus
from netcron.runspec import RecordRequest, RunRecord
from netcron.workflows.progress import ProgressRecords

SCHEDULE = uuid.uuid4()
SCHEDULED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _request(run_id: str, status: RunStatus, **fields: object) -> RecordRequest:
    record = RunRecord.model_validate(
        {
            "run_id": run_id,
            "command_id": uuid.uuid4(),
            "status": status,
            "scheduled_at": SCHEDULED,
            **fields,
        }
    )
    return RecordRequest(device_id=uuid.uuid4(), schedule_id=SCHEDULE, record=record)


class Api:
    def __init__(self) -> None:
        self.posted: list[RecordRequest] = []

    async def post(self, request: RecordRequest) -> None:
        self.posted.append(request)


async def test_progress_is_posted_after_the_delay() -> None:
    api = Api()
    progress = ProgressRecords(api.post, delay=0.05)
    progress.defer(_request("r1", RunStatus.QUEUED, command="show version"))
    await asyncio.sleep(0.01)
    assert api.posted == []
    await asyncio.sleep(0.1)
    assert [p.record.status for p in api.posted] == [RunStatus.QUEUED]
    assert progress.pending == 0


async def test_a_final_record_drops_the_pending_progress() -> None:
    api = Api()
    progress = ProgressRecords(api.post, delay=0.05)
    progress.defer(_request("r1", RunStatus.QUEUED))
    progress.defer(_request("r2", RunStatus.QUEUED))
    progress.settle("r1")
    await asyncio.sleep(0.1)
    assert [p.record.run_id for p in api.posted] == ["r2"]


async def test_later_progress_merges_into_one_write_and_never_goes_back() -> None:
    api = Api()
    progress = ProgressRecords(api.post, delay=0.05)
    started = datetime(2026, 11, 25, 12, 0, 1, tzinfo=UTC)
    progress.defer(_request("r1", RunStatus.RUNNING, started_at=started, executor_id="ex-1"))
    progress.defer(_request("r1", RunStatus.QUEUED, command="show clock"))
    await asyncio.sleep(0.1)
    [posted] = api.posted
    record = posted.record
    assert (record.status, record.started_at) == (RunStatus.RUNNING, started)
    assert (record.executor_id, record.command) == ("ex-1", "show clock")


async def test_flush_posts_what_is_pending_at_once() -> None:
    api = Api()
    progress = ProgressRecords(api.post, delay=60)
    progress.defer(_request("r1", RunStatus.QUEUED))
    await progress.flush()
    assert [p.record.run_id for p in api.posted] == ["r1"]


async def test_a_failed_write_is_logged_not_raised() -> None:
    async def refuse(request: RecordRequest) -> None:
        raise RuntimeError("api down")

    progress = ProgressRecords(refuse, delay=0)
    progress.defer(_request("r1", RunStatus.QUEUED))
    await progress.flush()
    assert progress.pending == 0
