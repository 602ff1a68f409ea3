"""`netcron dev --external`: check that the configured servers answer, in one line each.

A server that cannot be used is a :class:`ServerUnusable` naming the setting, its URL
without the password, why, and what to do: never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit

from netcron.config import Settings
from netcron.devstack import EmbeddedServerError

ADVICE = "start it there, or run `netcron dev` without --external to use embedded servers"


class ServerUnusable(EmbeddedServerError):
    """A configured server that `netcron dev --external` cannot use."""

    def __init__(self, setting: str, url: str, reason: str) -> None:
        super().__init__(f"{setting}={url} cannot be used ({reason}): {ADVICE}")


def redact_url(url: str) -> str:
    """The URL without its password (``user:***@host``)."""
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.password is not None:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return parts._replace(netloc=netloc).geturl()
    return url


def check_external(settings: Settings, timeout: float = 5.0) -> None:
    """Raise :class:`ServerUnusable` for the first configured server that does not answer."""
    asyncio.run(_check_database(settings.database_url, timeout))
    for url in settings.nats_url.split(","):
        _check_tcp("NETCRON_NATS_URL", url.strip(), default_port=4222, timeout=timeout)
    _check_tcp(
        "NETCRON_TEMPORAL_ADDRESS",
        settings.temporal_address,
        default_port=7233,
        timeout=timeout,
        bare=True,
    )


def _check_tcp(
    setting: str, url: str, *, default_port: int, timeout: float, bare: bool = False
) -> None:
    shown = redact_url(url)
    try:
        parts = urlsplit(f"tcp://{url}" if bare else url)
        host, port = parts.hostname or "localhost", parts.port or default_port
    except ValueError as exc:
        raise ServerUnusable(setting, shown, f"not a valid address: {exc}") from None
    try:
        with socket.create_connection((host, port), timeout):
            pass
    except OSError as exc:
        raise ServerUnusable(setting, shown, exc.strerror or type(exc).__name__) from None


async def _check_database(url: str, timeout: float) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import ArgumentError

    from netcron.db.session import create_engine

    shown = redact_url(url)
    try:
        engine = create_engine(url)
    except (ArgumentError, ValueError, ImportError) as exc:
        raise ServerUnusable("NETCRON_DATABASE_URL", shown, f"not a valid URL: {exc}") from None
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        raise ServerUnusable("NETCRON_DATABASE_URL", shown, "no answer") from None
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ServerUnusable(
            "NETCRON_DATABASE_URL", shown, f"{type(exc).__name__}: {reason}"
        ) from None
    finally:
        await engine.dispose()
