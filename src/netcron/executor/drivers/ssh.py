"""Real devices over SSH: scrapli's platform drivers for network CLIs, an exec channel for linux.

Every session is asyncio (scrapli's ``asyncssh`` transport), so a hung device costs a
coroutine, never a thread. The connection is opened by asyncssh with a client that
checks the host key during key exchange (:mod:`.hostkeys`), before any password is sent;
scrapli then finds the prompt, escalates with the enable secret where the platform has
``enable``, turns paging off and sets the terminal width (its on-open), and returns the
command's output without echo, prompt or ANSI codes.

An encrypted private key is opened with the device's ``password`` (Credentials has no
passphrase field: a key's passphrase is stored in ``password``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncssh
from scrapli import AsyncScrapli
from scrapli.driver import AsyncNetworkDriver
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
from netcron.messages import CheckRequest, CheckResult, TaskMessage
from netcron.platforms import ErrorKind, HostKeyPolicy

log = logging.getLogger(__name__)

#: netcron platform → scrapli core driver (IOS and IOS XE share one).
SCRAPLI_PLATFORMS = {
    "cisco_ios": "cisco_iosxe",
    "cisco_xe": "cisco_iosxe",
    "cisco_nxos": "cisco_nxos",
    "cisco_xr": "cisco_iosxr",
    "arista_eos": "arista_eos",
    "juniper_junos": "juniper_junos",
}
#: AES-GCM first: asyncssh builds a cipher context per packet for chacha20-poly1305 (its
#: default first choice), which was 40 % of the executor's CPU per run; the rest follow
#: in asyncssh's order, so any device still finds one it speaks.
ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    *(
        name.decode()
        for name in asyncssh.encryption.get_encryption_algs()
        if not name.startswith(b"aes128-gcm") and not name.startswith(b"aes256-gcm")
    ),
)
#: Platforms run over an exec channel: a shell has no prompt worth guessing.
EXEC_PLATFORMS = ("linux",)

# scrapli logs every byte it reads at DEBUG (device output, which may hold secrets of its
# own, such as a running-config); netcron's DEBUG is about netcron.
logging.getLogger("scrapli").setLevel(logging.INFO)


@dataclass(frozen=True)
class Target:
    """Where and how to connect, from a task or a check request."""

    platform: str
    host: str
    port: int
    username: str | None
    connect_timeout: float
    host_key_policy: HostKeyPolicy
    host_key: str | None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def of(cls, message: TaskMessage | CheckRequest) -> Target:
        return cls(
            platform=message.platform,
            host=message.host,
            port=message.port,
            username=message.username,
            connect_timeout=message.connect_timeout,
            host_key_policy=message.host_key_policy,
            host_key=message.host_key,
        )


def _client_keys(credentials: Credentials) -> list[asyncssh.SSHKey] | None:
    if not credentials.private_key:
        return None
    try:
        return [asyncssh.import_private_key(credentials.private_key, credentials.password)]
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError):
        raise DriverError(
            "the device's private key cannot be read (an encrypted key needs its passphrase "
            "in the password)",
            ErrorKind.AUTH_FAILED,
        ) from None


async def load_client_keys(credentials: Credentials) -> list[asyncssh.SSHKey] | None:
    """The private key, opened off the event loop: a passphrase costs a bcrypt KDF (0.5 s
    of CPU at ssh-keygen's 16 rounds), which must not stall every other session."""
    if not credentials.private_key:
        return None
    return await asyncio.to_thread(_client_keys, credentials)


def connect_options(
    credentials: Credentials, keys: list[asyncssh.SSHKey] | None, check: HostKeyCheck
) -> dict[str, Any]:
    """asyncssh options: the checking client, these credentials only, no local config."""
    return {
        "known_hosts": asyncssh.import_known_hosts(""),
        "client_factory": check.client,
        "client_keys": keys,
        "password": credentials.password,
        "agent_path": None,
        "config": [],
        "preferred_auth": ("publickey", "keyboard-interactive", "password"),
        "encryption_algs": ENCRYPTION_ALGS,
    }


class Session:
    """One open session to a device; :meth:`send` runs a command, :meth:`close` ends it."""

    prompt: str | None = None

    async def send(self, command: str) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class CliSession(Session):
    """An interactive CLI through scrapli's platform driver."""

    def __init__(
        self,
        target: Target,
        credentials: Credentials,
        keys: list[asyncssh.SSHKey] | None,
        check: HostKeyCheck,
    ) -> None:
        self.target = target
        self.driver: AsyncNetworkDriver = AsyncScrapli(
            platform=SCRAPLI_PLATFORMS[target.platform],
            host=target.host,
            port=target.port,
            auth_username=target.username or "",
            auth_password=credentials.password or "",
            auth_secondary=credentials.enable_secret or "",
            auth_strict_key=False,
            ssh_config_file=False,
            transport="asyncssh",
            # our own timeouts bound every step; scrapli's are a backstop beyond them
            timeout_socket=target.connect_timeout + 5,
            timeout_transport=0,
            timeout_ops=3600,
            transport_options={"asyncssh": connect_options(credentials, keys, check)},
        )

    async def open(self) -> None:
        await self.driver.open()
        self.prompt = await self.driver.get_prompt()

    async def send(self, command: str) -> str:
        response = await self.driver.send_command(command)
        if response.failed:
            raise DriverError(
                f"the device rejected the command: {_first_line(response.result)}",
                ErrorKind.COMMAND_REJECTED,
            )
        return response.result

    def close(self) -> None:
        # the transport only: a polite ``exit`` could hang on the very device that hung
        with contextlib.suppress(Exception):
            self.driver.transport.close()


class ExecSession(Session):
    """A plain SSH connection; each command on an exec channel of its own."""

    def __init__(
        self,
        target: Target,
        credentials: Credentials,
        keys: list[asyncssh.SSHKey] | None,
        check: HostKeyCheck,
    ) -> None:
        self.target = target
        self.options = connect_options(credentials, keys, check)
        self.connection: asyncssh.SSHClientConnection | None = None

    async def open(self) -> None:
        self.connection = await asyncssh.connect(
            self.target.host, self.target.port, username=self.target.username, **self.options
        )

    async def send(self, command: str) -> str:
        assert self.connection is not None
        completed = await self.connection.run(command, check=False)
        stdout, stderr = _text(completed.stdout), _text(completed.stderr).strip()
        if completed.exit_status in (126, 127) or rejection(self.target.platform, stderr):
            raise DriverError(
                f"the device rejected the command: {_first_line(stderr)}",
                ErrorKind.COMMAND_REJECTED,
            )
        if completed.exit_status not in (0, None):
            raise DriverError(
                f"command exited with status {completed.exit_status}: "
                f"{_first_line(stderr or stdout[-500:])}",
                ErrorKind.COMMAND_REJECTED,
            )
        return stdout

    def close(self) -> None:
        if self.connection is not None:
            self.connection.abort()


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    marked = [
        line for line in lines if line.startswith(("%", "syntax error")) or "not found" in line
    ]
    return (marked or lines or ["(no output)"])[0][:300]


def _text(data: object) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return str(data)


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
        try:
            await asyncio.wait_for(session.open(), max(budget, 0.001))
        except BaseException as exc:
            session.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise self._opening_error(exc, target, check) from None
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
