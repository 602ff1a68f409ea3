"""The execution log: one ``<run_id> <attempt>`` line per command the executor starts.

It is how `netcron chaos` counts commands run more than once for the same run and
attempt. A line is written (one ``write(2)`` on a file opened with ``O_APPEND``) just
before the command is sent to the device, so a command cut short by a crash still counts:
it may have reached the device. Lines are shorter than ``PIPE_BUF``, so several executors
may share one file. The cost is one system call per run; no fsync, since a kill -9 of
the executor does not lose what the kernel already has.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path


class ExecutionLog:
    """Appends a line per started command to a file; a no-op without a path."""

    def __init__(self, path: str) -> None:
        self._fd: int | None = None
        if path:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def started(self, run_id: str, attempt: int) -> None:
        if self._fd is not None:
            os.write(self._fd, f"{run_id} {attempt}\n".encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_executions(path: Path) -> Counter[tuple[str, int]]:
    """How many times each (run id, attempt) was started, from one or more executors."""
    counts: Counter[tuple[str, int]] = Counter()
    if not path.exists():
        return counts
    for line in path.read_text().splitlines():
        run_id, _, attempt = line.rpartition(" ")
        if run_id and attempt.isdigit():
            counts[(run_id, int(attempt))] += 1
    return counts
