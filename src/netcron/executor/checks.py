"""Device checks: answer the api's CheckRequest (NATS request/reply) with a CheckResult.

Every executor subscribes to ``CHECKS_SUBJECT`` in the queue group ``CHECKS_QUEUE``, so
one of them answers each request. A check's session counts against the device's session
limit like a run's (it waits for a free one within its connect timeout), and every
request is answered within its connect timeout plus a margin.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from netcron.crypto import CredentialCipher, Credentials, CredentialsUnreadable
from netcron.executor.drivers.base import CheckingDriver
from netcron.executor.sessions import NoSessionInTime, SessionLeases
from netcron.messages import CHECKS_QUEUE, CHECKS_SUBJECT, CheckRequest, CheckResult
from netcron.platforms import ErrorKind

log = logging.getLogger(__name__)

#: Checks one executor runs at once; more wait (NATS holds the requests meanwhile).
CHECK_CONCURRENCY = 8
#: Beyond the request's connect timeout, what a check may take before it is answered anyway.
CHECK_MARGIN = 2.0


class CheckResponder:
    """Subscribes to device checks and answers each one."""

    def __init__(
        self,
        nc: NatsClient,
        driver: CheckingDriver,
        executor_id: str,
        cipher: CredentialCipher | None,
        sessions: SessionLeases | None = None,
    ) -> None:
        self.sessions = sessions
        self.nc = nc
        self.driver = driver
        self.executor_id = executor_id
        self.cipher = cipher
        self.slots = asyncio.Semaphore(CHECK_CONCURRENCY)
        self.tasks: set[asyncio.Task[None]] = set()
        self.subscription: Subscription | None = None

    async def start(self) -> None:
        self.subscription = await self.nc.subscribe(
            CHECKS_SUBJECT, queue=CHECKS_QUEUE, cb=self._on_request
        )

    async def stop(self) -> None:
        if self.subscription is not None:
            await self.subscription.unsubscribe()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10)

    async def _on_request(self, message: Msg) -> None:
        task = asyncio.create_task(self._answer(message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, message: Msg) -> None:
        try:
            request = CheckRequest.model_validate_json(message.data)
        except ValidationError as exc:
            log.error("dropping a malformed check request: %s", exc.errors()[:3])
            return
        async with self.slots:
            result = await self.check(request)
        try:
            await message.respond(result.model_dump_json().encode())
        except Exception as exc:
            log.warning("check of device %s not answered: %r", request.device_id, exc)
            return
        log.info(
            "checked device %s: ok=%s %s",
            request.device_id,
            result.ok,
            result.error_kind or "",
        )

    async def check(self, request: CheckRequest) -> CheckResult:
        failed = {
            "device_id": request.device_id,
            "checked_at": datetime.now(UTC),
            "ok": False,
            "reachable": False,
            "executor_id": self.executor_id,
        }
        try:
            credentials = self.cipher.decrypt(request.credentials) if self.cipher else Credentials()
        except CredentialsUnreadable as exc:
            return CheckResult(**failed, error=str(exc), error_kind=ErrorKind.AUTH_FAILED)
        try:
            return await asyncio.wait_for(
                self._check(request, credentials), request.connect_timeout + CHECK_MARGIN
            )
        except NoSessionInTime as exc:
            return CheckResult(**failed, error=str(exc), error_kind=ErrorKind.TIMEOUT)
        except TimeoutError:
            return CheckResult(
                **failed,
                error=f"check took longer than {request.connect_timeout + CHECK_MARGIN:g}s",
                error_kind=ErrorKind.TIMEOUT,
            )

    async def _check(self, request: CheckRequest, credentials: Credentials) -> CheckResult:
        if self.sessions is None:
            return await self.driver.check(request, credentials, self.executor_id)
        waiting_until = datetime.now(UTC) + timedelta(seconds=request.connect_timeout / 2)
        async with self.sessions.hold(
            request.device_id, request.session_limit, waiting_until, f"check:{request.device_id}"
        ):
            return await self.driver.check(request, credentials, self.executor_id)
