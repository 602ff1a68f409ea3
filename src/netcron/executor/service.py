"""`netcron executor`: take tasks from JetStream, run them, publish results, then ack.

The ack comes last: a crash before the result is published means redelivery, and the
run id keeps the effect single (the workflow and the api ignore a second result).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from netcron.broker.jetstream import connect_nats, ensure_streams, publish
from netcron.config import Settings
from netcron.crypto import CredentialCipher, Credentials, CredentialsUnreadable
from netcron.executor.drivers import Driver, DriverError, Output, get_driver
from netcron.executor.executions import ExecutionLog
from netcron.executor.sessions import NoSessionInTime, SessionLeases
from netcron.history.executor import treat_output
from netcron.history.mask import MaskFailed
from netcron.messages import EXECUTORS_CONSUMER, TASKS_STREAM, ResultMessage, TaskMessage
from netcron.observability.metrics import (
    COMMAND_DURATION,
    EXECUTOR,
    EXECUTOR_SLOTS,
    RUNS,
    START_LAG,
    lag_seconds,
    serve_metrics,
    slot_in_use,
)
from netcron.observability.tracing import extract, tracer
from netcron.platforms import ErrorKind
from netcron.runs import RunStatus
from netcron.shutdown import stop_event

log = logging.getLogger(__name__)

#: How often a long command tells JetStream it is still being worked on.
PROGRESS_INTERVAL = 10.0
NAK_DELAY = 2.0
#: How long a stopping executor lets running commands finish; the rest are handed back
#: (nak) to another executor, so that a service stops within 10 s of SIGTERM.
DRAIN_TIMEOUT = 8.0
#: A command still running after this many seconds is reported ``running``. Most end
#: sooner, and their final result says when they started: announcing each one cost a
#: broker message, a relay delivery and an api write per run for nothing.
RUNNING_AFTER = 0.5
#: After a fetch's first task, how long it waits for more (see ``Executor._fetch``).
FETCH_MORE = 0.05
#: The longest an early task is held for its scheduled time. Workflows publish at most
#: ``firelead.MAX_LEAD`` early; more than that is clock skew, not worth a held slot.
MAX_HOLD = 1.0


def default_executor_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def cap(output: str, limit: int) -> tuple[str, bool]:
    """At most ``limit`` bytes of UTF-8, cut on a character boundary."""
    data = output.encode()
    if len(data) <= limit:
        return output, False
    return data[:limit].decode(errors="ignore"), True


class Executor:
    """Runs tasks from the shared ``executors`` consumer with bounded concurrency."""

    def __init__(
        self,
        js: JetStreamContext,
        settings: Settings,
        driver: Driver,
        executor_id: str | None = None,
        running_after: float = RUNNING_AFTER,
        executions: ExecutionLog | None = None,
        sessions: SessionLeases | None = None,
    ) -> None:
        self.js = js
        self.executions = executions or ExecutionLog(settings.executor_execution_log)
        #: Per-device session leases; None: no limit (the emulated driver opens no session).
        self.sessions = sessions
        self.running_after = running_after
        self.settings = settings
        self.driver = driver
        self.executor_id = executor_id or settings.executor_id or default_executor_id()
        self.slots = asyncio.Semaphore(settings.executor_concurrency)
        #: Tasks waiting for their scheduled time: fetched, but not yet work.
        self.holding = 0
        self.running: set[asyncio.Task[None]] = set()
        self._cipher: CredentialCipher | None = None

    async def run(self, stop: asyncio.Event) -> None:
        subscription = await self.js.pull_subscribe_bind(
            durable=EXECUTORS_CONSUMER, stream=TASKS_STREAM
        )
        log.info("executor %s is consuming %s", self.executor_id, TASKS_STREAM)
        limit = self.settings.executor_concurrency
        while not stop.is_set():
            free = limit - len(self.running) + self.holding
            if free <= 0:
                await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await self._fetch(subscription, free)
            except TimeoutError:
                continue
            except Exception as exc:
                log.warning("fetching tasks failed: %r", exc)
                await asyncio.sleep(1)
                continue
            for message in messages:
                task = asyncio.create_task(self.handle(message))
                self.running.add(task)
                task.add_done_callback(self.running.discard)
            await asyncio.sleep(0)  # let early tasks start holding before slots are counted
        if self.running:
            log.info("waiting for %d running task(s)", len(self.running))
            _, pending = await asyncio.wait(self.running, timeout=DRAIN_TIMEOUT)
            if pending:
                log.info("handing %d unfinished task(s) back to the stream", len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def _fetch(self, subscription: JetStreamContext.PullSubscription, free: int) -> list[Msg]:
        """The first task as soon as it comes (waiting up to a second), then what else is
        there within ``FETCH_MORE``.

        A fetch of a batch returns once the batch is full or its request expires: with
        1,000 free slots and 300 tasks published at once, the 300 waited in the client
        for the rest of the second and started together 0.9 s after they came.
        """
        messages = await subscription.fetch(1, timeout=1)
        if free > 1:
            with contextlib.suppress(TimeoutError):
                messages += await subscription.fetch(free - 1, timeout=FETCH_MORE)
        return messages

    async def handle(self, message: Msg) -> None:
        try:
            task = TaskMessage.model_validate_json(message.data)
        except ValidationError as exc:
            log.error("dropping a malformed task: %s", exc.errors()[:3])
            await message.term()
            return
        extra = {"run_id": task.run_id}
        if task.schedule_id:
            extra["schedule_id"] = str(task.schedule_id)
        if task.fire_id:
            extra["fire_id"] = str(task.fire_id)
        try:
            with tracer().start_as_current_span(
                "netcron.execute",
                context=extract(message.headers),
                kind=SpanKind.CONSUMER,
                attributes={
                    "netcron.run_id": task.run_id,
                    "netcron.platform": task.platform,
                    "netcron.attempt": task.attempt,
                    "netcron.executor_id": self.executor_id,
                },
            ) as span:
                result = await self.execute(task, message)
                span.set_attribute("netcron.status", result.status.value)
                if result.error_kind is not None:
                    span.set_attribute("netcron.error_kind", result.error_kind.value)
                await publish(self.js, result.subject, result, result.msg_id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await message.nak()
            raise
        except Exception as exc:
            log.warning("result not published, the task will come back: %s", exc, extra=extra)
            with contextlib.suppress(Exception):
                await message.nak(delay=NAK_DELAY)
            return
        await message.ack()
        _count(task, result)
        log.info("run %s", result.status.value, extra=extra)

    async def execute(self, task: TaskMessage, message: Msg) -> ResultMessage:
        """Run one task and return its final result; reports ``running`` if it takes a while.

        A task published ahead of its time (see ``netcron.firelead``) waits for it: the
        command starts on its scheduled second, never before.
        """
        hold = (task.scheduled_at - datetime.now(UTC)).total_seconds()
        if hold > 0:
            self.holding += 1
            try:
                await asyncio.sleep(min(hold, MAX_HOLD))
            finally:
                self.holding -= 1
        async with self.slots:
            with slot_in_use():
                return await self._run(task, message)

    async def _run(self, task: TaskMessage, message: Msg) -> ResultMessage:
        started = datetime.now(UTC)
        if started > task.deadline:
            return self._result(
                task,
                RunStatus.TIMED_OUT,
                finished_at=started,
                error="deadline passed before the executor started it",
                error_kind=ErrorKind.TIMEOUT,
            )
        announce: asyncio.Task[None] | None = None
        progress = asyncio.create_task(self._keep_alive(message))
        try:
            async with self._session(task):
                # A run waiting for a session to the device stays queued: it is running,
                # and started, once it holds one.
                started = datetime.now(UTC)
                if task.attempt == 1:
                    START_LAG.observe(lag_seconds(task.scheduled_at, started))
                running = self._result(task, RunStatus.RUNNING, started_at=started)
                announce = asyncio.create_task(self._announce(running))
                self.executions.started(task.run_id, task.attempt)
                # the driver keeps connect and command timeouts apart; this bounds both,
                # and frees the slot of a session that hangs, at the run's deadline at most
                left = (task.deadline - datetime.now(UTC)).total_seconds()
                budget = min(task.connect_timeout + task.timeout, left)
                output = await asyncio.wait_for(
                    self.driver.run(task, self._credentials(task)), max(budget, 0.001)
                )
        except TimeoutError:
            return self._done(
                task,
                started,
                RunStatus.TIMED_OUT,
                error=f"command took longer than {task.timeout:g}s",
                error_kind=ErrorKind.TIMEOUT,
            )
        except NoSessionInTime as exc:
            return self._done(
                task, started, RunStatus.TIMED_OUT, error=str(exc), error_kind=ErrorKind.TIMEOUT
            )
        except DriverError as exc:
            status = RunStatus.TIMED_OUT if exc.kind == ErrorKind.TIMEOUT else RunStatus.FAILED
            return self._done(
                task, started, status, error=str(exc), error_kind=exc.kind, host_key=exc.host_key
            )
        except CredentialsUnreadable as exc:
            return self._done(
                task, started, RunStatus.FAILED, error=str(exc), error_kind=ErrorKind.AUTH_FAILED
            )
        finally:
            progress.cancel()
            if announce is not None:
                announce.cancel()
        result = output if isinstance(output, Output) else Output(output)
        try:
            seen = await asyncio.to_thread(
                treat_output, result.text, task, self.settings.output_max_bytes
            )
        except MaskFailed as exc:
            # never let an output out unmasked
            return self._done(task, started, RunStatus.FAILED, error=str(exc))
        text, truncated = cap(seen.text, self.settings.output_max_bytes)
        return self._done(
            task,
            started,
            RunStatus.SUCCEEDED,
            output=text,
            output_truncated=truncated,
            host_key=result.host_key,
            parsed=seen.parsed,
            parse_error=seen.parse_error,
        )

    def _session(self, task: TaskMessage) -> contextlib.AbstractAsyncContextManager[None]:
        if self.sessions is None:
            return contextlib.nullcontext()
        return self.sessions.hold(task.device_id, task.session_limit, task.deadline, task.run_id)

    def _credentials(self, task: TaskMessage) -> Credentials:
        if not task.credentials or self.settings.executor_driver == "emulated":
            return Credentials()
        if self._cipher is None:
            self._cipher = CredentialCipher(self.settings.secret_key)
        return self._cipher.decrypt(task.credentials)

    async def _announce(self, running: ResultMessage) -> None:
        """Publish ``running`` once the command has run for ``running_after`` seconds."""
        await asyncio.sleep(self.running_after)
        try:
            await publish(self.js, running.subject, running, running.msg_id)
        except Exception as exc:
            log.info("running status not published: %s", exc, extra={"run_id": running.run_id})

    async def _keep_alive(self, message: Msg) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            with contextlib.suppress(Exception):
                await message.in_progress()

    def _done(
        self, task: TaskMessage, started: datetime, status: RunStatus, **fields: object
    ) -> ResultMessage:
        return self._result(
            task, status, started_at=started, finished_at=datetime.now(UTC), **fields
        )

    def _result(self, task: TaskMessage, status: RunStatus, **fields: object) -> ResultMessage:
        return ResultMessage.for_task(task, status, self.executor_id, **fields)


def _count(task: TaskMessage, result: ResultMessage) -> None:
    RUNS.labels(result.status.value, task.platform, result.error_kind or "").inc()
    if result.started_at is not None and result.finished_at is not None:
        COMMAND_DURATION.labels(task.platform, result.status.value).observe(
            lag_seconds(result.started_at, result.finished_at)
        )


async def run_executor(settings: Settings, stop: asyncio.Event | None = None) -> None:
    from netcron.executor.checks import CheckResponder
    from netcron.executor.sessions import open_sessions_bucket

    stop = stop or stop_event()
    nc = await connect_nats(settings.nats_url, "netcron-executor", timeout=settings.connect_timeout)
    js = nc.jetstream()
    await ensure_streams(js)
    driver = get_driver(settings.executor_driver, settings)
    executor_id = settings.executor_id or default_executor_id()
    sessions = (
        SessionLeases(await open_sessions_bucket(js), executor_id)
        if settings.executor_driver == "ssh"
        else None
    )
    executor = Executor(js, settings, driver, executor_id=executor_id, sessions=sessions)
    cipher = CredentialCipher(settings.secret_key) if settings.executor_driver == "ssh" else None
    checks = CheckResponder(nc, driver, executor_id, cipher, sessions)
    await checks.start()
    EXECUTOR_SLOTS.set(settings.executor_concurrency)
    metrics = serve_metrics(EXECUTOR, settings.metrics_port, "executor")
    try:
        await executor.run(stop)
    finally:
        await checks.stop()
        executor.executions.close()
        if metrics is not None:
            metrics.shutdown()
    await nc.close()
