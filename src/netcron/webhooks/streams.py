"""The broker side of webhooks: the stream of pending deliveries and its consumers.

``NETCRON_WEBHOOKS`` holds one subject per webhook, ``netcron.webhooks.<webhook_id>``,
each read by its own durable consumer that lets one delivery be in flight; the fan-out
reads NETCRON_EVENTS through the durable consumer ``webhooks-fanout``. See
:mod:`netcron.webhooks.delivery` for how they are used.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

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

WEBHOOKS_STREAM = "NETCRON_WEBHOOKS"
WEBHOOKS_SUBJECT_PREFIX = "netcron.webhooks"
FANOUT_CONSUMER = "webhooks-fanout"
#: A delivery is retried until its event is this old, then recorded ``expired``.
DELIVERY_WINDOW = timedelta(hours=24)
ACK_WAIT = 60.0

STREAM_CONFIG = StreamConfig(
    name=WEBHOOKS_STREAM,
    subjects=[f"{WEBHOOKS_SUBJECT_PREFIX}.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    # a backstop: senders give up on their own at DELIVERY_WINDOW
    max_age=DELIVERY_WINDOW.total_seconds() + 3600,
    duplicate_window=300,
)
FANOUT_CONFIG = ConsumerConfig(
    durable_name=FANOUT_CONSUMER,
    ack_policy=AckPolicy.EXPLICIT,
    deliver_policy=DeliverPolicy.NEW,
    ack_wait=30,
    max_deliver=-1,
    max_ack_pending=1,
)


def subject_for(webhook_id: uuid.UUID) -> str:
    return f"{WEBHOOKS_SUBJECT_PREFIX}.{webhook_id}"


def consumer_for(webhook_id: uuid.UUID) -> str:
    return f"webhook-{webhook_id}"


def consumer_config(webhook_id: uuid.UUID) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=consumer_for(webhook_id),
        filter_subject=subject_for(webhook_id),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ACK_WAIT,
        max_deliver=-1,
        max_ack_pending=1,
    )


async def ensure_webhook_stream(js: JetStreamContext) -> None:
    try:
        await js.stream_info(WEBHOOKS_STREAM)
        await js.update_stream(STREAM_CONFIG)
    except NotFoundError:
        await js.add_stream(STREAM_CONFIG)


async def forget_webhook(js: JetStreamContext, webhook_id: uuid.UUID) -> None:
    """After a delete: its consumer and its undelivered events go (best effort)."""
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(WEBHOOKS_STREAM, consumer_for(webhook_id))
    with contextlib.suppress(NotFoundError):
        await js.purge_stream(WEBHOOKS_STREAM, subject=subject_for(webhook_id))
