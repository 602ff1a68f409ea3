"""Real devices over SSH: run a command, or check a device, in one session opened for it.

Every session is asyncio (scrapli's ``asyncssh`` transport, or asyncssh itself), so a
hung device costs a coroutine, never a thread. Opening (TCP, key exchange, login,
prompt, enable, paging off) is bounded by the task's ``connect_timeout``, the command by
its ``timeout``, both cut to the run's ``deadline``; a session that runs out of time is
closed at once. Every failure is a :class:`DriverError` with its :class:`ErrorKind`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import asyncssh
from scrapli.exceptions import (
    ScrapliAuthenticationFailed,
    ScrapliException,
    ScrapliPrivilegeError,
    ScrapliTimeout,
)

from netcron.crypto import Credentials
from netcron.executor.drivers.base import DriverError, Output
from netcron.executor.drivers.hostkeys import HostKeyCheck
from netcron.executor.drivers.identify import identify, rejection, version_command
from netcron.executor.drivers.ssh_session import (
    EXEC_PLATFORMS,
    SCRAPLI_PLATFORMS,
    CliSession,
    ExecSession,
    Session,
    Target,
    load_client_keys,
)
from netcron.messages import CheckRequest, CheckResult, TaskMessage
from netcron.observability.metrics import SSH_CONNECT, SSH_FAILURES
from netcron.platforms import ErrorKind

log = logging.getLogger(__name__)


def _left(deadline: datetime) -> float:
    return (deadline - datetime.now(UTC)).total_seconds()


class SshDriver:
    """Runs a command, or checks a device, over one SSH session opened for it."""

    async def open(
        self, target: Target, credentials: Credentials, check: HostKeyCheck, budget: float
    ) -> Session:
        """An open, logged-in session with paging off, or a :class:`DriverError`."""
        if target.platform not in SCRAPLI_PLATFORMS and target.platform not in EXEC_PLATFORMS:
            raise DriverError(f"no SSH driver for platform {target.platform!r}", ErrorKind.PROTOCOL)
        keys = await load_client_keys(credentials)
        session: CliSession | ExecSession = (
            ExecSession(target, credentials, keys, check)
            if target.platform in EXEC_PLATFORMS
            else CliSession(target, credentials, keys, check)
        )
        started = time.monotonic()
        try:
            await asyncio.wait_for(session.open(), max(budget, 0.001))
        except BaseException as exc:
            session.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            error = self._opening_error(exc, target, check)
            SSH_FAILURES.labels(error.kind.value).inc()
            raise error from None
        SSH_CONNECT.labels(target.platform).observe(time.monotonic() - started)
        return session

    def _opening_error(
        self, exc: BaseException, target: Target, check: HostKeyCheck
    ) -> DriverError:
        seen = check.seen
        if isinstance(exc, DriverError):
            exc.host_key = exc.host_key or seen
            return exc
        if check.refused:
            return DriverError(check.problem, ErrorKind.HOST_KEY_MISMATCH, seen)
        cause = exc.__cause__ if isinstance(exc, ScrapliAuthenticationFailed) else exc
        if isinstance(cause, asyncssh.PermissionDenied):
            return DriverError(
                f"authentication to {target.address} as {target.username!r} failed",
                ErrorKind.AUTH_FAILED,
                seen,
            )
        if isinstance(exc, ScrapliPrivilegeError) or (
            isinstance(exc, ScrapliAuthenticationFailed) and "escalating privilege" in str(exc)
        ):
            return DriverError(
                f"enable on {target.address} failed: is the enable secret right?",
                ErrorKind.PRIVILEGE_FAILED,
                seen,
            )
        if isinstance(cause, TimeoutError | ScrapliTimeout):
            if not check.connected:
                return DriverError(
                    f"cannot reach {target.address}: no connection within "
                    f"{target.connect_timeout:g}s",
                    ErrorKind.UNREACHABLE,
                )
            return DriverError(
                f"{target.address} did not finish login within {target.connect_timeout:g}s "
                "(no prompt?)",
                ErrorKind.TIMEOUT,
                seen,
            )
        if isinstance(cause, OSError) and not check.connected:
            return DriverError(
                f"cannot reach {target.address}: {type(cause).__name__}: {cause}",
                ErrorKind.UNREACHABLE,
            )
        return DriverError(
            f"SSH session to {target.address} failed: {type(exc).__name__}: {exc}",
            ErrorKind.PROTOCOL,
            seen,
        )

    async def run(self, task: TaskMessage, credentials: Credentials) -> Output:
        target = Target.of(task)
        check = HostKeyCheck(target.host_key_policy, target.host_key, target.address)
        started = time.monotonic()
        session = await self.open(
            target, credentials, check, min(task.connect_timeout, _left(task.deadline))
        )
        opened = time.monotonic()
        budget = min(task.timeout, _left(task.deadline))
        try:
            text = await asyncio.wait_for(session.send(task.command), max(budget, 0.001))
        except TimeoutError:
            raise DriverError(
                f"command took longer than {budget:g}s", ErrorKind.TIMEOUT, check.seen
            ) from None
        except DriverError as exc:
            exc.host_key = check.seen
            raise
        except (ScrapliException, asyncssh.Error, OSError) as exc:
            raise DriverError(
                f"session to {target.address} broke during the command: {type(exc).__name__}",
                ErrorKind.PROTOCOL,
                check.seen,
            ) from None
        finally:
            session.close()
        log.info(
            "ssh %s: session open in %.0f ms, command in %.0f ms",
            target.address,
            (opened - started) * 1000,
            (time.monotonic() - opened) * 1000,
            extra={
                "run_id": task.run_id,
                "connect_ms": round((opened - started) * 1000, 1),
                "command_ms": round((time.monotonic() - opened) * 1000, 1),
            },
        )
        refused = rejection(task.platform, text)
        if refused:
            raise DriverError(
                f"the device rejected the command: {refused}",
                ErrorKind.COMMAND_REJECTED,
                check.seen,
            )
        return Output(text, check.seen)

    async def check(
        self, request: CheckRequest, credentials: Credentials, executor_id: str
    ) -> CheckResult:
        """Reach, log in, read the prompt and ``show version``; all within the connect timeout."""
        target = Target.of(request)
        result: dict[str, Any] = {
            "device_id": request.device_id,
            "checked_at": datetime.now(UTC),
            "ok": False,
            "reachable": False,
            "executor_id": executor_id,
        }
        started = time.monotonic()
        deadline = started + request.connect_timeout
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(request.host, request.port), request.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            return CheckResult(
                **result,
                error=f"cannot reach {target.address}: {reason}",
                error_kind=ErrorKind.UNREACHABLE,
            )
        result["connect_ms"] = round((time.monotonic() - started) * 1000, 2)
        result["reachable"] = True
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        check = HostKeyCheck(target.host_key_policy, target.host_key, target.address)
        try:
            session = await self.open(target, credentials, check, deadline - time.monotonic())
        except DriverError as exc:
            login = (
                "failed"
                if exc.kind in (ErrorKind.AUTH_FAILED, ErrorKind.PRIVILEGE_FAILED)
                else "not_tried"
            )
            return CheckResult(
                **result, login=login, host_key=check.seen, error=str(exc), error_kind=exc.kind
            )
        result.update(login="ok", host_key=check.seen, prompt=session.prompt)
        try:
            output = await asyncio.wait_for(
                session.send(version_command(target.platform)),
                max(deadline - time.monotonic(), 0.001),
            )
            result["platform"], result["software_version"] = identify(output)
        except (DriverError, TimeoutError, ScrapliException, asyncssh.Error, OSError) as exc:
            log.info("check of %s: no version: %s", target.address, type(exc).__name__)
        finally:
            session.close()
        result["ok"] = True
        return CheckResult(**result)
