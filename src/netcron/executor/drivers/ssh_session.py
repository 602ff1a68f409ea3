"""One SSH session to a device: scrapli's platform driver for a CLI, an exec channel for linux.

The connection is opened by asyncssh with the options :func:`connect_options` builds: a
client that checks the host key during key exchange (:mod:`.hostkeys`), these
credentials only (no agent, no ``~/.ssh``), AES-GCM first. scrapli then finds the
prompt, escalates with the enable secret where the platform has ``enable``, turns paging
off and sets the terminal width (its on-open), and returns a command's output without
echo, prompt or ANSI codes.

An encrypted private key is opened with the device's ``password`` (Credentials has no
passphrase field: a key's passphrase is stored in ``password``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncssh
from scrapli import AsyncScrapli
from scrapli.driver import AsyncNetworkDriver

from netcron.crypto import Credentials
from netcron.executor.drivers.base import DriverError
from netcron.executor.drivers.hostkeys import HostKeyCheck
from netcron.executor.drivers.identify import rejection
from netcron.messages import CheckRequest, TaskMessage
from netcron.platforms import ErrorKind, HostKeyPolicy

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
