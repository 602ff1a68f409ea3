"""Recording runs (upserts by run id, one-way status) and listing them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

BASE = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _record(
    schedule: dict[str, Any], status: str, at: datetime = BASE, **fields: Any
) -> dict[str, Any]:
    return {
        "run_id": f"{schedule['id']}:{int(at.timestamp())}",
        "command_id": schedule["command_id"],
        "status": status,
        "scheduled_at": at.isoformat(),
        **fields,
    }


async def _post(
    client: httpx.AsyncClient, schedule: dict[str, Any], body: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result", json=body
    )


async def _results(client: httpx.AsyncClient, device_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/devices/{device_id}/results", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_repeated_record_makes_one_row(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    for _ in range(3):
        response = await _post(client, schedule, _record(schedule, "succeeded", output="ok"))
        assert response.status_code == 200
    page = await _results(client, schedule["device_id"])
    assert page["total"] == 1
    assert page["items"][0]["output"] == "ok"


async def test_status_never_moves_backwards(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    await _post(client, schedule, _record(schedule, "running", executor_id="ex-1"))
    response = await _post(client, schedule, _record(schedule, "queued"))
    assert response.json()["status"] == "running"
    assert response.json()["executor_id"] == "ex-1"


async def test_a_final_status_is_never_replaced(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    await _post(client, schedule, _record(schedule, "succeeded", output="first"))
    response = await _post(client, schedule, _record(schedule, "failed", error="late"))
    assert response.json()["status"] == "succeeded"
    assert response.json()["output"] == "first"
    assert response.json()["error"] is None


async def test_a_late_running_fills_in_what_is_missing(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    await _post(client, schedule, _record(schedule, "succeeded", output="ok"))
    started = (BASE + timedelta(seconds=1)).isoformat()
    response = await _post(
        client, schedule, _record(schedule, "running", started_at=started, executor_id="ex-9")
    )
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["executor_id"] == "ex-9"
    assert body["started_at"] is not None


async def test_output_over_the_cap_is_cut_and_flagged(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    response = await _post(client, schedule, _record(schedule, "succeeded", output="é" * 5000))
    body = response.json()
    assert body["output_truncated"] is True
    assert len(body["output"].encode()) <= 2048


async def test_record_for_unknown_schedule_is_404(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    gone = {**schedule, "id": "00000000-0000-0000-0000-000000000000"}
    response = await _post(client, gone, _record(gone, "succeeded"))
    assert response.status_code == 404


async def test_record_through_another_device_is_404(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    other = (
        await client.post("/devices", json={"name": "o", "host": "10.9.9.9", "platform": "linux"})
    ).json()
    response = await _post(
        client, {**schedule, "device_id": other["id"]}, _record(schedule, "failed")
    )
    assert response.status_code == 404


async def test_invalid_status_is_422(client: httpx.AsyncClient, schedule: dict[str, Any]) -> None:
    response = await _post(client, schedule, _record(schedule, "exploded"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "status"


async def test_prefer_return_minimal_records_and_answers_204(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    response = await client.post(
        f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result",
        json=_record(schedule, "succeeded", output="Cisco IOS"),
        headers={"Prefer": "return=minimal"},
    )
    assert (response.status_code, response.content) == (204, b"")
    [run] = (await _results(client, schedule["device_id"]))["items"]
    assert (run["status"], run["output"]) == ("succeeded", "Cisco IOS")


async def test_an_attempt_beyond_the_retry_bound_is_422(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    response = await _post(client, schedule, _record(schedule, "failed", attempt=5458581676760))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "attempt"


async def test_a_nul_in_an_identifier_is_422_and_in_output_is_replaced(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    bad = _record(schedule, "succeeded", executor_id="ex\x001")
    response = await _post(client, schedule, bad)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "executor_id"
    response = await _post(client, schedule, _record(schedule, "succeeded", output="a\x00b"))
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "a\ufffdb"


async def test_a_record_for_a_schedule_of_another_device_is_404(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    other = await client.post(
        "/devices", json={"name": "other", "host": "10.9.9.9", "platform": "cisco_ios"}
    )
    response = await client.post(
        f"/devices/{other.json()['id']}/schedules/{schedule['id']}/result",
        json=_record(schedule, "succeeded"),
    )
    assert response.status_code == 404
    assert (await _results(client, schedule["device_id"]))["items"] == []


async def test_results_are_newest_first_and_page(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    for minute in range(5):
        await _post(
            client, schedule, _record(schedule, "succeeded", BASE + timedelta(minutes=minute))
        )
    page = await _results(client, schedule["device_id"], limit=2, offset=1)
    assert page["total"] == 5
    times = [datetime.fromisoformat(item["scheduled_at"]) for item in page["items"]]
    assert times == [BASE + timedelta(minutes=3), BASE + timedelta(minutes=2)]


async def test_results_filter_by_status_and_schedule(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    await _post(client, schedule, _record(schedule, "succeeded", BASE))
    await _post(client, schedule, _record(schedule, "failed", BASE + timedelta(minutes=1)))
    failed = await _results(client, schedule["device_id"], status="failed")
    assert [item["status"] for item in failed["items"]] == ["failed"]
    other = await _results(
        client, schedule["device_id"], schedule_id="00000000-0000-0000-0000-000000000000"
    )
    assert other["total"] == 0


async def test_results_bad_filter_is_422(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    response = await client.get(
        f"/devices/{schedule['device_id']}/results", params={"status": "nope"}
    )
    assert response.status_code == 422
    response = await client.get(
        f"/devices/{schedule['device_id']}/results", params={"limit": 100000}
    )
    assert response.status_code == 422


async def test_results_of_unknown_device_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/devices/00000000-0000-0000-0000-000000000000/results")
    assert response.status_code == 404


async def test_cursor_pages_are_stable_while_runs_are_recorded(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    for minute in range(5):
        await _post(
            client, schedule, _record(schedule, "succeeded", BASE + timedelta(minutes=minute))
        )
    first = await _results(client, schedule["device_id"], limit=2)
    await _post(client, schedule, _record(schedule, "succeeded", BASE + timedelta(minutes=9)))
    second = await _results(client, schedule["device_id"], limit=2, cursor=first["next_cursor"])
    times = [datetime.fromisoformat(item["scheduled_at"]) for item in second["items"]]
    assert times == [BASE + timedelta(minutes=2), BASE + timedelta(minutes=1)]
    last = await _results(client, schedule["device_id"], limit=2, cursor=second["next_cursor"])
    assert len(last["items"]) == 1
    assert last["next_cursor"] is None


async def test_a_bad_cursor_is_422(client: httpx.AsyncClient, schedule: dict[str, Any]) -> None:
    response = await client.get(f"/devices/{schedule['device_id']}/results", params={"cursor": "x"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"


async def test_results_filter_by_time_range(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    for minute in range(4):
        await _post(
            client, schedule, _record(schedule, "succeeded", BASE + timedelta(minutes=minute))
        )
    page = await _results(
        client,
        schedule["device_id"],
        since=(BASE + timedelta(minutes=1)).isoformat(),
        until=(BASE + timedelta(minutes=3)).isoformat(),
        command_id=schedule["command_id"],
    )
    assert page["total"] == 2
