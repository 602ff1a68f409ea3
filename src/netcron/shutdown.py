"""How a service process stops: a stop event set by SIGINT or SIGTERM, and a clean exit.

The Temporal SDK runs a Rust (Tokio) runtime whose threads outlive the event loop. When
the interpreter finalizes while one of them still holds or wants the GIL, CPython aborts
with ``Fatal Python error: PyGILState_Release`` (temporalio/sdk-python#300). A service
that has finished its work (workers shut down, messages drained, connections closed)
therefore leaves with :func:`exit_process`, which flushes what is buffered and skips
interpreter finalization.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def exit_process(code: int) -> None:
    """Flush logs and standard streams, then end the process without finalization."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
