"""The device platforms netcron reaches (netmiko-style names), shared by api and executor."""

from __future__ import annotations

from enum import StrEnum

#: Every platform a device may have: each has an SSH driver and a simulated device.
PLATFORMS = (
    "cisco_ios",
    "cisco_xe",
    "cisco_nxos",
    "cisco_xr",
    "arista_eos",
    "juniper_junos",
    "linux",
)


class ErrorKind(StrEnum):
    """Why a run failed, for machines: each failed run has one beside its readable error."""

    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    TIMEOUT = "timeout"
    PRIVILEGE_FAILED = "privilege_failed"
    COMMAND_REJECTED = "command_rejected"
    PROTOCOL = "protocol"

    @property
    def retryable(self) -> bool:
        """Only a device that could not be reached in time is worth another attempt."""
        return self in (ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT)


class HostKeyPolicy(StrEnum):
    """How a device's SSH host key is checked."""

    TRUST_ON_FIRST_USE = "trust_on_first_use"
    PINNED = "pinned"
    IGNORE = "ignore"
