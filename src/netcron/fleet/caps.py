"""Concurrency caps of one fire: ``max_in_flight`` for the whole fire and per-label caps.

Pure bookkeeping, no I/O. Runs wait in one queue per group (the device's values of the
capped label keys), so finding the next run that may start costs a pass over the
groups, not over the devices. Groups take turns, so one site's backlog does not hold
the others back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

#: The group of a device that lacks a capped label: that cap does not hold it back.
UNLABELLED = ""


@dataclass
class FireCaps:
    max_in_flight: int
    per_label: dict[str, int]
    _waiting: dict[tuple[str, ...], deque[str]] = field(default_factory=dict)
    #: The runs in ``_waiting``: a run that is not waiting is dropped without a search
    #: of its queue (every finished run is dropped: 10,000 searches of a queue of
    #: thousands were a third of the worker's CPU in a fire of 10,000).
    _queued: set[str] = field(default_factory=set)
    _groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _busy: dict[tuple[int, str], int] = field(default_factory=dict)
    _turn: int = 0
    in_flight: set[str] = field(default_factory=set)

    @property
    def keys(self) -> list[str]:
        return list(self.per_label)

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    def add(self, run_id: str, groups: Sequence[str], *, first: bool = False) -> None:
        """Queue a run (``first``: ahead of its group, as a retry is)."""
        group = tuple(groups)
        self._groups[run_id] = group
        queue = self._waiting.setdefault(group, deque())
        self._queued.add(run_id)
        if first:
            queue.appendleft(run_id)
        else:
            queue.append(run_id)

    def started(self, run_id: str, groups: Sequence[str]) -> None:
        """A run already in flight (a fire resumed after a worker crash)."""
        self._groups[run_id] = tuple(groups)
        self._hold(run_id)

    def take(self, limit: int | None = None) -> list[str]:
        """Runs that may start now, marked in flight."""
        taken: list[str] = []
        progress = True
        while progress and len(self.in_flight) < self.max_in_flight:
            if limit is not None and len(taken) >= limit:
                break
            progress = False
            groups = [group for group, queue in self._waiting.items() if queue]
            if not groups:
                break
            self._turn = (self._turn + 1) % len(groups)
            for group in groups[self._turn :] + groups[: self._turn]:
                if len(self.in_flight) >= self.max_in_flight:
                    break
                if limit is not None and len(taken) >= limit:
                    break
                if not self._fits(group):
                    continue
                run_id = self._waiting[group].popleft()
                self._queued.discard(run_id)
                self._hold(run_id)
                taken.append(run_id)
                progress = True
        return taken

    def done(self, run_id: str) -> None:
        """A run left flight (ended, or its device is gone); frees its slots."""
        if run_id not in self.in_flight:
            return
        self.in_flight.discard(run_id)
        for index, value in enumerate(self._groups.get(run_id, ())):
            if value != UNLABELLED:
                self._busy[(index, value)] -= 1

    def drop(self, run_id: str) -> None:
        """Forget a waiting run (its device is gone)."""
        if run_id not in self._queued:
            return
        self._queued.discard(run_id)
        group = self._groups.get(run_id)
        if group is not None and run_id in self._waiting.get(group, ()):
            self._waiting[group].remove(run_id)

    def busy(self, key: str, value: str) -> int:
        return self._busy.get((self.keys.index(key), value), 0)

    def _fits(self, group: tuple[str, ...]) -> bool:
        caps = list(self.per_label.values())
        return all(
            value == UNLABELLED or self._busy.get((index, value), 0) < caps[index]
            for index, value in enumerate(group)
        )

    def _hold(self, run_id: str) -> None:
        self.in_flight.add(run_id)
        for index, value in enumerate(self._groups.get(run_id, ())):
            if value != UNLABELLED:
                self._busy[(index, value)] = self._busy.get((index, value), 0) + 1
