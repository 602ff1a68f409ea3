"""Host key checks at key exchange, before any credential is offered to the device."""

from __future__ import annotations

import logging
import secrets

import asyncssh

from netcron.platforms import HostKeyPolicy

log = logging.getLogger(__name__)


def fingerprint(key: asyncssh.SSHKey) -> str:
    """OpenSSH's ``SHA256:<base64>`` form."""
    return str(key.get_fingerprint("sha256"))


class HostKeyCheck:
    """Decides on the key a device presents, and remembers what it saw.

    asyncssh consults :meth:`accept` during key exchange (the connection is given an
    empty known-hosts list, so every key is a question); a refused key ends the
    connection there, so the password is never sent to a device that failed the check.
    """

    def __init__(self, policy: HostKeyPolicy, expected: str | None, address: str) -> None:
        self.policy = policy
        self.expected = expected
        self.address = address
        self.seen: str | None = None
        self.refused = False
        #: The TCP connection opened (a timeout before it is "unreachable", after it not).
        self.connected = False

    def accept(self, key: asyncssh.SSHKey) -> bool:
        self.seen = fingerprint(key)
        if self.policy == HostKeyPolicy.IGNORE:
            log.warning(
                "host key of %s is not checked (host_key_policy=ignore); it presented %s",
                self.address,
                self.seen,
            )
            return True
        if self.expected is None and self.policy == HostKeyPolicy.TRUST_ON_FIRST_USE:
            return True
        self.refused = self.expected is None or not secrets.compare_digest(self.seen, self.expected)
        return not self.refused

    @property
    def problem(self) -> str:
        if self.expected is None:
            return f"host key of {self.address} is {self.seen}, and none is pinned"
        return f"host key of {self.address} is {self.seen}, expected {self.expected}"

    def client(self) -> asyncssh.SSHClient:
        return _CheckingClient(self)


class _CheckingClient(asyncssh.SSHClient):
    def __init__(self, check: HostKeyCheck) -> None:
        self.check = check

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.check.connected = True

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self.check.accept(key)
