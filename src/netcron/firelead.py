"""How early a schedule workflow sets its fire timer, learned from how late it woke.

A Temporal timer starts when the workflow task that sets it completes, and the task that
fires a run completes only after its local activity has published the task. So a timer
set for the next fire wakes the workflow late by about one workflow task, plus the
time the server and the worker take to deliver the wake-up: 70-120 ms at 20 runs/s on
two cores, more when many schedules fire on the same second. The workflow therefore
aims its timer early by an estimate of that delay, the way TCP sets its retransmission
timeout: a smoothed mean plus a multiple of the smoothed deviation, so that nearly
every wake-up comes before the fire time. A run published early is held by the
executor until its scheduled time, so the command itself still starts on the second.

Pure and deterministic: the workflow feeds it ``workflow.now()`` differences only.
"""

from __future__ import annotations

from pydantic import BaseModel

#: The lead never exceeds this: a task published earlier would hold an executor slot.
MAX_LEAD = 0.5
#: Smoothing gains for the mean and the deviation (RFC 6298's alpha and beta).
MEAN_GAIN = 1 / 8
DEV_GAIN = 1 / 4
#: The lead is the mean delay plus this many deviations.
DEVIATIONS = 3


class FireLead(BaseModel):
    """The smoothed wake-up delay of one schedule's fire timer, in seconds."""

    mean: float = 0.0
    dev: float = 0.0
    samples: int = 0

    @property
    def seconds(self) -> float:
        return min(max(self.mean + DEVIATIONS * self.dev, 0.0), MAX_LEAD)

    def observe(self, late: float) -> FireLead:
        """The estimate after a wake-up ``late`` seconds after the time the timer aimed at."""
        late = min(max(late, 0.0), 2 * MAX_LEAD)
        if self.samples == 0:
            return FireLead(mean=late, dev=late / 2, samples=1)
        dev = (1 - DEV_GAIN) * self.dev + DEV_GAIN * abs(late - self.mean)
        mean = (1 - MEAN_GAIN) * self.mean + MEAN_GAIN * late
        return FireLead(mean=mean, dev=dev, samples=self.samples + 1)
