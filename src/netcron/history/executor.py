"""The executor's part of history: mask the secrets, then parse, before anything leaves it.

Masking here means a secret reaches neither the broker, nor Temporal's history, nor the
api's logs and database; parsing here spreads TextFSM's and TTP's CPU over executors.
"""

from __future__ import annotations

from dataclasses import dataclass

from netcron.history.mask import mask_secrets
from netcron.history.options import Record
from netcron.history.parse import parse
from netcron.messages import TaskMessage


@dataclass(frozen=True)
class TreatedOutput:
    """A command's output as it may leave the executor, with its records if asked for."""

    text: str
    parsed: list[Record] | None = None
    parse_error: str | None = None


def treat_output(text: str, task: TaskMessage, max_bytes: int) -> TreatedOutput:
    """Mask ``text`` with the platform's and the task's patterns, then parse it if asked.

    Raises :class:`MaskFailed` when the output cannot be masked (it must not go out).
    """
    masked = mask_secrets(text, task.platform, task.mask)
    if task.parse is None:
        return TreatedOutput(masked)
    records, error = parse(masked, task.platform, task.command, task.parse, max_bytes)
    return TreatedOutput(masked, records, error)
