"""The ``run_fire`` activity: drive one fire of a job until every device's run is final.

It opens the fire through the api (which evaluates the selector and makes the runs),
then keeps at most ``max_in_flight`` runs under way (and the per-label caps), asking
the api to publish them in batches; reads the fire's results from its own JetStream
consumer; records them through the api in batches; retries failed attempts; times out
runs whose result never comes; and finally closes the fire.

Crash-safe by construction: every step is idempotent and the state lives in the api
and the broker. When the worker dies, Temporal runs the activity again (after the
heartbeat timeout) on another worker: the api answers the same fire with the runs not
final yet, those already published wait for their results in the durable consumer, the
rest are published, and a result recorded twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import httpx
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from netcron.fleet.caps import FireCaps
from netcron.jobspec import (
    FIRE_ACTIVITY,
    Dispatched,
    DispatchItem,
    DispatchRequest,
    FirePlan,
    FireRecords,
    FireRequest,
    FireRunRecord,
    FireSummary,
)
from netcron.messages import FIRE_RESULTS_STREAM, ResultMessage, fire_results_subject
from netcron.platforms import ErrorKind
from netcron.runs import RunStatus

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)

#: Runs asked to be published in one api call, and results fetched / recorded at once.
DISPATCH_BATCH = 1000
FETCH_BATCH = 1000
#: A run whose result has not come this long after its deadline is timed out here (the
#: executor reports a missed deadline itself; this covers a task the broker lost).
DEADLINE_GRACE = 10.0
#: How long a fire's consumer outlives a dispatcher that vanished without closing it.
CONSUMER_INACTIVE = 3600.0
API_RETRY = 1.0
FIRE_GONE = "FireGone"


class _ApiGone(Exception):
    """The job or the fire no longer exists (deleted)."""


@dataclass
class _Run:
    groups: list[str]
    attempt: int = 1
    #: monotonic seconds; None while the run waits for a slot or a retry
    deadline: float | None = None

    def expired(self, now: float) -> bool:
        return self.deadline is not None and self.deadline < now


@dataclass
class Fire:
    """The state of one fire's dispatch, for one activity attempt."""

    js: JetStreamContext
    api: httpx.AsyncClient
    request: FireRequest
    heartbeat: Callable[..., None] = lambda *details: None
    grace: float = DEADLINE_GRACE
    plan: FirePlan = field(init=False)
    caps: FireCaps = field(init=False)
    runs: dict[str, _Run] = field(default_factory=dict)
    retries: list[tuple[float, str]] = field(default_factory=list)
    pending_records: dict[str, FireRunRecord] = field(default_factory=dict)
    pending_acks: list[Msg] = field(default_factory=list)

    @property
    def fire_id(self) -> str:
        return str(self.request.fire_id)

    async def drive(self) -> FireSummary:
        self.plan = plan = await self._call("", self.request, FirePlan)
        self.caps = FireCaps(plan.max_in_flight, plan.per_label)
        now = time.monotonic()
        for run in plan.runs:
            self.runs[run.run_id] = _Run(run.groups, run.attempt)
            if run.status == RunStatus.SCHEDULED:
                self.caps.add(run.run_id, run.groups)
            else:
                self.caps.started(run.run_id, run.groups)
                self.runs[run.run_id].deadline = now + plan.ttl_seconds + self.grace
        subscription = await self._subscribe() if plan.runs else None
        try:
            while self._unfinished():
                self.heartbeat(len(self.caps.in_flight), self.caps.waiting)
                # The api publishes a batch while the results that came meanwhile are
                # read and recorded: one after the other, slots freed during a publish
                # waited for it, and then for the recording, before they were refilled.
                await asyncio.gather(self._dispatch(), self._take_in(subscription))
            summary = await self._call("/finish", None, FireSummary)
        finally:
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        with contextlib.suppress(Exception):
            await self.js.delete_consumer(FIRE_RESULTS_STREAM, self._consumer_name)
        return summary

    def _unfinished(self) -> bool:
        """Runs to start or to hear from, or results not recorded yet."""
        return bool(
            self.caps.in_flight or self.caps.waiting or self.retries or self.pending_records
        )

    @property
    def _consumer_name(self) -> str:
        return f"fire-{self.fire_id}"

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        return await self.js.pull_subscribe(
            fire_results_subject(self.request.fire_id),
            durable=self._consumer_name,
            stream=FIRE_RESULTS_STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=60,
                max_ack_pending=-1,
                inactive_threshold=CONSUMER_INACTIVE,
            ),
        )

    async def _take_in(self, subscription: JetStreamContext.PullSubscription | None) -> None:
        """Read the results that came, time out and retry what is due, record them."""
        if subscription is not None:
            await self._collect(subscription)
        self._expire()
        self._retry_due()
        await self._flush()

    async def _dispatch(self) -> None:
        taken = self.caps.take(DISPATCH_BATCH)
        if not taken:
            return
        items = [DispatchItem(run_id=run_id, attempt=self.runs[run_id].attempt) for run_id in taken]
        try:
            answer = await self._call("/dispatch", DispatchRequest(items=items), Dispatched)
        except _Unavailable:
            for run_id in reversed(taken):
                self.caps.done(run_id)
                # (a run whose result came meanwhile is over: published after all)
                if (run := self.runs.get(run_id)) is not None:
                    self.caps.add(run_id, run.groups, first=True)
            await asyncio.sleep(API_RETRY)
            return
        now = time.monotonic()
        wall = datetime.now(UTC)
        for run_id, deadline in answer.published.items():
            # A result read while the api answered may have ended the run already.
            if (run := self.runs.get(run_id)) is not None:
                run.deadline = now + (deadline - wall).total_seconds() + self.grace
        for run_id in answer.gone + answer.done:
            self._forget(run_id)

    async def _collect(self, subscription: JetStreamContext.PullSubscription) -> None:
        try:
            messages = await subscription.fetch(FETCH_BATCH, timeout=0.2)
        except TimeoutError:
            return
        for message in messages:
            self.pending_acks.append(message)
            try:
                result = ResultMessage.model_validate_json(message.data)
            except ValidationError as exc:
                log.error("dropping a malformed result message: %s", exc.errors()[:3])
                continue
            self._take(result)

    def _take(self, result: ResultMessage) -> None:
        run = self.runs.get(result.run_id)
        if run is not None and result.attempt < run.attempt:
            return  # an earlier attempt's news
        if result.status.is_final and run is not None and self._should_retry(result, run):
            self.caps.done(result.run_id)
            backoff = self.plan.retry_backoff_seconds * 2 ** (run.attempt - 1)
            run.attempt += 1
            run.deadline = None
            self.retries.append((time.monotonic() + backoff, result.run_id))
            return
        self._record(_record_of(result))
        if result.status.is_final:
            self._forget(result.run_id)

    def _should_retry(self, result: ResultMessage, run: _Run) -> bool:
        return (
            result.status == RunStatus.FAILED
            and (result.error_kind is None or result.error_kind.retryable)
            and run.attempt < self.plan.retry_max_attempts
        )

    def _record(self, record: FireRunRecord) -> None:
        held = self.pending_records.get(record.run_id)
        if held is None or not held.status.is_final:
            self.pending_records[record.run_id] = record

    def _forget(self, run_id: str) -> None:
        self.caps.done(run_id)
        self.caps.drop(run_id)
        self.runs.pop(run_id, None)

    def _expire(self) -> None:
        now = time.monotonic()
        expired = [r for r in self.caps.in_flight if r in self.runs and self.runs[r].expired(now)]
        for run_id in expired:
            run = self.runs[run_id]
            self._record(
                FireRunRecord(
                    run_id=run_id,
                    status=RunStatus.TIMED_OUT,
                    attempt=run.attempt,
                    finished_at=datetime.now(UTC),
                    error=f"no result within ttl_seconds={self.plan.ttl_seconds}",
                    error_kind=ErrorKind.TIMEOUT,
                )
            )
            self._forget(run_id)

    def _retry_due(self) -> None:
        now = time.monotonic()
        due = [run_id for at, run_id in self.retries if at <= now]
        self.retries = [(at, run_id) for at, run_id in self.retries if at > now]
        for run_id in due:
            if run_id in self.runs:
                self.caps.add(run_id, self.runs[run_id].groups, first=True)

    async def _flush(self) -> None:
        """Record what came in, then ack it: a crash in between means redelivery."""
        if self.pending_records:
            records = list(self.pending_records.values())
            try:
                for start in range(0, len(records), FETCH_BATCH):
                    batch = FireRecords(records=records[start : start + FETCH_BATCH])
                    await self._call("/results", batch, None)
            except _Unavailable:
                await asyncio.sleep(API_RETRY)
                return
            self.pending_records.clear()
        acks, self.pending_acks = self.pending_acks, []
        await asyncio.gather(*(message.ack() for message in acks), return_exceptions=True)

    async def _call(self, path: str, body: BaseModel | None, answer: type[T] | None) -> T:
        """POST to the fire's internal endpoint; retried while the api is down (opening
        and closing must happen: the fire's state is there)."""
        url = "/internal/fires" + (f"/{self.fire_id}{path}" if path else "")
        content = body.model_dump_json() if body is not None else "{}"
        while True:
            try:
                response = await self.api.post(
                    url, content=content, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:
                response = None
                error = repr(exc)
            if response is not None:
                if response.status_code == 404:
                    raise ApplicationError(
                        f"the fire is gone: {response.text[:200]}",
                        type=FIRE_GONE,
                        non_retryable=True,
                    )
                if response.status_code in (400, 409, 413, 422):
                    raise ApplicationError(
                        f"the api refused {path or 'open'}: {response.status_code} "
                        f"{response.text[:500]}",
                        type=FIRE_GONE,
                        non_retryable=True,
                    )
                if response.is_success:
                    return answer.model_validate_json(response.content) if answer else None  # type: ignore[return-value]
                error = f"{response.status_code} {response.text[:200]}"
            if path in ("/dispatch", "/results"):
                log.warning("fire %s: %s failed: %s", self.fire_id, path, error)
                raise _Unavailable(error)
            log.warning("fire %s: %s failed, retrying: %s", self.fire_id, path or "open", error)
            self.heartbeat()
            await asyncio.sleep(API_RETRY)


class _Unavailable(Exception):
    """The api did not take a batch; it is tried again on the next round."""


def _record_of(result: ResultMessage) -> FireRunRecord:
    return FireRunRecord(
        run_id=result.run_id,
        status=result.status,
        attempt=result.attempt,
        started_at=result.started_at,
        finished_at=result.finished_at,
        output=result.output,
        output_truncated=result.output_truncated,
        error=result.error,
        error_kind=result.error_kind,
        host_key=result.host_key,
        executor_id=result.executor_id,
        parsed=result.parsed,
        parse_error=result.parse_error,
    )


class FireActivities:
    """The fire activity with its clients: JetStream for results, the api for the rest."""

    def __init__(self, js: JetStreamContext, api: httpx.AsyncClient) -> None:
        self.js = js
        self.api = api

    @activity.defn(name=FIRE_ACTIVITY)
    async def run_fire(self, request: FireRequest) -> FireSummary:
        fire = Fire(self.js, self.api, request, heartbeat=activity.heartbeat)
        started = time.monotonic()
        summary = await fire.drive()
        log.info(
            "fire driven in %.1fs: %s",
            time.monotonic() - started,
            summary.counts,
            extra={"job_id": str(request.job_id), "fire_id": str(request.fire_id)},
        )
        return summary
