"""Connecting to NATS, declaring the task/result streams and their durable consumers."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from pydantic import BaseModel

from netcron.messages import (
    EXECUTORS_CONSUMER,
    FIRE_RESULTS_STREAM,
    FIRE_RESULTS_SUBJECT_PREFIX,
    RELAY_CONSUMER,
    RESULTS_STREAM,
    RESULTS_SUBJECT_PREFIX,
    TASKS_STREAM,
    TASKS_SUBJECT_PREFIX,
)
from netcron.observability.tracing import inject
from netcron.retry import wait_for

log = logging.getLogger(__name__)

#: Seconds in which a re-published message with the same Nats-Msg-Id is dropped.
DUPLICATE_WINDOW = 300.0
#: How long an executor may hold a task before JetStream redelivers it; executors
#: call ``in_progress()`` while a long command runs, so this only bounds a crash.
TASK_ACK_WAIT = 60.0
TASK_MAX_DELIVER = 5
RESULT_ACK_WAIT = 30.0
RESULT_MAX_DELIVER = 50


#: A job run's result waits this long at most for its fire's dispatcher.
FIRE_RESULTS_MAX_AGE = 86_400.0


def _stream(name: str, prefix: str, max_age: float | None = None) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{prefix}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW,
        max_age=max_age,
    )


STREAMS = (
    _stream(TASKS_STREAM, TASKS_SUBJECT_PREFIX),
    _stream(RESULTS_STREAM, RESULTS_SUBJECT_PREFIX),
    # One subject per fire, each read by its fire's own consumer (``workflows/fire.py``).
    _stream(FIRE_RESULTS_STREAM, FIRE_RESULTS_SUBJECT_PREFIX, FIRE_RESULTS_MAX_AGE),
)

CONSUMERS = {
    TASKS_STREAM: ConsumerConfig(
        durable_name=EXECUTORS_CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=TASK_ACK_WAIT,
        max_deliver=TASK_MAX_DELIVER,
        max_ack_pending=10_000,
    ),
    RESULTS_STREAM: ConsumerConfig(
        durable_name=RELAY_CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=RESULT_ACK_WAIT,
        max_deliver=RESULT_MAX_DELIVER,
        max_ack_pending=10_000,
    ),
}


async def connect_nats(url: str, name: str, timeout: float = 0) -> NatsClient:
    """Connect (retried until NATS answers); reconnects forever once connected."""

    async def quiet(exc: Exception) -> None:
        log.debug("nats: %s", exc)

    async def attempt() -> NatsClient:
        return await nats.connect(
            error_cb=quiet,
            servers=[server.strip() for server in url.split(",")],
            name=name,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )

    return await wait_for(f"NATS at {url}", attempt, timeout=timeout)


async def ensure_streams(js: JetStreamContext) -> None:
    """Declare the streams and the shared durable consumers; safe from every replica."""
    for config in STREAMS:
        assert config.name is not None
        try:
            await js.stream_info(config.name)
            await js.update_stream(config)
        except NotFoundError:
            await js.add_stream(config)
            log.info("created stream %s", config.name)
    for stream, consumer in CONSUMERS.items():
        await js.add_consumer(stream, consumer)


async def publish(js: JetStreamContext, subject: str, message: BaseModel, msg_id: str) -> bool:
    """Publish with ``Nats-Msg-Id`` (and ``traceparent`` when tracing); False for a duplicate."""
    headers = inject({"Nats-Msg-Id": msg_id})
    ack = await js.publish(subject, message.model_dump_json().encode(), headers=dict(headers))
    return not ack.duplicate
