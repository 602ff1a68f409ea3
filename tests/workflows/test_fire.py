"""The fire dispatcher: caps, retries, a hung device, a device deleted mid-fire, a resume.

Real JetStream carries the results; the api and the executors are an in-memory double
(``FakeFleet``) that answers the dispatcher's four internal calls the way the api does
and plays each device's run after a delay, so every test sees the dispatcher's own
decisions: what it published when, what it recorded, and when it closed the fire.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from nats.js import JetStreamContext

from netcron.broker.jetstream import ensure_streams
from netcron.jobspec import FireRequest, FireSummary, fire_run_id
from netcron.messages import ResultMessage, fire_results_subject
from netcron.platforms import ErrorKind
from netcron.runs import RunStatus
from netcron.workflows.fire import Fire

JOB_ID = uuid.UUID("44444444-4444-4444-4444-444444444444")


@dataclass
class Device:
    id: uuid.UUID
    site: str
    delay: float = 0.02
    #: per attempt: "ok", "fail" (unreachable), "hang" (never answers)
    script: list[str] = field(default_factory=lambda: ["ok"])


@dataclass
class FakeFleet:
    """The api and the executors, as the dispatcher sees them."""

    js: JetStreamContext
    fire_id: uuid.UUID
    devices: dict[str, Device]
    per_label: dict[str, int] = field(default_factory=dict)
    max_in_flight: int = 100
    ttl_seconds: int = 30
    retry_max_attempts: int = 1
    retry_backoff_seconds: float = 0.05
    status: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    dispatched: list[tuple[str, int]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    busy: Counter[str] = field(default_factory=Counter)
    most_busy: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    most_in_flight: int = 0
    finished: int = 0
    refuse_results: int = 0
    runs_started: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for run_id in self.devices:
            self.status.setdefault(run_id, "scheduled")

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        path = request.url.path.removeprefix(f"/internal/fires/{self.fire_id}")
        if request.url.path == "/internal/fires":
            return httpx.Response(200, json=self.plan())
        if path == "/dispatch":
            return httpx.Response(200, json=self.dispatch(body["items"]))
        if path == "/results":
            if self.refuse_results:
                self.refuse_results -= 1
                return httpx.Response(503, text="database down")
            for record in body["records"]:
                if record["run_id"] in self.status and record["run_id"] not in self.deleted:
                    self.records[record["run_id"]] = record
                    self.status[record["run_id"]] = record["status"]
            return httpx.Response(204)
        if path == "/finish":
            self.finished += 1
            counts = Counter(r["status"] for r in self.records.values())
            return httpx.Response(
                200,
                json={
                    "fire_id": str(self.fire_id),
                    "total": sum(counts.values()),
                    "counts": counts,
                },
            )
        return httpx.Response(404)

    def plan(self) -> dict[str, Any]:
        keys = list(self.per_label)
        return {
            "fire_id": str(self.fire_id),
            "job_id": str(JOB_ID),
            "total": len(self.devices),
            "ttl_seconds": self.ttl_seconds,
            "max_in_flight": self.max_in_flight,
            "per_label": self.per_label,
            "retry_max_attempts": self.retry_max_attempts,
            "retry_backoff_seconds": self.retry_backoff_seconds,
            "runs": [
                {
                    "run_id": run_id,
                    "status": status,
                    "groups": [self.devices[run_id].site for _ in keys],
                }
                for run_id, status in self.status.items()
                if status in ("scheduled", "queued", "running")
            ],
        }

    def dispatch(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        answer: dict[str, Any] = {"published": {}, "gone": [], "done": []}
        deadline = datetime.now(UTC) + timedelta(seconds=self.ttl_seconds)
        for item in items:
            run_id, attempt = item["run_id"], item["attempt"]
            if run_id in self.deleted:
                answer["gone"].append(run_id)
                continue
            self.dispatched.append((run_id, attempt))
            self.status[run_id] = "queued"
            answer["published"][run_id] = deadline.isoformat()
            self.runs_started.append(asyncio.create_task(self.play(run_id, attempt)))
        return answer

    async def play(self, run_id: str, attempt: int) -> None:
        device = self.devices[run_id]
        self.in_flight += 1
        self.busy[device.site] += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.most_busy[device.site] = max(self.most_busy[device.site], self.busy[device.site])
        step = device.script[min(attempt, len(device.script)) - 1]
        if step == "hang":
            return
        await asyncio.sleep(device.delay)
        self.in_flight -= 1
        self.busy[device.site] -= 1
        result = ResultMessage(
            run_id=run_id,
            device_id=device.id,
            job_id=JOB_ID,
            fire_id=self.fire_id,
            scheduled_at=datetime.now(UTC),
            attempt=attempt,
            status=RunStatus.SUCCEEDED if step == "ok" else RunStatus.FAILED,
            started_at=datetime.now(UTC),
            finished_at=datetime.now(UTC),
            output="ok" if step == "ok" else None,
            error=None if step == "ok" else "connection refused",
            error_kind=None if step == "ok" else ErrorKind.UNREACHABLE,
            executor_id="fake",
        )
        await self.js.publish(result.subject, result.model_dump_json().encode())


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url)
    stream = nc.jetstream()
    await ensure_streams(stream)
    yield stream
    await nc.close()


def make_fleet(js: JetStreamContext, sites: dict[str, int], **options: Any) -> FakeFleet:
    fire_id = uuid.uuid4()
    devices = {}
    for site, count in sites.items():
        for _ in range(count):
            device = Device(uuid.uuid4(), site)
            devices[fire_run_id(fire_id, device.id)] = device
    return FakeFleet(js=js, fire_id=fire_id, devices=devices, **options)


async def drive(fleet: FakeFleet, timeout: float = 20) -> FireSummary:
    transport = httpx.MockTransport(fleet.handle)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as api:
        request = FireRequest(job_id=JOB_ID, fire_id=fleet.fire_id, scheduled_at=datetime.now(UTC))
        fire = Fire(fleet.js, api, request, grace=0.2)
        return await asyncio.wait_for(fire.drive(), timeout)


async def test_every_device_runs_once_and_the_caps_hold(js: JetStreamContext) -> None:
    fleet = make_fleet(
        js, {"ams": 20, "fra": 20, "lon": 20}, max_in_flight=5, per_label={"site": 2}
    )
    summary = await drive(fleet)
    assert summary.counts == {"succeeded": 60}
    assert sorted(run_id for run_id, _ in fleet.dispatched) == sorted(fleet.devices)
    assert max(fleet.most_busy.values()) == 2
    assert fleet.most_in_flight == 5
    assert fleet.finished == 1


async def test_the_global_cap_alone_is_reached_and_never_passed(js: JetStreamContext) -> None:
    fleet = make_fleet(js, {"ams": 50}, max_in_flight=7)
    summary = await drive(fleet)
    assert summary.counts == {"succeeded": 50}
    assert fleet.most_in_flight == 7


async def test_a_hung_device_times_out_and_holds_no_one_else_up(js: JetStreamContext) -> None:
    fleet = make_fleet(js, {"ams": 10}, max_in_flight=3, ttl_seconds=1)
    hung = next(iter(fleet.devices))
    fleet.devices[hung].script = ["hang"]
    started = asyncio.get_running_loop().time()
    summary = await drive(fleet)
    elapsed = asyncio.get_running_loop().time() - started
    assert summary.counts == {"succeeded": 9, "timed_out": 1}
    assert fleet.records[hung]["status"] == "timed_out"
    assert fleet.records[hung]["error_kind"] == "timeout"
    # the other nine shared the two slots left meanwhile: all done long before the ttl
    assert elapsed < 1 + 0.2 + 1.0


async def test_a_failed_attempt_is_retried_then_recorded_once(js: JetStreamContext) -> None:
    fleet = make_fleet(js, {"ams": 4}, retry_max_attempts=2)
    flaky, broken = list(fleet.devices)[:2]
    fleet.devices[flaky].script = ["fail", "ok"]
    fleet.devices[broken].script = ["fail", "fail"]
    summary = await drive(fleet)
    assert summary.counts == {"succeeded": 3, "failed": 1}
    assert (flaky, 2) in fleet.dispatched and (broken, 2) in fleet.dispatched
    assert fleet.records[flaky]["attempt"] == 2 and fleet.records[flaky]["status"] == "succeeded"
    assert (
        fleet.records[broken]["attempt"] == 2
        and fleet.records[broken]["error_kind"] == "unreachable"
    )


async def test_a_device_deleted_mid_fire_leaves_the_rest_to_finish(js: JetStreamContext) -> None:
    fleet = make_fleet(js, {"ams": 6}, max_in_flight=1)
    first, *_, last = fleet.devices
    fleet.deleted.add(last)  # deleted before its turn: the api answers "gone"
    fleet.devices[first].delay = 0.3
    running = asyncio.create_task(drive(fleet))
    await asyncio.sleep(0.1)
    fleet.deleted.add(first)  # deleted while it runs: its result is recorded nowhere
    summary = await running
    assert summary.counts == {"succeeded": 4}
    assert last not in {run_id for run_id, _ in fleet.dispatched}
    assert first not in fleet.records and last not in fleet.records


async def test_a_resumed_fire_waits_for_what_was_published_and_publishes_the_rest(
    js: JetStreamContext,
) -> None:
    fleet = make_fleet(js, {"ams": 4})
    published, *waiting = fleet.devices
    fleet.status[published] = "queued"  # published by the dispatcher that died
    await fleet.play(published, 1)  # its result waits in the fire's stream
    summary = await drive(fleet)
    assert summary.counts == {"succeeded": 4}
    assert published not in {run_id for run_id, _ in fleet.dispatched}
    assert sorted(run_id for run_id, _ in fleet.dispatched) == sorted(waiting)


async def test_results_the_api_refused_are_recorded_when_it_is_back(js: JetStreamContext) -> None:
    fleet = make_fleet(js, {"ams": 5}, refuse_results=2)
    summary = await drive(fleet)
    assert summary.counts == {"succeeded": 5}
    assert all(fleet.records[run_id]["status"] == "succeeded" for run_id in fleet.devices)


async def test_a_fire_with_no_devices_closes_at_once(js: JetStreamContext) -> None:
    fleet = make_fleet(js, {})
    summary = await drive(fleet)
    assert summary.counts == {} and fleet.finished == 1


def test_results_of_a_fire_go_to_its_own_subject() -> None:
    fire_id = uuid.uuid4()
    result = ResultMessage(
        run_id="r",
        device_id=uuid.uuid4(),
        fire_id=fire_id,
        scheduled_at=datetime.now(UTC),
        status=RunStatus.SUCCEEDED,
        executor_id="x",
    )
    assert result.subject == fire_results_subject(fire_id) == f"netcron.fires.{fire_id}"
