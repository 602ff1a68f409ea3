"""What changed: tracked runs, change points, diffs, parsed output, dedup and retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, func, select, text
from sqlalchemy.orm import Session

from netcron.api.orchestrator import InMemoryOrchestrator
from netcron.db.models import CommandResult, Output
from netcron.history import normalize as normalize_module
from netcron.history.retention import retain

from ..history.configs import IOS_RUNNING

BASE = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
#: As the executor sends it: masked already.
CONFIG = IOS_RUNNING.replace(
    "$9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7qFm4v7pqCxkKM", "<removed>"
)
TRACKING = {"platform": "cisco_ios", "ignore_lines": [r"^! generated "]}


@pytest.fixture
async def backup(client: httpx.AsyncClient, device: dict[str, Any]) -> dict[str, Any]:
    """A tracked ``show running-config`` command and its nightly schedule."""
    command = await client.post(
        f"/devices/{device['id']}/commands",
        json={
            "name": "backup",
            "text": "show running-config",
            "track_changes": True,
            "ignore_lines": [r"^! generated "],
        },
    )
    assert command.status_code == 201, command.text
    schedule = await client.post(
        f"/devices/{device['id']}/commands/{command.json()['id']}/schedules",
        json={"cron": "0 2 * * *"},
    )
    assert schedule.status_code == 201, schedule.text
    body: dict[str, Any] = schedule.json()
    return body


async def _run(
    client: httpx.AsyncClient,
    schedule: dict[str, Any],
    day: int,
    output: str | None,
    status: str = "succeeded",
    **fields: Any,
) -> dict[str, Any]:
    at = BASE + timedelta(days=day)
    body = {
        "run_id": f"{schedule['id']}:{int(at.timestamp())}",
        "command_id": schedule["command_id"],
        "status": status,
        "scheduled_at": at.isoformat(),
        "output": output,
        "tracking": TRACKING if status == "succeeded" else None,
        **fields,
    }
    response = await client.post(
        f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result", json=body
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _clock(day: int) -> str:
    return (
        CONFIG.replace("10:14:03 UTC Tue Nov 24", f"0{day}:00:00 UTC day {day}").replace(
            "36028797018963968", str(36028797018963968 + day)
        )
        + f"! generated day {day}\n"
    )


@pytest.fixture
async def history(client: httpx.AsyncClient, backup: dict[str, Any]) -> list[dict[str, Any]]:
    """Day 0: first backup; 1: only clocks moved; 2: failed; 3: a description changed."""
    changed = _clock(3).replace(" description uplink", " description uplink-to-core")
    return [
        await _run(client, backup, 0, _clock(0)),
        await _run(client, backup, 1, _clock(1)),
        await _run(client, backup, 2, None, "failed", error="unreachable"),
        await _run(client, backup, 3, changed),
    ]


async def test_the_first_tracked_run_is_a_change_with_every_line_added(
    history: list[dict[str, Any]],
) -> None:
    first = history[0]
    assert first["changed"] is True
    assert first["diff_stats"]["removed"] == 0
    assert first["diff_stats"]["added"] > 30
    assert len(first["content_hash"]) == 64


async def test_volatile_lines_alone_are_no_change_and_the_output_is_kept_whole(
    history: list[dict[str, Any]],
) -> None:
    first, second = history[0], history[1]
    assert second["changed"] is False
    assert second["diff_stats"] == {"added": 0, "removed": 0}
    assert second["content_hash"] == first["content_hash"]
    assert second["output"] == _clock(1)


async def test_a_change_after_a_failure_is_compared_with_the_last_success(
    history: list[dict[str, Any]],
) -> None:
    failed, changed = history[2], history[3]
    assert failed["changed"] is None and failed["content_hash"] is None
    assert changed["changed"] is True
    assert changed["diff_stats"] == {"added": 1, "removed": 1}


async def test_identical_normalized_outputs_are_stored_once(
    app: FastAPI, history: list[dict[str, Any]]
) -> None:
    async with app.state.engine.connect() as connection:
        blobs = await connection.scalar(select(func.count()).select_from(Output))
        runs = await connection.scalar(
            select(func.count())
            .select_from(CommandResult)
            .where(CommandResult.output_hash.is_not(None))
        )
    assert (blobs, runs) == (2, 3)
    async with app.state.engine.connect() as connection:
        residue = await connection.scalar(
            select(CommandResult.output_volatile).where(
                CommandResult.run_id == history[1]["run_id"]
            )
        )
    assert set(residue) == {"changed"}, "a later run keeps only what differs from its blob's"
    assert [line for _, line in residue["changed"]] == [
        "! Last configuration change at 01:00:00 UTC day 1 2026 by netops",
        "ntp clock-period 36028797018963969",
        "! generated day 1",
    ]


async def test_reading_a_run_gives_its_output_exactly(
    client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    run = history[1]
    response = await client.get(f"/devices/{run['device_id']}/results/{run['run_id']}")
    assert response.json()["output"] == _clock(1)
    page = (await client.get(f"/devices/{run['device_id']}/results")).json()
    assert [item["output"] for item in page["items"]][2] == _clock(1)


async def test_results_filter_changed_runs(
    client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    device_id = history[0]["device_id"]
    page = (await client.get(f"/devices/{device_id}/results", params={"changed": "true"})).json()
    assert [item["run_id"] for item in page["items"]] == [
        history[3]["run_id"],
        history[0]["run_id"],
    ]
    page = (await client.get(f"/devices/{device_id}/results", params={"changed": "false"})).json()
    assert [item["run_id"] for item in page["items"]] == [history[1]["run_id"]]


async def test_versions_list_only_the_change_points(
    client: httpx.AsyncClient, history: list[dict[str, Any]], backup: dict[str, Any]
) -> None:
    response = await client.get(
        f"/devices/{backup['device_id']}/versions", params={"command_id": backup["command_id"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    assert [v["run_id"] for v in body["items"]] == [history[3]["run_id"], history[0]["run_id"]]
    assert body["items"][0]["diff_stats"] == {"added": 1, "removed": 1}
    assert body["items"][0]["content_hash"] == history[3]["content_hash"]


async def test_versions_need_a_command(client: httpx.AsyncClient, device: dict[str, Any]) -> None:
    response = await client.get(f"/devices/{device['id']}/versions")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "command_id"


async def test_the_diff_defaults_to_the_previous_successful_run(
    client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    run = history[3]
    response = await client.get(f"/devices/{run['device_id']}/results/{run['run_id']}/diff")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["against"] == history[1]["run_id"]
    assert body["normalized"] is True
    assert body["stats"] == {"added": 1, "removed": 1}
    (hunk,) = body["hunks"]
    assert "- description uplink" in hunk["lines"]
    assert "+ description uplink-to-core" in hunk["lines"]


async def test_the_diff_as_text_x_diff_is_a_unified_diff(
    client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    run = history[3]
    response = await client.get(
        f"/devices/{run['device_id']}/results/{run['run_id']}/diff",
        params={"against": history[0]["run_id"]},
        headers={"Accept": "text/x-diff"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-diff")
    lines = response.text.splitlines()
    assert lines[:2] == [f"--- {history[0]['run_id']}", f"+++ {run['run_id']}"]
    assert lines[2].startswith("@@ -")
    assert "-ntp clock-period" not in response.text, "volatile lines are not compared"
    assert sorted(line for line in lines[3:] if line[:1] in "+-") == [
        "+ description uplink-to-core",
        "- description uplink",
    ]


async def test_the_first_runs_diff_adds_everything(
    client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    run = history[0]
    body = (await client.get(f"/devices/{run['device_id']}/results/{run['run_id']}/diff")).json()
    assert body["against"] is None
    assert body["stats"]["removed"] == 0 and body["stats"]["added"] == run["diff_stats"]["added"]


async def test_a_run_without_output_has_no_diff(
    client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    run = history[2]
    response = await client.get(f"/devices/{run['device_id']}/results/{run['run_id']}/diff")
    assert response.status_code == 409
    response = await client.get(
        f"/devices/{run['device_id']}/results/{history[3]['run_id']}/diff",
        params={"against": "no-such-run"},
    )
    assert response.status_code == 404


async def test_fields_parsed_returns_only_the_records(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    at = BASE
    record = {
        "run_id": f"{schedule['id']}:{int(at.timestamp())}",
        "command_id": schedule["command_id"],
        "status": "succeeded",
        "scheduled_at": at.isoformat(),
        "output": "Gi1 is down",
        "parsed": [{"interface": "Gi1", "link_status": "down"}],
    }
    await client.post(
        f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result", json=record
    )
    response = await client.get(
        f"/devices/{schedule['device_id']}/results", params={"fields": "parsed"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == [
        {"run_id": record["run_id"], "parsed": [{"interface": "Gi1", "link_status": "down"}]}
    ]
    response = await client.get(
        f"/devices/{schedule['device_id']}/results", params={"fields": "parsed,nope"}
    )
    assert response.status_code == 422
    assert "nope" in response.json()["detail"]


async def test_a_parse_error_is_kept_on_a_successful_run(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    record = {
        "run_id": f"{schedule['id']}:{int(BASE.timestamp())}",
        "command_id": schedule["command_id"],
        "status": "succeeded",
        "scheduled_at": BASE.isoformat(),
        "output": "odd output",
        "parse_error": "textfsm: State Error raised",
    }
    response = await client.post(
        f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result", json=record
    )
    assert response.json()["status"] == "succeeded"
    assert response.json()["parse_error"] == "textfsm: State Error raised"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"ignore_lines": ["^ok", "(unclosed"]}, "ignore_lines[1]", "invalid regex"),
        ({"mask": ["[z-a]"]}, "mask[0]", "invalid regex"),
        ({"parse": {"engine": "ttp", "template": "<group>\n{{ x }}\n</group"}}, "parse", "compile"),
        ({"parse": {"engine": "ttp"}}, "parse", "needs a template"),
        ({"parse": {"engine": "ttp", "template": "<vars>\nx = 1\n</vars>"}}, "parse", "<vars>"),
        ({"parse": {"engine": "regex"}}, "parse.engine", ""),
    ],
)
async def test_bad_history_options_are_a_422_naming_the_field(
    client: httpx.AsyncClient,
    device: dict[str, Any],
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    response = await client.post(
        f"/devices/{device['id']}/commands", json={"name": "c", "text": "show run", **body}
    )
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == field
    assert message in error["message"]
    assert response.json()["detail"].startswith(f"{field}: ")


async def test_history_options_reach_the_schedules_run_spec(
    client: httpx.AsyncClient,
    orchestrator: InMemoryOrchestrator,
    backup: dict[str, Any],
) -> None:
    url = f"/devices/{backup['device_id']}/commands/{backup['command_id']}"
    template = "<group>\ninterface {{ name }}\n</group>"
    response = await client.patch(
        url, json={"mask": [r"secret (\S+)"], "parse": {"engine": "ttp", "template": template}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["parse"] == {"engine": "ttp", "template": template}
    spec = orchestrator.running[uuid.UUID(backup["id"])]
    assert spec.history.track_changes is True
    assert spec.history.ignore_lines == [r"^! generated "]
    assert spec.history.mask == [r"secret (\S+)"]
    assert spec.history.parse is not None and spec.history.parse.template == template
    response = await client.patch(url, json={"parse": None})
    assert response.json()["parse"] is None


async def test_retention_deletes_old_runs_but_keeps_versions(
    app: FastAPI, client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    now = BASE + timedelta(days=95)
    done = await retain(app.state.sessionmaker, results_days=90, versions_days=0, now=now, batch=1)
    assert (done.runs, done.versions) == (2, 0)
    device_id = history[0]["device_id"]
    page = (await client.get(f"/devices/{device_id}/results")).json()
    assert {item["run_id"] for item in page["items"]} == {
        history[0]["run_id"],
        history[3]["run_id"],
    }
    assert page["items"][1]["output"] == _clock(0)


async def test_version_retention_keeps_the_newest_version(
    app: FastAPI, client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    now = BASE + timedelta(days=400)
    done = await retain(app.state.sessionmaker, results_days=90, versions_days=365, now=now)
    assert (done.runs, done.versions) == (2, 1)
    device_id = history[0]["device_id"]
    page = (await client.get(f"/devices/{device_id}/results")).json()
    assert [item["run_id"] for item in page["items"]] == [history[3]["run_id"]]
    async with app.state.engine.connect() as connection:
        hashes = (await connection.execute(text("SELECT count(*) FROM outputs"))).scalar()
    assert hashes == 1, "the blob only the deleted version used went with it"


async def test_a_record_whose_blob_is_dropped_under_it_records_again(
    app: FastAPI, client: httpx.AsyncClient, backup: dict[str, Any]
) -> None:
    """Retention drops an unused blob between the record's two statements: it records again."""
    first = await _run(client, backup, 0, _clock(0))
    async with app.state.engine.begin() as connection:
        await connection.execute(text("DELETE FROM command_results"))
    dropped: list[bool] = []

    def drop_the_blob(session: Session, *_: object) -> None:
        if not dropped:
            dropped.append(True)
            session.execute(delete(Output))

    event.listen(Session, "before_flush", drop_the_blob)
    try:
        again = await _run(client, backup, 1, _clock(1))
    finally:
        event.remove(Session, "before_flush", drop_the_blob)
    assert dropped
    assert again["output"] == _clock(1)
    assert again["content_hash"] == first["content_hash"]
    read = await client.get(f"/devices/{again['device_id']}/results/{again['run_id']}")
    assert read.json()["output"] == _clock(1)


async def test_recording_costs_three_statements_and_tracking_one_or_two_more(
    app: FastAPI, client: httpx.AsyncClient, backup: dict[str, Any], schedule: dict[str, Any]
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]).split()[0])

    async def record(target: dict[str, Any], day: int, output: str, tracked: bool) -> int:
        at = BASE + timedelta(days=day)
        statements.clear()
        response = await client.post(
            f"/devices/{target['device_id']}/schedules/{target['id']}/result",
            json={
                "run_id": f"{target['id']}:{int(at.timestamp())}",
                "command_id": target["command_id"],
                "status": "succeeded",
                "scheduled_at": at.isoformat(),
                "output": output,
                "tracking": TRACKING if tracked else None,
            },
            headers={"Prefer": "return=minimal"},
        )
        assert response.status_code == 204
        return len([s for s in statements if s.upper() not in {"BEGIN", "COMMIT"}])

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await record(schedule, 0, "Gi1 is up", tracked=False) == 3
        assert await record(backup, 0, _clock(0), tracked=True) == 5, "first: previous, blobs"
        assert await record(backup, 1, _clock(1), tracked=True) == 4, "unchanged: previous"
        changed = _clock(2).replace("hostname core-sw-1", "hostname core-sw-2")
        assert await record(backup, 2, changed, tracked=True) == 5, "changed: previous, blobs"
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", count)


async def test_ignore_lines_that_take_too_long_leave_the_run_uncompared(
    client: httpx.AsyncClient, backup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(normalize_module, "TIME_LIMIT", 0.2)
    at = BASE
    output = "a" * 40 + "!\nhostname r1\n"
    response = await client.post(
        f"/devices/{backup['device_id']}/schedules/{backup['id']}/result",
        json={
            "run_id": f"{backup['id']}:{int(at.timestamp())}",
            "command_id": backup["command_id"],
            "status": "succeeded",
            "scheduled_at": at.isoformat(),
            "output": output,
            "tracking": {"platform": "cisco_ios", "ignore_lines": [r"(a|aa)+$"]},
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["output"] == output
    assert response.json()["changed"] is None


async def test_an_untracked_runs_diff_is_against_the_previous_success_as_stored(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    runs = []
    for day, output in enumerate(["Gi1 is up\nGi2 is up\n", "Gi1 is up\nGi2 is down\n"]):
        at = BASE + timedelta(days=day)
        response = await client.post(
            f"/devices/{schedule['device_id']}/schedules/{schedule['id']}/result",
            json={
                "run_id": f"{schedule['id']}:{int(at.timestamp())}",
                "command_id": schedule["command_id"],
                "status": "succeeded",
                "scheduled_at": at.isoformat(),
                "output": output,
            },
        )
        runs.append(response.json())
    body = (
        await client.get(f"/devices/{schedule['device_id']}/results/{runs[1]['run_id']}/diff")
    ).json()
    assert body["against"] == runs[0]["run_id"]
    assert body["normalized"] is False
    assert body["stats"] == {"added": 1, "removed": 1}
