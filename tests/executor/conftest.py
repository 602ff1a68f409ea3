"""The executor against a real NATS JetStream, in-process."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from netcron.broker.jetstream import ensure_streams
from netcron.config import Settings
from netcron.crypto import Credentials
from netcron.executor.drivers import Driver
from netcron.executor.service import Executor
from netcron.messages import RESULTS_STREAM, TASKS_STREAM, ResultMessage, TaskMessage


def make_task(**changes: Any) -> TaskMessage:
    now = datetime.now(UTC)
    task = TaskMessage(
        run_id=f"{uuid.uuid4()}:{int(now.timestamp())}",
        schedule_id=uuid.uuid4(),
        device_id=uuid.uuid4(),
        command_id=uuid.uuid4(),
        scheduled_at=now,
        deadline=now + timedelta(minutes=5),
        platform="cisco_ios",
        host="10.1.2.3",
        port=22,
        command="show version",
        timeout=5,
    )
    return task.model_copy(update=changes)


@dataclass
class RecordingDriver:
    """A driver double: records calls, answers with ``output`` or ``behaviour``."""

    output: str = "ok"
    behaviour: Callable[[TaskMessage, Credentials], Awaitable[str]] | None = None
    calls: list[tuple[TaskMessage, Credentials]] = field(default_factory=list)

    async def run(self, task: TaskMessage, credentials: Credentials) -> str:
        self.calls.append((task, credentials))
        if self.behaviour is not None:
            return await self.behaviour(task, credentials)
        return self.output


@dataclass
class Broker:
    nc: NatsClient
    js: JetStreamContext
    results: list[ResultMessage] = field(default_factory=list)

    async def publish_task(self, task: TaskMessage, msg_id: str | None = None) -> None:
        await self.js.publish(
            task.subject,
            task.model_dump_json().encode(),
            headers={"Nats-Msg-Id": msg_id or task.msg_id},
        )

    async def wait_results(self, count: int, timeout: float = 10) -> list[ResultMessage]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.results) < count:
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"expected {count} results, got {self.results}")
            await asyncio.sleep(0.02)
        return self.results

    async def pending_tasks(self) -> int:
        info = await self.js.stream_info(TASKS_STREAM)
        return int(info.state.messages)


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[Broker]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for stream in (TASKS_STREAM, RESULTS_STREAM):
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
    await ensure_streams(js)
    state = Broker(nc, js)

    async def on_result(msg: Any) -> None:
        state.results.append(ResultMessage.model_validate_json(msg.data))

    await nc.subscribe("netcron.results.>", cb=on_result)
    yield state
    await nc.close()


@pytest.fixture
def settings(secret_key: str) -> Settings:
    return Settings(_env_file=None, secret_key=secret_key, output_max_bytes=1024)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def running(executor: Executor) -> AsyncIterator[Executor]:
    stop = asyncio.Event()
    task = asyncio.create_task(executor.run(stop))
    try:
        yield executor
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def executor_for(
    broker: Broker,
    settings: Settings,
    driver: Driver,
    name: str = "ex-1",
    running_after: float = 0.0,
) -> Executor:
    """An executor that reports ``running`` at once unless told to wait."""
    return Executor(broker.js, settings, driver, executor_id=name, running_after=running_after)
