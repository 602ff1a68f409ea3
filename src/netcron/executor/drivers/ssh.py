"""Real devices over SSH (asyncssh), one exec channel per command.

Host keys are not checked (``known_hosts=None``): network estates rarely keep them in
one place. Most network OSes (IOS, NX-OS, EOS, Junos) accept a command on an exec
channel; devices that only offer an interactive shell need a prompt-driven driver.
"""

from __future__ import annotations

import asyncssh

from netcron.crypto import Credentials
from netcron.executor.drivers.base import DriverError
from netcron.messages import TaskMessage

CONNECT_TIMEOUT = 10.0


class SshDriver:
    async def run(self, task: TaskMessage, credentials: Credentials) -> str:
        options: dict[str, object] = {
            "host": task.host,
            "port": task.port,
            "username": task.username,
            "known_hosts": None,
            "connect_timeout": CONNECT_TIMEOUT,
        }
        if credentials.private_key:
            try:
                options["client_keys"] = [asyncssh.import_private_key(credentials.private_key)]
            except (asyncssh.KeyImportError, ValueError):
                raise DriverError("the device's private key cannot be read") from None
        if credentials.password:
            options["password"] = credentials.password
        try:
            async with asyncssh.connect(**options) as connection:
                completed = await connection.run(task.command, check=False)
        except asyncssh.PermissionDenied:
            raise DriverError(f"authentication to {task.host}:{task.port} failed") from None
        except (OSError, asyncssh.Error) as exc:
            raise DriverError(
                f"cannot reach {task.host}:{task.port}: {type(exc).__name__}: {exc}"
            ) from None
        stdout = _text(completed.stdout)
        if completed.exit_status not in (0, None):
            stderr = _text(completed.stderr).strip()
            raise DriverError(
                f"command exited with status {completed.exit_status}: {stderr or stdout[-500:]}"
            )
        return stdout


def _text(data: object) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return str(data)
