"""Waiting for a dependency at start-up: retry with backoff, and say what we wait for."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


async def wait_for(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    timeout: float = 0,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
) -> T:
    """Call ``attempt`` until it succeeds; ``timeout`` 0 means keep trying forever."""
    delay = first_delay
    started = time.monotonic()
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except Exception as exc:
            waited = time.monotonic() - started
            if timeout and waited + delay > timeout:
                raise TimeoutError(
                    f"gave up waiting for {what} after {waited:.0f}s: {exc}"
                ) from exc
            level = logging.INFO if tries < 3 else logging.WARNING
            log.log(
                level,
                "waiting for %s (%s); retrying in %.1fs",
                what,
                exc or type(exc).__name__,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
