"""The ``queued`` record, held back briefly so a quick run costs one api write.

Progress is for people watching a run. Most runs end well within a second, and their
final record, which carries the same fields, makes a progress write pointless: posting
``queued`` and ``running`` for every run tripled the api's writes, PostgreSQL commits
and live events. So ``queued`` waits ``delay`` seconds and is dropped if the run's final
record comes first (executors hold ``running`` back the same way). A run that outlives
the delay shows its progress as before, at most ``delay`` late. A dropped or failed
progress write loses nothing: the final record is what counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from netcron.runs import can_move
from netcron.runspec import RecordRequest

log = logging.getLogger(__name__)

#: Seconds a progress record waits for the run's final record before it is posted.
PROGRESS_DELAY = 0.5


class ProgressRecords:
    """Deferred progress writes, at most one pending per run (the latest, merged)."""

    def __init__(
        self, post: Callable[[RecordRequest], Awaitable[None]], delay: float = PROGRESS_DELAY
    ) -> None:
        self._post = post
        self.delay = delay
        self._pending: dict[str, RecordRequest] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._posting: set[asyncio.Task[None]] = set()

    def defer(self, request: RecordRequest) -> None:
        """Post ``request`` after the delay unless :meth:`settle` is called for its run."""
        run_id = request.record.run_id
        earlier = self._pending.get(run_id)
        if earlier is not None:
            request = _merged(earlier, request)
        self._pending[run_id] = request
        if run_id not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[run_id] = loop.call_later(self.delay, self._due, run_id)

    def settle(self, run_id: str) -> None:
        """The run's final record is being written: drop its pending progress."""
        self._pending.pop(run_id, None)
        timer = self._timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Post everything pending now (on shutdown) and wait for posts in flight."""
        for run_id in list(self._timers):
            self._timers.pop(run_id).cancel()
            self._due(run_id)
        if self._posting:
            await asyncio.gather(*self._posting, return_exceptions=True)

    def _due(self, run_id: str) -> None:
        self._timers.pop(run_id, None)
        request = self._pending.pop(run_id, None)
        if request is None:
            return
        task = asyncio.create_task(self._post_quietly(request))
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _post_quietly(self, request: RecordRequest) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await self._post(request)
            except Exception as exc:
                log.info(
                    "%s status not recorded: %s",
                    request.record.status.value,
                    exc,
                    extra={"run_id": request.record.run_id},
                )


def _merged(earlier: RecordRequest, later: RecordRequest) -> RecordRequest:
    """Both records' fields in one; the status only ever moves forward."""
    old, new = earlier.record, later.record
    if not can_move(old.status, new.status):
        old, new = new, old
    fields = {**old.model_dump(exclude_none=True), **new.model_dump(exclude_none=True)}
    return later.model_copy(update={"record": new.model_validate(fields)})
