"""What a driver is: run one command on one device and return its output."""

from __future__ import annotations

from typing import Protocol

from netcron.crypto import Credentials
from netcron.messages import TaskMessage


class DriverError(Exception):
    """The command failed on the device (or the device could not be reached)."""


class Driver(Protocol):
    async def run(self, task: TaskMessage, credentials: Credentials) -> str: ...
