"""Delivering events to webhooks, from JetStream, inside the api process.

Two stages, each on durable consumers, so every api replica shares the work and a
restart loses nothing:

1. **Fan-out.** One api replica at a time (a PostgreSQL advisory lock) reads
   NETCRON_EVENTS through the durable consumer ``webhooks-fanout``, finds the webhooks
   that want each event, and publishes one copy per webhook to
   ``netcron.webhooks.<webhook_id>`` in the stream NETCRON_WEBHOOKS (``Nats-Msg-Id``
   ``<event id>:<webhook id>``: a repeated fan-out is dropped by the broker). An event is
   acked only once its copies are published, and the consumer lets one event be unacked
   at a time, so each webhook's subject holds events in stream order, across a change of
   replica too. The api publishes ``webhook.created`` / ``.updated`` / ``.deleted`` before
   it answers a change, and the fan-out reads the webhooks again when it meets one, so
   every event after the answer goes to the webhook as it now is. That costs a fetch, a
   publish per webhook and an ack per event: 0.33 ms per event with one webhook on a local
   NATS (3,000 events/s), far above the events the runs of one Temporal server make.
2. **Delivery.** Each webhook has its own durable consumer with ``max_ack_pending=1``:
   one delivery per webhook in flight across all replicas, in stream order. Each replica
   runs one sender task per active webhook; a sender retries a failed delivery itself,
   with backoff, keeping the message with ``in_progress()``, until the receiver answers
   2xx or the event is 24 h old. A slow or dead receiver holds up its own sender only:
   never a run, another webhook, or the fan-out.

Every attempt is a row in ``webhook_deliveries`` (``GET /webhooks/{id}/deliveries``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from netcron import __version__
from netcron.config import Settings
from netcron.crypto import CredentialCipher
from netcron.db.models import Device, Webhook, WebhookDelivery
from netcron.events import EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, Event
from netcron.observability.metrics import (
    WEBHOOK_BACKLOG,
    WEBHOOK_DELIVERIES,
    WEBHOOK_DELIVERY_DURATION,
)
from netcron.retry import wait_for
from netcron.webhooks.matching import delivered_as, selects
from netcron.webhooks.signing import SIGNATURE_HEADER, signature
from netcron.webhooks.streams import (
    DELIVERY_WINDOW,
    FANOUT_CONFIG,
    FANOUT_CONSUMER,
    WEBHOOKS_STREAM,
    consumer_config,
    consumer_for,
    ensure_webhook_stream,
    subject_for,
)
from netcron.webhooks.targets import IpNetwork, TargetRefused, check_resolved, parse_networks

log = logging.getLogger(__name__)

#: How often a replica looks for webhooks created, changed or deleted on another one.
SYNC_INTERVAL = 2.0
#: How often a sender waiting to retry tells JetStream it still holds the delivery.
HEARTBEAT = 20.0
FETCH_TIMEOUT = 5.0
#: Attempts are kept this long in the delivery log.
LOG_RETENTION = timedelta(days=7)
PRUNE_INTERVAL = 3600.0
ERROR_LENGTH = 500
#: pg_try_advisory_lock key of the replica that fans out: "netwhk".
FANOUT_LOCK = 0x6E657477686B
#: How often the fanning replica makes sure its lock's connection is still there.
LEADER_CHECK = 1.0
#: Subjects of the events the api publishes when a webhook is created, changed or deleted.
WEBHOOK_EVENTS = f"{EVENTS_SUBJECT_PREFIX}.webhook."


def backoff(attempt: int, first: float, most: float) -> float:
    """Seconds before the attempt after ``attempt``: doubling from ``first``, at most ``most``."""
    return float(min(first * 2 ** min(attempt - 1, 30), most))


@dataclass(frozen=True)
class Subscriber:
    """A webhook as the fan-out sees it."""

    id: uuid.UUID
    event_types: list[str]
    selector: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    outcome: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


class WebhookDispatcher:
    """The fan-out and one sender per active webhook, until cancelled."""

    def __init__(
        self,
        nc: NatsClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        lock_sessionmaker: async_sessionmaker[AsyncSession],
        cipher: CredentialCipher,
        settings: Settings,
    ) -> None:
        """``lock_sessionmaker``: autocommit sessions (the fan-out lock's connection)."""
        self.nc = nc
        self.js = nc.jetstream()
        self.sessionmaker = sessionmaker
        self.lock_sessionmaker = lock_sessionmaker
        self.cipher = cipher
        self.settings = settings
        self._syncing = asyncio.Lock()
        self.networks: list[IpNetwork] = parse_networks(settings.webhook_network_list())
        self.subscribers: list[Subscriber] = []
        self.senders: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.http = httpx.AsyncClient(timeout=settings.webhook_timeout, follow_redirects=False)
        self._pruned = 0.0

    async def run(self) -> None:
        await wait_for("the webhooks stream", lambda: ensure_webhook_stream(self.js))
        await wait_for(
            "the webhooks fan-out consumer",
            lambda: self.js.add_consumer(EVENTS_STREAM, FANOUT_CONFIG),
        )
        fan_out = asyncio.create_task(self._fan_out_forever())
        try:
            while True:
                try:
                    await self.sync()
                except Exception as exc:
                    log.warning("webhooks not synced: %r", exc)
                await asyncio.sleep(SYNC_INTERVAL)
        finally:
            tasks = [fan_out, *self.senders.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.http.aclose()

    async def sync(self) -> None:
        """Follow the webhooks table: who the fan-out serves, which senders run."""
        async with self._syncing:
            await self._sync()

    async def _sync(self) -> None:
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Webhook.id, Webhook.event_types, Webhook.selector).where(
                        Webhook.is_active
                    )
                )
            ).all()
            if time.monotonic() - self._pruned > PRUNE_INTERVAL:
                await session.execute(
                    delete(WebhookDelivery).where(
                        WebhookDelivery.attempted_at < datetime.now(UTC) - LOG_RETENTION
                    )
                )
                await session.commit()
                self._pruned = time.monotonic()
        self.subscribers = [Subscriber(*row) for row in rows]
        active = {subscriber.id for subscriber in self.subscribers}
        for webhook_id in [i for i in self.senders if i not in active]:
            self.senders.pop(webhook_id).cancel()
        for webhook_id in active - set(self.senders):
            await self.js.add_consumer(WEBHOOKS_STREAM, consumer_config(webhook_id))
            task = asyncio.create_task(self._send_forever(webhook_id))
            self.senders[webhook_id] = task
            task.add_done_callback(functools.partial(self._sender_ended, webhook_id))
        pending = 0
        for webhook_id in active:
            with contextlib.suppress(NotFoundError):
                info = await self.js.consumer_info(WEBHOOKS_STREAM, consumer_for(webhook_id))
                pending += (info.num_pending or 0) + (info.num_ack_pending or 0)
        WEBHOOK_BACKLOG.set(pending)

    def _sender_ended(self, webhook_id: uuid.UUID, task: asyncio.Task[None]) -> None:
        if self.senders.get(webhook_id) is task:
            del self.senders[webhook_id]  # the next sync starts it again
        if not task.cancelled() and task.exception() is not None:
            log.warning("webhook sender stopped: %r", task.exception())

    # --- fan-out ---------------------------------------------------------------------

    async def _fan_out_forever(self) -> None:
        """Fan out while this replica holds the fan-out lock; try for it now and then.

        One replica at a time: it reads every event in order, so a ``webhook.*`` event it
        meets (published before the api answered the change) makes it read the webhooks
        before any later event. The lock is a PostgreSQL session lock on a connection
        kept for the purpose and thrown away after, so it goes with the replica.
        """
        while True:
            try:
                async with self.lock_sessionmaker() as lock:
                    try:
                        if await lock.scalar(select(func.pg_try_advisory_lock(FANOUT_LOCK))):
                            log.info("this api replica fans events out to webhooks")
                            await self._fan_out_while_leading(lock)
                    finally:
                        with contextlib.suppress(Exception):
                            await (await lock.connection()).invalidate()
            except Exception as exc:
                if self.nc.is_closed:
                    return  # the api is stopping
                log.warning("webhook fan-out interrupted: %r", exc)
            await asyncio.sleep(SYNC_INTERVAL)

    async def _fan_out_while_leading(self, lock: AsyncSession) -> None:
        subscription = await self.js.pull_subscribe_bind(
            durable=FANOUT_CONSUMER, stream=EVENTS_STREAM
        )
        try:
            await self.sync()  # the webhooks as they are now, before the first event
            checked = time.monotonic()
            while True:
                if time.monotonic() - checked > LEADER_CHECK:
                    await lock.execute(select(1))  # the lock lives as long as this connection
                    checked = time.monotonic()
                try:
                    messages = await subscription.fetch(1, timeout=FETCH_TIMEOUT)
                except TimeoutError:
                    continue
                for message in messages:
                    try:
                        await self._fan_out(message)
                    except Exception as exc:
                        # Copies already published are broker duplicates when it comes back.
                        log.warning("webhook fan-out failed, will retry: %r", exc)
                        with contextlib.suppress(Exception):
                            await message.nak(delay=1)
                        continue
                    await message.ack()
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _fan_out(self, message: Msg) -> None:
        if message.subject.startswith(WEBHOOK_EVENTS):
            await self.sync()  # whatever follows in the stream sees the change
            return
        if not self.subscribers:
            return  # nobody to tell: not even worth parsing
        try:
            event = Event.model_validate_json(message.data)
        except ValidationError:
            return
        event.id = message.metadata.sequence.stream
        # Device output stays home: a receiver is often a third party's service.
        event.data.pop("output", None)
        labels: dict[str, Any] | None = None
        labels_read = False
        for subscriber in self.subscribers:
            kind = delivered_as(event, subscriber.event_types)
            if kind is None:
                continue
            if subscriber.selector:
                if not labels_read:
                    labels, labels_read = await self._labels(event), True
                if not selects(subscriber.selector, labels):
                    continue
            copy = event if kind == event.type else event.model_copy(update={"type": kind})
            await self.js.publish(
                subject_for(subscriber.id),
                copy.model_dump_json().encode(),
                headers={"Nats-Msg-Id": f"{event.id}:{subscriber.id}"},
            )

    async def _labels(self, event: Event) -> dict[str, Any] | None:
        carried = event.data.get("labels")
        if isinstance(carried, dict):
            return carried
        if event.device_id is None:
            return None
        async with self.sessionmaker() as session:
            labels: dict[str, Any] | None = await session.scalar(
                select(Device.labels).where(Device.id == event.device_id)
            )
        return labels

    # --- delivery --------------------------------------------------------------------

    async def _send_forever(self, webhook_id: uuid.UUID) -> None:
        subscription = await self.js.pull_subscribe_bind(
            durable=consumer_for(webhook_id), stream=WEBHOOKS_STREAM
        )
        try:
            while True:
                try:
                    messages = await subscription.fetch(1, timeout=FETCH_TIMEOUT)
                except TimeoutError:
                    continue
                except Exception as exc:
                    if self.nc.is_closed:
                        return  # the api is stopping
                    log.warning("fetching deliveries failed: %r", exc)
                    await asyncio.sleep(1)
                    continue
                for message in messages:
                    await self._deliver(webhook_id, message)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _deliver(self, webhook_id: uuid.UUID, message: Msg) -> None:
        """Until the receiver takes it, the event expires, or the webhook goes."""
        try:
            event = Event.model_validate_json(message.data)
        except ValidationError:
            await message.term()
            return
        delivery = message.metadata.sequence.stream
        attempt = await self._attempts_so_far(webhook_id, delivery)
        while True:
            async with self.sessionmaker() as session:
                webhook = await session.get(Webhook, webhook_id)
            if webhook is None:
                await message.ack()  # deleted: nobody to deliver to
                return
            if not webhook.is_active:
                await message.nak(delay=SYNC_INTERVAL)  # kept for when it is resumed
                await asyncio.sleep(SYNC_INTERVAL)  # the next sync ends this sender
                return
            attempt += 1
            if datetime.now(UTC) - event.time > DELIVERY_WINDOW:
                result = Attempt("expired", error="the event is more than 24 hours old")
            else:
                result = await self._attempt(webhook, event, message.data, delivery, attempt)
            await self._log(webhook_id, event, delivery, attempt, result)
            if result.delivered:
                await message.ack()
                return
            if result.outcome in ("expired", "refused"):
                await message.term()
                return
            delay = backoff(
                attempt, self.settings.webhook_retry_min, self.settings.webhook_retry_max
            )
            await self._hold(message, delay)

    async def _attempt(
        self, webhook: Webhook, event: Event, body: bytes, delivery: int, attempt: int
    ) -> Attempt:
        secret = self.cipher.decrypt_bytes(webhook.secret.encode()).decode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"netcron-webhooks/{__version__}",
            SIGNATURE_HEADER: signature(secret, body, int(time.time())),
            "Netcron-Event-Type": event.type,
            "Netcron-Delivery": f"{webhook.id}:{delivery}",
            "Netcron-Attempt": str(attempt),
        }
        try:
            await check_resolved(webhook.url, self.networks)
        except TargetRefused as exc:
            return Attempt("refused", error=str(exc))
        started = time.perf_counter()
        try:
            response = await self.http.post(webhook.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]
            return Attempt("failed", error=error, duration_ms=_ms_since(started))
        duration = time.perf_counter() - started
        WEBHOOK_DELIVERY_DURATION.observe(duration)
        if 200 <= response.status_code < 300:
            return Attempt("delivered", response.status_code, duration_ms=duration * 1000)
        return Attempt(
            "failed",
            response.status_code,
            error=f"the receiver answered {response.status_code}",
            duration_ms=duration * 1000,
        )

    async def _hold(self, message: Msg, seconds: float) -> None:
        """Wait before the next attempt, keeping the delivery from being redelivered."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, HEARTBEAT))
            with contextlib.suppress(Exception):
                await message.in_progress()

    async def _attempts_so_far(self, webhook_id: uuid.UUID, delivery: int) -> int:
        """Attempts already logged (another replica may have held this delivery before)."""
        async with self.sessionmaker() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .where(WebhookDelivery.delivery == delivery)
            )
        return count or 0

    async def _log(
        self, webhook_id: uuid.UUID, event: Event, delivery: int, attempt: int, result: Attempt
    ) -> None:
        WEBHOOK_DELIVERIES.labels(result.outcome).inc()
        extra = {"webhook_id": str(webhook_id), "delivery": delivery, "attempt": attempt}
        if result.delivered:
            log.debug("webhook delivery %s", result.outcome, extra=extra)
        else:
            log.info("webhook delivery %s: %s", result.outcome, result.error, extra=extra)
        try:
            async with self.sessionmaker() as session:
                session.add(
                    WebhookDelivery(
                        webhook_id=webhook_id,
                        delivery=delivery,
                        event_id=event.id,
                        event_type=event.type,
                        attempt=attempt,
                        outcome=result.outcome,
                        status_code=result.status_code,
                        error=result.error,
                        duration_ms=result.duration_ms,
                    )
                )
                await session.commit()
        except Exception as exc:
            log.warning("webhook attempt not logged: %r", exc, extra=extra)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
