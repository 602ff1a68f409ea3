"""The fire dispatcher's recording: a batch the api did not take is kept, and a result's
message is acked only once the result is recorded (a crash in between: redelivery)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest

from netcron.jobspec import FireRequest, FireRunRecord
from netcron.runs import RunStatus
from netcron.workflows import fire as fire_module
from netcron.workflows.fire import Fire


class FakeMessage:
    def __init__(self) -> None:
        self.acked = False

    async def ack(self) -> None:
        self.acked = True


async def test_a_batch_the_api_refused_is_kept_and_acked_once_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fire_module, "API_RETRY", 0)
    posted: list[dict[str, Any]] = []
    statuses = [503, 204]

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(statuses.pop(0))

    api = httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://api")
    request = FireRequest(job_id=uuid.uuid4(), fire_id=uuid.uuid4(), scheduled_at=datetime.now(UTC))
    fire = Fire(cast(Any, None), api, request)
    message = FakeMessage()
    fire.pending_records["r1"] = FireRunRecord(run_id="r1", status=RunStatus.SUCCEEDED)
    fire.pending_acks.append(cast(Any, message))

    await fire._flush()  # refused: kept, not acked
    assert not message.acked and list(fire.pending_records) == ["r1"]

    await fire._flush()
    assert message.acked
    assert fire.pending_records == {} and fire.pending_acks == []
    assert [r["run_id"] for r in posted[1]["records"]] == ["r1"]
