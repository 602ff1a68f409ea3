"""What a driver is: run one command on one device, or check the device, and say what it saw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from netcron.crypto import Credentials
from netcron.messages import CheckRequest, CheckResult, TaskMessage
from netcron.platforms import ErrorKind


class DriverError(Exception):
    """The command failed on the device (or the device could not be reached).

    ``kind`` says why, for machines; ``host_key`` is the fingerprint the device presented,
    when a connection got that far.
    """

    def __init__(
        self, message: str, kind: ErrorKind = ErrorKind.PROTOCOL, host_key: str | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.host_key = host_key


@dataclass(frozen=True)
class Output:
    """A command's clean output and the host key of the session that produced it."""

    text: str
    host_key: str | None = None


class Driver(Protocol):
    async def run(self, task: TaskMessage, credentials: Credentials) -> str | Output: ...


class CheckingDriver(Driver, Protocol):
    """A driver that can also check a device (reachability, login, host key, version)."""

    async def check(
        self, request: CheckRequest, credentials: Credentials, executor_id: str
    ) -> CheckResult: ...
