"""What a run is: its statuses, the one-way order between them, and its deterministic id."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID


class RunStatus(StrEnum):
    """A run's status. It only ever moves forward: see :func:`can_move`."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.SKIPPED,
        RunStatus.CANCELED,
    }
)

_RANK = {RunStatus.SCHEDULED: 0, RunStatus.QUEUED: 1, RunStatus.RUNNING: 2}


def rank(status: RunStatus) -> int:
    """Position of a status on the one-way path; every final status ranks last."""
    return _RANK.get(status, 3)


def can_move(current: RunStatus, new: RunStatus) -> bool:
    """Whether a run in ``current`` may take ``new``.

    A final status is never replaced (a late or repeated message changes nothing), and a
    run never moves backwards (a late ``queued`` after ``running`` is ignored).
    """
    if current.is_final:
        return False
    return rank(new) > rank(current)


def run_id_for(schedule_id: UUID | str, scheduled_at: datetime) -> str:
    """The deterministic id of a cron fire: ``<schedule_id>:<scheduled unix seconds>``.

    The same fire always gets the same id, so a retried publish or record cannot make
    a second run.
    """
    return f"{schedule_id}:{int(scheduled_at.timestamp())}"
