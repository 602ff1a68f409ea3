"""Simulated devices: an asyncssh server per device that talks like its platform's CLI.

An interactive session (a pty, as scrapli opens) gets the banner, the prompt, echo,
``enable`` with a hidden secret, paging until it is turned off, and the platform's
rejection for unknown commands; an exec request gets the command's output (and, on
``linux``, exit status 127 for an unknown command). :class:`Behaviour` adds the faults
real estates have: latency, hangs, refused logins, dropped connections, a host key that
changes and a configuration that moves on over time.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncssh

from netcron.platforms import PLATFORMS
from netcron.simulator.platforms import PROFILES, PlatformProfile

#: Lines per page while paging is on (a 24-line terminal).
PAGE_LINES = 24


@dataclass
class Behaviour:
    """Faults and timings of one simulated device (all off by default)."""

    #: Seconds before the banner and before each answer.
    latency: float = 0.0
    #: Log in, then never print a prompt.
    hang_after_login: bool = False
    #: A command (prefix) that never answers.
    hang_on: str | None = None
    #: Every login fails (the attempt is still counted).
    refuse_logins: bool = False
    #: A command (prefix) whose output stops halfway and the connection drops.
    drop_on: str | None = None
    #: The configuration changes every this many seconds (0: never).
    config_change_interval: float = 0.0


@dataclass
class SimulatedDevice:
    """One device: its address, credentials and what it has seen."""

    platform: str
    hostname: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    enable_secret: str | None = field(repr=False)
    behaviour: Behaviour = field(default_factory=Behaviour)
    host_key: asyncssh.SSHKey = field(
        default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519")
    )
    authorized_key: asyncssh.SSHKey | None = None
    #: Every password the device was offered (a mismatch test checks it stays 0).
    password_attempts: int = 0
    connections: int = 0
    peak_connections: int = 0
    commands: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _server: asyncssh.SSHAcceptor | None = None
    _open: set[asyncssh.SSHServerConnection] = field(default_factory=set)

    @property
    def profile(self) -> PlatformProfile:
        return PROFILES[self.platform]

    @property
    def fingerprint(self) -> str:
        return str(self.host_key.get_fingerprint("sha256"))

    @property
    def revision(self) -> int:
        interval = self.behaviour.config_change_interval
        return int((time.monotonic() - self.started) / interval) if interval > 0 else 0

    async def start(self) -> None:
        self._server = await asyncssh.create_server(
            lambda: _DeviceServer(self),
            self.host,
            self.port,
            server_host_keys=[self.host_key],
            process_factory=lambda process: _Session(self, process).run(),
            line_editor=False,
            encoding="utf-8",
            login_timeout=30,
        )
        self.port = self._server.get_port()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for connection in list(self._open):
            connection.abort()

    async def change_host_key(self) -> None:
        """Come back on the same port with a new host key (a replaced or spoofed device)."""
        await self.stop()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        await self.start()


class _DeviceServer(asyncssh.SSHServer):
    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self.connection: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.connection = conn
        self.device._open.add(conn)
        self.device.connections += 1
        self.device.peak_connections = max(self.device.peak_connections, self.device.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is not None:
            self.device._open.discard(self.connection)
        self.device.connections -= 1

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self.device.password_attempts += 1
        if self.device.behaviour.refuse_logins:
            return False
        return username == self.device.username and secrets.compare_digest(
            password, self.device.password
        )

    def public_key_auth_supported(self) -> bool:
        return self.device.authorized_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        authorized = self.device.authorized_key
        return (
            not self.device.behaviour.refuse_logins
            and username == self.device.username
            and authorized is not None
            and key.public_data == authorized.public_data
        )


class _Session:
    """One session on a device: an exec request, or an interactive CLI on a pty."""

    def __init__(self, device: SimulatedDevice, process: asyncssh.SSHServerProcess[str]) -> None:
        self.device = device
        self.profile = device.profile
        self.process = process
        self.pending = ""
        self.skip_newline = False
        self.interactive = process.get_terminal_type() is not None
        self.privileged = not self.profile.needs_enable
        self.paging = True

    async def run(self) -> None:
        try:
            if self.process.command is not None:
                await self._exec(self.process.command)
            else:
                await self._shell()
        except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, BrokenPipeError):
            pass
        except asyncssh.DisconnectError:
            return
        with contextlib.suppress(Exception):
            self.process.exit(0)

    async def _exec(self, command: str) -> None:
        command = " ".join(command.split())
        self.device.commands.append(command)
        if await self._fault(command):
            return
        text = self.profile.answer(command, self.device.hostname, self.device.revision, True)
        rejected = text == self.profile.rejection(command)
        if rejected and self.device.platform == "linux":
            self.process.stderr.write(text)
            self.process.exit(127)
            return
        self.process.stdout.write(text)
        self.process.exit(0)

    async def _shell(self) -> None:
        await self._latency()
        self._write(self.profile.banner)
        if self.device.behaviour.hang_after_login:
            await self._until_eof()
            return
        while True:
            self._write(self._prompt())
            line = await self._readline()
            if line is None:
                return
            command = " ".join(line.split())
            if not command:
                continue
            self.device.commands.append(command)
            await self._latency()
            if command in ("exit", "quit", "logout"):
                return
            if await self._fault(command):
                return
            if command == "enable" and self.profile.needs_enable:
                await self._enable()
            elif command == "disable" and self.profile.needs_enable:
                self.privileged = False
            elif command in self.profile.paging_off:
                self.paging = False
            elif command not in self.profile.accepted:
                await self._answer(command)

    async def _fault(self, command: str) -> bool:
        """Hang or drop the connection if the behaviour says so; True when it did."""
        behaviour = self.device.behaviour
        if behaviour.hang_on and command.startswith(behaviour.hang_on):
            await self._until_eof()
            return True
        if behaviour.drop_on and command.startswith(behaviour.drop_on):
            text = self.profile.answer(command, self.device.hostname, self.device.revision, True)
            self._write(text[: len(text) // 2])
            await self.process.stdout.drain()
            self.process.channel.get_connection().abort()
            return True
        return False

    async def _enable(self) -> None:
        secret = self.device.enable_secret
        if secret is None:
            self.privileged = True
            return
        self._write("Password: ")
        given = await self._readline(echo=False)
        if given is not None and secrets.compare_digest(given, secret):
            self.privileged = True
        else:
            self._write("% Access denied\n")

    async def _answer(self, command: str) -> None:
        text = self.profile.answer(
            command, self.device.hostname, self.device.revision, self.privileged
        )
        if self.interactive and self.profile.rejection(command) == text:
            # the caret of a rejection points into the line as typed after the prompt
            text = " " * len(self._prompt()) + text if "^" in text else text
        lines = text.splitlines(keepends=True)
        while lines:
            if not (self.paging and self.interactive) or len(lines) <= PAGE_LINES:
                self._write("".join(lines))
                return
            self._write("".join(lines[:PAGE_LINES]))
            lines = lines[PAGE_LINES:]
            more = self.profile.more
            self._write(more)
            key = await self._key()
            self._write("\b" * len(more) + " " * len(more) + "\b" * len(more))
            if key is None or key in "qQ":
                return

    def _prompt(self) -> str:
        return self.profile.prompt(self.device.hostname, self.device.username, self.privileged)

    def _write(self, text: str) -> None:
        self.process.stdout.write(text.replace("\n", "\r\n") if self.interactive else text)

    async def _latency(self) -> None:
        if self.device.behaviour.latency > 0:
            await asyncio.sleep(self.device.behaviour.latency)

    async def _until_eof(self) -> None:
        while await self.process.stdin.read(4096):
            pass

    async def _key(self) -> str | None:
        if not self.pending:
            data = await self.process.stdin.read(4096)
            if not data:
                return None
            self.pending = data
        key, self.pending = self.pending[0], self.pending[1:]
        return key

    async def _readline(self, echo: bool = True) -> str | None:
        """A line as a terminal's line discipline gives it: echoed, with backspace.

        What arrives in one read is echoed in one write, as a device echoes pasted text.
        """
        line: list[str] = []
        echoed: list[str] = []
        try:
            while True:
                if not self.pending:
                    self._write("".join(echoed))
                    echoed = []
                char = await self._key()
                if char is None:
                    return None
                if char == "\n" and self.skip_newline:
                    self.skip_newline = False
                    continue
                self.skip_newline = char == "\r"
                if char in "\r\n":
                    echoed.append("\n")
                    return "".join(line)
                if char in "\x7f\b":
                    if line:
                        line.pop()
                        echoed.append("\b \b" if echo else "")
                    continue
                if char == "\x03":
                    echoed.append("^C\n")
                    return ""
                line.append(char)
                echoed.append(char if echo else "")
        finally:
            self._write("".join(echoed))


async def start_simulated_devices(
    platforms: Iterable[str] = PLATFORMS,
    per_platform: int = 1,
    *,
    host: str = "127.0.0.1",
    username: str = "netops",
    password: str | None = None,
    enable_secret: str | None = None,
    behaviour: Behaviour | None = None,
) -> list[SimulatedDevice]:
    """Start ``per_platform`` devices of each platform on ports of ``host`` the kernel picks.

    Without a password one is generated per run (all devices share it); an enable secret
    is set on the platforms that need ``enable`` (also generated when not given).
    """
    password = password or secrets.token_urlsafe(12)
    enable_secret = enable_secret or secrets.token_urlsafe(12)
    devices: list[SimulatedDevice] = []
    try:
        for platform in platforms:
            if platform not in PROFILES:
                raise ValueError(f"no simulated device for platform {platform!r}")
            for index in range(1, per_platform + 1):
                device = SimulatedDevice(
                    platform=platform,
                    hostname=f"{platform.replace('_', '-')}-{index}",
                    host=host,
                    port=0,
                    username=username,
                    password=password,
                    enable_secret=enable_secret if PROFILES[platform].needs_enable else None,
                    behaviour=behaviour or Behaviour(),
                )
                await device.start()
                devices.append(device)
    except BaseException:
        await stop_simulated_devices(devices)
        raise
    return devices


async def stop_simulated_devices(devices: Iterable[SimulatedDevice]) -> None:
    for device in devices:
        await device.stop()
