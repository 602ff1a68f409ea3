"""JobWorkflow: one per job; waits for each cron time and drives the fire as one activity.

The workflow only decides when to fire. What a fire does (evaluate the selector, publish
a task per device within the caps, record the results in batches) is the ``run_fire``
activity's work, so a fire costs the same dozen history events on one device or on ten
thousand: the timer, the activity's three events and their workflow tasks.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from netcron.cron import fire_times_between, next_fire_time
    from netcron.firelead import FireLead
    from netcron.jobspec import (
        FIRE_ACTIVITY,
        JOB_WORKFLOW_NAME,
        FireRequest,
        FireSummary,
        JobInput,
        JobSpec,
        fire_id_for,
    )
    from netcron.runspec import (
        MEMO_SPEC_VERSION,
        QUERY_STATE,
        SIGNAL_STOP,
        SIGNAL_UPDATE,
        UPDATE_SPEC,
        UPDATE_STOP,
        UPDATE_TRIGGER,
    )

#: Continue as new past this many history events (when no fire is under way).
HISTORY_LIMIT = 2_000
#: After an outage, fires older than this are not looked at.
MISSED_SCAN_WINDOW = timedelta(hours=1)
#: After an outage, at most this many missed fires are recorded (the latest).
MISSED_RECORD_LIMIT = 100
FIRE_GONE = "FireGone"
#: A fire's activity: alive as long as it heartbeats, retried (and resumed where it
#: left off) on another worker when it stops; a fire with tight caps may take hours.
FIRE_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(days=1),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=0,
        non_retryable_error_types=[FIRE_GONE],
    ),
}


@workflow.defn(name=JOB_WORKFLOW_NAME)
class JobWorkflow:
    """Fires one job for as long as it exists, from the spec the api sends."""

    @workflow.init
    def __init__(self, job: JobInput) -> None:
        self._spec: JobSpec = job.spec
        self._fires: dict[str, asyncio.Task[None]] = {}
        self._woken = False
        self._stopping = False
        self._last_fire_at: datetime | None = None
        self._next_fire_at: datetime | None = None
        self._lead: FireLead = job.fire_lead

    @workflow.run
    async def run(self, job: JobInput) -> None:
        self._last_fire_at = job.last_fire_at or workflow.now()
        while not self._stopping:
            now = workflow.now()
            if not self._spec.is_active:
                await self._sleep_until(None, now)
                self._last_fire_at = max(self._last_fire_at, workflow.now())
                continue
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    JobInput(
                        spec=self._spec, last_fire_at=self._last_fire_at, fire_lead=self._lead
                    ),
                    memo={MEMO_SPEC_VERSION: self._spec.version},
                )
            scan_from = max(self._last_fire_at, now - MISSED_SCAN_WINDOW)
            horizon = now + timedelta(seconds=self._lead.seconds)
            due = fire_times_between(self._spec.cron, self._spec.timezone, scan_from, horizon)
            if due:
                *missed, latest = due
                self._start(
                    FireRequest(
                        job_id=self._spec.job_id,
                        fire_id=fire_id_for(self._spec.job_id, latest),
                        scheduled_at=latest,
                        missed=missed[-MISSED_RECORD_LIMIT:],
                    )
                )
                self._last_fire_at = latest
                continue
            self._next_fire_at = next_fire_time(
                self._spec.cron, self._spec.timezone, self._last_fire_at
            )
            await self._sleep_until(self._next_fire_at, now)
        workflow.logger.info("job workflow ends", extra={"job_id": str(self._spec.job_id)})

    async def _sleep_until(self, fire_at: datetime | None, now: datetime) -> None:
        """Until the next fire (less the learned lead), or until a signal or update."""
        aim = fire_at - timedelta(seconds=self._lead.seconds) if fire_at else None
        self._woken = False
        seconds = max((aim - now).total_seconds(), 0.001) if aim else None
        try:
            await workflow.wait_condition(lambda: self._woken or self._stopping, timeout=seconds)
        except TimeoutError:
            if aim is not None and aim > now:
                self._lead = self._lead.observe((workflow.now() - aim).total_seconds())

    def _should_continue_as_new(self) -> bool:
        if self._fires:
            return False
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT
        )

    def _start(self, fire: FireRequest) -> None:
        key = str(fire.fire_id)
        if key not in self._fires:
            self._fires[key] = asyncio.create_task(self._drive(fire))

    async def _drive(self, fire: FireRequest) -> None:
        extra = {"job_id": str(fire.job_id), "fire_id": str(fire.fire_id)}
        try:
            summary = await workflow.execute_activity(
                FIRE_ACTIVITY, fire, result_type=FireSummary, **FIRE_OPTIONS
            )
            workflow.logger.info("fire finished: %s", summary.counts, extra=extra)
        except (ActivityError, ApplicationError) as exc:
            workflow.logger.warning(
                "fire ended without finishing: %s", exc.cause or exc, extra=extra
            )
        finally:
            # No wake-up: the loop's timer stands (waking it cost a canceled and a new
            # timer, three events per fire); continue-as-new waits for the next wake-up.
            self._fires.pop(str(fire.fire_id), None)

    @workflow.signal(name=SIGNAL_UPDATE)
    def update(self, spec: JobSpec) -> None:
        self._take(spec)

    @workflow.update(name=UPDATE_SPEC)
    def apply_spec(self, spec: JobSpec) -> int:
        """A newer spec; returns the version held before (see ``ScheduleWorkflow``)."""
        before = self._spec.version
        self._take(spec)
        return before

    def _take(self, spec: JobSpec) -> None:
        if spec.version < self._spec.version:
            return
        if spec.version > self._spec.version:
            workflow.upsert_memo({MEMO_SPEC_VERSION: spec.version})
        self._spec = spec
        self._woken = True

    @workflow.update(name=UPDATE_TRIGGER)
    def trigger(self, fire: FireRequest) -> str:
        """Drive a fire the api has opened already (run now); returns its id."""
        self._start(fire)
        return str(fire.fire_id)

    @trigger.validator
    def _trigger_allowed(self, fire: FireRequest) -> None:
        if self._stopping:
            raise ApplicationError("the job is ending", type="JobEnding")

    @workflow.signal(name=SIGNAL_STOP)
    def stop(self) -> None:
        self._stopping = True

    @workflow.update(name=UPDATE_STOP)
    def stop_firing(self) -> None:
        """Stop for good: no fire starts after this returns."""
        self._stopping = True

    @workflow.query(name=QUERY_STATE)
    def state(self) -> dict[str, Any]:
        return {
            "version": self._spec.version,
            "active": self._spec.is_active,
            "fires": sorted(self._fires),
            "last_fire_at": self._last_fire_at.isoformat() if self._last_fire_at else None,
            "next_fire_at": self._next_fire_at.isoformat() if self._next_fire_at else None,
            "fire_lead_ms": round(self._lead.seconds * 1000, 1),
        }
