"""ScheduleWorkflow: one per schedule; waits for each cron time, fires, records the run.

Deterministic: time comes from ``workflow.now()``, I/O happens in the two local
activities (``publish_task``, ``record_run``), cron math is the pure ``netcron.cron``.
A happy-path run costs about a dozen history events: the timer, the publish marker,
the result signal, the record marker and their workflow tasks.
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
    from netcron.history.options import ChangeTracking
    from netcron.messages import ResultMessage, TaskMessage
    from netcron.platforms import ErrorKind
    from netcron.runs import RunStatus, run_id_for
    from netcron.runspec import (
        MEMO_SPEC_VERSION,
        QUERY_STATE,
        SIGNAL_RESULT,
        SIGNAL_STOP,
        SIGNAL_UPDATE,
        UPDATE_SPEC,
        UPDATE_STOP,
        UPDATE_TRIGGER,
        WORKFLOW_NAME,
        RecordRequest,
        RunRecord,
        RunSpec,
        ScheduleInput,
    )

#: Continue as new past this many history events (when no run is pending).
HISTORY_LIMIT = 2_000
#: After an outage, fires older than this are not even counted, let alone recorded.
MISSED_SCAN_WINDOW = timedelta(hours=1)
#: After an outage, at most this many missed fires are recorded as skipped (the latest).
MISSED_RECORD_LIMIT = 100
#: Skipped fires recorded at once (each a local activity, all in one workflow task).
SKIP_BATCH = 20
#: A late fire still runs within this many seconds even when the deadline is lower.
MIN_STARTING_DEADLINE = 1.0

SCHEDULE_GONE = "ScheduleGone"
PUBLISH_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5)
    ),
}
#: A record the api refuses (down, or its database down) is retried after a workflow
#: timer, not inside the workflow task: a local activity retried in place holds the
#: task open, and the workflow could not fire until the api answered (every fire of a
#: 3-second api outage was missed, `netcron chaos`). The timer costs events only when a
#: record fails.
RECORD_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=15),
    "local_retry_threshold": timedelta(milliseconds=500),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=0,
        non_retryable_error_types=[SCHEDULE_GONE, "RecordRejected"],
    ),
}


def _cause(exc: BaseException) -> BaseException:
    """The activity's own error: local activities may raise it bare or wrapped."""
    if isinstance(exc, ActivityError) and exc.cause is not None:
        return exc.cause
    return exc


@workflow.defn(name=WORKFLOW_NAME)
class ScheduleWorkflow:
    """Fires one schedule for as long as it exists, from the run spec the api sends."""

    @workflow.init
    def __init__(self, schedule: ScheduleInput) -> None:
        # Set here, not in run(): signals and updates that arrive with the first task
        # are handled before run() starts.
        self._spec: RunSpec | None = schedule.spec
        self._pending: dict[str, datetime] = {}
        self._deadlines: dict[str, datetime] = {}
        self._attempt: dict[str, int] = {}
        self._expired: set[str] = set()
        self._waiting_on_deadline = False
        self._waiting_on_run_end = False
        self._wake_at: datetime | None = None
        self._results: dict[str, ResultMessage] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._woken = False
        self._stopping = False
        #: Publish activities under way: a stop answers only once there are none.
        self._publishing = 0
        self._gone = False
        self._last_fire_at: datetime | None = None
        self._next_fire_at: datetime | None = None
        self._lead: FireLead = schedule.fire_lead

    @property
    def spec(self) -> RunSpec:
        assert self._spec is not None
        return self._spec

    @workflow.run
    async def run(self, schedule: ScheduleInput) -> None:
        self._last_fire_at = schedule.last_fire_at or workflow.now()
        while not self._done():
            now = workflow.now()
            self._expire(now)
            if not self.spec.is_active:
                await self._sleep_until(None, now)
                # A pause is not an outage: its fires are not caught up.
                self._last_fire_at = max(self._last_fire_at, workflow.now())
                continue
            if self._should_continue_as_new():
                # Checked before firing: with fast schedules a run is always pending
                # right after a fire, so this is the moment when nothing is in flight.
                # The new execution fires what is due from the same last_fire_at.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    ScheduleInput(
                        spec=self.spec, last_fire_at=self._last_fire_at, fire_lead=self._lead
                    ),
                    memo={MEMO_SPEC_VERSION: self.spec.version},
                )
            scan_from = max(self._last_fire_at, now - MISSED_SCAN_WINDOW)
            # A fire up to one lead ahead is due now: the executor holds it until its time.
            horizon = now + timedelta(seconds=self._lead.seconds)
            due = fire_times_between(self.spec.cron, self.spec.timezone, scan_from, horizon)
            if due and due[-1] > now and self._pending and self.spec.overlap == "skip":
                # Early, and an earlier run has not reported yet: whether this fire
                # overlaps it is decided at the fire time, or as soon as that run ends.
                await self._sleep_until(due[-1], now, lead=False, wake_on_run_end=True)
                continue
            if due:
                self._fire(due, now)
                self._last_fire_at = due[-1]
                continue
            self._next_fire_at = next_fire_time(
                self.spec.cron, self.spec.timezone, self._last_fire_at
            )
            await self._sleep_until(self._next_fire_at, now)
        # A publish decided in the activation that stopped the loop is still under way in
        # the worker: the workflow (and the stop's answer) waits for it to end.
        await workflow.wait_condition(
            lambda: self._publishing == 0 and workflow.all_handlers_finished()
        )
        workflow.logger.info("schedule workflow ends", extra=self._ids())

    def _done(self) -> bool:
        return self._stopping or self._gone

    async def _sleep_until(
        self,
        fire_at: datetime | None,
        now: datetime,
        *,
        lead: bool = True,
        wake_on_run_end: bool = False,
    ) -> None:
        """One timer for the loop: until the next fire (less the lead) or the earliest deadline.

        Runs have no timers of their own; a run's TTL is checked when the loop wakes,
        which saves two history events per run when fires come faster than the TTL.
        A signal, or a run ending while the loop waits on its deadline (or, with
        ``wake_on_run_end``, at all), wakes it early. A wake-up by the fire timer teaches
        the lead how late such wake-ups come.
        """
        ahead = timedelta(seconds=self._lead.seconds if lead else 0)
        aim = fire_at - ahead if fire_at else None
        deadlines = [at for run_id, at in self._deadlines.items() if run_id not in self._expired]
        candidates = [at for at in (aim, *deadlines) if at is not None]
        self._wake_at = min(candidates) if candidates else None
        self._waiting_on_deadline = self._wake_at is not None and self._wake_at != aim
        self._waiting_on_run_end = wake_on_run_end
        self._woken = False
        seconds = None
        if self._wake_at is not None:
            seconds = max((self._wake_at - now).total_seconds(), 0.001)
        try:
            await workflow.wait_condition(lambda: self._woken or self._done(), timeout=seconds)
        except TimeoutError:
            if aim is not None and self._wake_at == aim and aim > now:
                self._lead = self._lead.observe((workflow.now() - aim).total_seconds())
        self._wake_at = None
        self._waiting_on_run_end = False

    def _expire(self, now: datetime) -> None:
        for run_id, deadline in self._deadlines.items():
            if deadline <= now:
                self._expired.add(run_id)

    def _should_continue_as_new(self) -> bool:
        if self._pending or self._tasks:
            return False
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT
        )

    def _fire(self, due: list[datetime], now: datetime) -> None:
        """Run the latest due fire (if not too late); the earlier ones were missed."""
        *missed, latest = due
        spec = self.spec
        late = (now - latest).total_seconds()
        if late > max(spec.starting_deadline_seconds, MIN_STARTING_DEADLINE):
            missed.append(latest)
        elif self._pending and spec.overlap == "skip":
            self._spawn(self._skip([latest], "the previous run was still pending (overlap: skip)"))
        else:
            self._spawn(self._run(spec, latest))
        if missed:
            workflow.logger.warning(
                "%d fire(s) missed; recording them as skipped", len(missed), extra=self._ids()
            )
            self._spawn(
                self._skip(
                    missed[-MISSED_RECORD_LIMIT:], "missed: no worker or Temporal at the fire time"
                )
            )

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, spec: RunSpec, scheduled_at: datetime, run_id: str | None = None) -> None:
        run_id = run_id or run_id_for(spec.schedule_id, scheduled_at)
        deadline = scheduled_at + timedelta(seconds=spec.ttl_seconds)
        task = TaskMessage(
            run_id=run_id,
            schedule_id=spec.schedule_id,
            device_id=spec.device_id,
            command_id=spec.command_id,
            scheduled_at=scheduled_at,
            deadline=deadline,
            platform=spec.device.platform,
            host=spec.device.host,
            port=spec.device.port,
            username=spec.device.username,
            credentials=spec.device.credentials,
            command=spec.command,
            timeout=spec.command_timeout,
            connect_timeout=spec.device.connect_timeout,
            host_key_policy=spec.device.host_key_policy,
            host_key=spec.device.host_key,
            session_limit=spec.device.session_limit,
            mask=spec.history.mask,
            parse=spec.history.parse,
        )
        self._pending[run_id] = scheduled_at
        try:
            record = await self._attempts(spec, task)
        finally:
            self._pending.pop(run_id, None)
            self._attempt.pop(run_id, None)
            self._deadlines.pop(run_id, None)
            self._expired.discard(run_id)
            self._results.pop(run_id, None)
            if self._waiting_on_deadline or self._waiting_on_run_end:
                self._woken = True
        await self._record(spec, record)

    async def _attempts(self, spec: RunSpec, task: TaskMessage) -> RunRecord:
        """Publish and wait, retrying a failed attempt per the spec until the deadline."""
        while True:
            if self._done():
                # Stopped while this run waited (a retry's backoff, or a fire in the
                # same activation as the stop): a deleted schedule publishes nothing.
                return self._final(task, RunStatus.CANCELED, "the schedule was deleted")
            self._attempt[task.run_id] = task.attempt
            self._publishing += 1
            try:
                await workflow.execute_local_activity(
                    "publish_task",
                    task,
                    schedule_to_close_timeout=max(
                        task.deadline - workflow.now(), timedelta(seconds=1)
                    ),
                    **PUBLISH_OPTIONS,
                )
            except (ActivityError, ApplicationError) as exc:
                return self._final(task, RunStatus.FAILED, f"task not published: {_cause(exc)}")
            finally:
                self._publishing -= 1
            result = await self._result_of(task)
            if result is None:
                error = f"no result within ttl_seconds={spec.ttl_seconds}"
                return self._final(task, RunStatus.TIMED_OUT, error, ErrorKind.TIMEOUT)
            backoff = timedelta(seconds=spec.retry_backoff_seconds * 2 ** (task.attempt - 1))
            retry = (
                result.status == RunStatus.FAILED
                and (result.error_kind is None or result.error_kind.retryable)
                and task.attempt < spec.retry_max_attempts
                and workflow.now() + backoff < task.deadline
            )
            if not retry:
                return self._from_result(spec, task, result)
            failed = self._from_result(spec, task, result).model_copy(
                update={"status": RunStatus.RUNNING, "finished_at": None}
            )
            await self._record(spec, failed)
            await workflow.sleep(backoff)
            task = task.model_copy(update={"attempt": task.attempt + 1})

    async def _result_of(self, task: TaskMessage) -> ResultMessage | None:
        """The attempt's final result, or None once the run's deadline passed."""
        run_id = task.run_id
        if run_id not in self._deadlines:
            self._deadlines[run_id] = task.deadline
            if self._wake_at is None or task.deadline < self._wake_at:
                self._woken = True
        await workflow.wait_condition(lambda: run_id in self._results or run_id in self._expired)
        return self._results.pop(run_id, None)

    async def _skip(self, fires: list[datetime], reason: str) -> None:
        """Record fires as skipped, a batch at a time.

        The workflow task stays open until its local activities end, and with it the
        timer for the next fire: one record after another, the fires missed during a
        worker outage took seconds to record, so the next ones were missed too, and so on
        (`netcron chaos`: a 3-second worker outage cost 18 seconds of fires).
        """
        spec = self.spec
        records = [
            RunRecord(
                run_id=run_id_for(spec.schedule_id, scheduled_at),
                command_id=spec.command_id,
                status=RunStatus.SKIPPED,
                scheduled_at=scheduled_at,
                finished_at=workflow.now(),
                error=reason,
                command=spec.command,
            )
            for scheduled_at in fires
        ]
        for start in range(0, len(records), SKIP_BATCH):
            batch = records[start : start + SKIP_BATCH]
            await asyncio.gather(*(self._record(spec, record) for record in batch))
            if self._gone:
                return

    @staticmethod
    def _final(
        task: TaskMessage, status: RunStatus, error: str, kind: ErrorKind | None = None
    ) -> RunRecord:
        return RunRecord(
            run_id=task.run_id,
            command_id=task.command_id,
            status=status,
            scheduled_at=task.scheduled_at,
            finished_at=workflow.now(),
            error=error,
            error_kind=kind,
            command=task.command,
        )

    @staticmethod
    def _from_result(spec: RunSpec, task: TaskMessage, result: ResultMessage) -> RunRecord:
        tracking = None
        if spec.history.track_changes and result.status == RunStatus.SUCCEEDED:
            tracking = ChangeTracking(
                platform=spec.device.platform, ignore_lines=spec.history.ignore_lines
            )
        return RunRecord(
            run_id=task.run_id,
            command_id=task.command_id,
            status=result.status,
            scheduled_at=task.scheduled_at,
            started_at=result.started_at,
            finished_at=result.finished_at,
            attempt=result.attempt,
            output=result.output,
            output_truncated=result.output_truncated,
            error=result.error,
            error_kind=result.error_kind,
            # Only a key the device has no record of yet is news to the api: sending it
            # on every run cost the api a write per run to learn nothing.
            host_key=result.host_key if task.host_key is None else None,
            executor_id=result.executor_id,
            command=task.command,
            tracking=tracking,
            parsed=result.parsed,
            parse_error=result.parse_error,
        )

    async def _record(self, spec: RunSpec, record: RunRecord) -> None:
        request = RecordRequest(
            device_id=spec.device_id, schedule_id=spec.schedule_id, record=record
        )
        try:
            await workflow.execute_local_activity("record_run", request, **RECORD_OPTIONS)
        except (ActivityError, ApplicationError) as exc:
            cause = _cause(exc)
            if isinstance(cause, ApplicationError) and cause.type == SCHEDULE_GONE:
                workflow.logger.info("schedule is gone; ending", extra=self._ids(record.run_id))
                self._gone = True
            else:
                workflow.logger.error("run not recorded: %s", cause, extra=self._ids(record.run_id))

    def _ids(self, run_id: str | None = None) -> dict[str, str]:
        ids = {"schedule_id": str(self._spec.schedule_id) if self._spec else ""}
        if run_id:
            ids["run_id"] = run_id
        return ids

    @workflow.signal(name=SIGNAL_UPDATE)
    def update(self, spec: RunSpec) -> None:
        """A newer run spec; it takes effect from the next fire."""
        self._take(spec)

    @workflow.update(name=UPDATE_SPEC)
    def apply_spec(self, spec: RunSpec) -> int:
        """As the ``update`` signal, but the caller learns when the workflow holds the spec,
        and which version it held before (reconciliation counts a repair by it).

        An update is handled only after the workflow task in flight has completed, so
        once it returns no publish decided under the old spec can still be under way:
        a paused schedule fires nothing after the api answered the pause.
        """
        before = self.spec.version
        self._take(spec)
        return before

    def _take(self, spec: RunSpec) -> None:
        held = self._spec.version if self._spec else 0
        if spec.version < held:
            return
        if spec.version > held:
            workflow.upsert_memo({MEMO_SPEC_VERSION: spec.version})
        self._spec = spec
        self._woken = True

    @workflow.signal(name=SIGNAL_RESULT)
    def result(self, result: ResultMessage) -> None:
        """A run's final result (from the relay); one for no pending run is ignored."""
        current = self._attempt.get(result.run_id)
        if current != result.attempt or not result.status.is_final:
            workflow.logger.info(
                "ignoring %s result for a run or attempt that is not pending",
                result.status.value,
                extra=self._ids(result.run_id),
            )
            return
        self._results[result.run_id] = result

    @workflow.update(name=UPDATE_TRIGGER)
    def trigger(self) -> str:
        """Run now, outside the cron; returns the new run's id (its own, never a fire's)."""
        now = workflow.now()
        run_id = f"{self.spec.schedule_id}:{int(now.timestamp())}:manual-{workflow.uuid4().hex[:8]}"
        self._spawn(self._run(self.spec, now, run_id))
        workflow.logger.info("run triggered by hand", extra=self._ids(run_id))
        return run_id

    @trigger.validator
    def _trigger_allowed(self) -> None:
        if self._done() or self._spec is None:
            raise ApplicationError("the schedule is ending", type="ScheduleEnding")

    @workflow.signal(name=SIGNAL_STOP)
    def stop(self) -> None:
        self._stopping = True

    @workflow.update(name=UPDATE_STOP)
    async def stop_firing(self) -> None:
        """Stop for good; returns once nothing more can be published (see ``apply_spec``).

        A fire can be decided in the same activation as the stop, before its handler
        runs: its publish is then a local activity under way in the worker, which ending
        the workflow (or terminating it) does not stop. So the answer waits for it.
        """
        self._stopping = True
        await workflow.wait_condition(lambda: self._publishing == 0)

    @workflow.query(name=QUERY_STATE)
    def state(self) -> dict[str, Any]:
        return {
            "version": self._spec.version if self._spec else None,
            "active": self._spec.is_active if self._spec else None,
            "pending": sorted(self._pending),
            "last_fire_at": self._last_fire_at.isoformat() if self._last_fire_at else None,
            "next_fire_at": self._next_fire_at.isoformat() if self._next_fire_at else None,
            "fire_lead_ms": round(self._lead.seconds * 1000, 1),
        }
