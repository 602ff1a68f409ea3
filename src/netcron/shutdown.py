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
from types import FrameType


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def absorb_stop_signals() -> None:
    """Let SIGINT and SIGTERM do nothing by themselves (a server then handles them).

    uvicorn re-sends the signal it stopped on to its own process once it has shut down
    (so that the exit status tells of the signal); the stop is complete by then, and a
    clean stop exits 0.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        # A handler, not SIG_IGN: an ignored signal would stay ignored in child processes.
        signal.signal(signum, _already_stopping)


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    """A stop signal after the stop: nothing left to do."""


def exit_process(code: int) -> None:
    """Flush traces, logs and standard streams, then end the process without finalization."""
    from netcron.observability.tracing import flush_traces

    flush_traces()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
