"""Run statuses move one way; run ids are deterministic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from netcron.runs import FINAL_STATUSES, RunStatus, can_move, run_id_for

S = RunStatus


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (S.SCHEDULED, S.QUEUED, True),
        (S.QUEUED, S.RUNNING, True),
        (S.QUEUED, S.SUCCEEDED, True),
        (S.RUNNING, S.FAILED, True),
        (S.RUNNING, S.TIMED_OUT, True),
        (S.SCHEDULED, S.SKIPPED, True),
        (S.RUNNING, S.QUEUED, False),
        (S.RUNNING, S.RUNNING, False),
        (S.QUEUED, S.QUEUED, False),
    ],
)
def test_status_moves_only_forward(current: RunStatus, new: RunStatus, allowed: bool) -> None:
    assert can_move(current, new) is allowed


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
def test_a_final_status_is_never_replaced(final: RunStatus) -> None:
    assert final.is_final
    assert not any(can_move(final, other) for other in RunStatus)


def test_run_id_is_schedule_and_unix_seconds() -> None:
    schedule_id = uuid.UUID("11111111-1111-1111-1111-111111111111")
    at = datetime(2026, 1, 1, 0, 0, 5, 999_000, tzinfo=UTC)
    assert run_id_for(schedule_id, at) == f"{schedule_id}:1767225605"
    assert run_id_for(schedule_id, at) == run_id_for(str(schedule_id), at.replace(microsecond=0))
