"""The api's part of history: store a run's output, and say whether its series changed.

Called with plain values (the record's output, how to normalize it, the series), so that
a schedule's run and a job's device result take the same path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from netcron.db.models import CommandResult
from netcron.history.diff import Diff, DiffStats
from netcron.history.normalize import NormalizeTimeout, normalize, relative_to
from netcron.history.options import ChangeTracking
from netcron.history.series import Series, previous_run
from netcron.history.store import Blob, stored_blobs

log = logging.getLogger(__name__)

#: Lines of the diff a ``run.changed`` event carries.
EVENT_DIFF_LINES = 20


def blob_for(
    output: str | None, tracking: ChangeTracking | None, run_id: str | None = None
) -> Blob | None:
    """What to store for an output: the normalized text when its series tracks changes.

    A normalization that takes too long (a user's pattern that backtracks) leaves the
    run uncompared, its output stored whole, and says so in the log.
    """
    if output is None:
        return None
    if tracking is None:
        return Blob.of(output)
    try:
        normalized = normalize(output, tracking.platform, tracking.ignore_lines)
    except NormalizeTimeout as exc:
        log.warning(
            "output not compared with the previous run's: %s (ignore_lines?)",
            exc,
            extra={"run_id": run_id},
        )
        return Blob.of(output)
    return Blob.of_normalized(normalized)


@dataclass(frozen=True)
class Change:
    """A tracked run whose output differs from the previous one's."""

    stats: DiffStats
    diff: str
    against: str | None


async def compare_with_previous(
    session: AsyncSession, row: CommandResult, blob: Blob, series: Series
) -> Change | None:
    """Set ``changed``, the line counts and the residue on ``row``; the change, if any.

    One query finds the previous successful run of the series (with its blob's residue);
    when the hash is the same that is all. When it differs, a second one reads the
    previous text (for the line counts) and this run's blob's residue (the blob may be an
    older one coming back).
    """
    previous = await previous_run(session, series, row.scheduled_at)
    if previous is not None and previous.output_hash == blob.hash:
        row.changed, row.lines_added, row.lines_removed = False, 0, 0
        row.output_volatile = relative_to(blob.residue, previous.blob_volatile)
        return None
    wanted = [blob.hash] + ([previous.output_hash] if previous else [])
    stored = await stored_blobs(session, wanted)
    ours = stored.get(blob.hash)
    row.output_volatile = relative_to(blob.residue, ours.volatile if ours else None)
    old = stored[previous.output_hash].text if previous and previous.output_hash in stored else None
    diff = Diff.of(old, blob.text)
    stats = diff.stats()
    row.changed, row.lines_added, row.lines_removed = True, stats.added, stats.removed
    against = previous.run_id if previous else None
    text = diff.unified(against or "/dev/null", row.run_id)
    preview = "\n".join(text.splitlines()[:EVENT_DIFF_LINES])
    return Change(stats, preview, against)
