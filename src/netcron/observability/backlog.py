"""Broker backlogs for the worker's metrics: sampled on a timer, never per run.

Each sample is two consumer-info requests to JetStream, every few seconds, whatever the
load; several worker replicas report the same numbers (dashboards take the max).
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from netcron.messages import EXECUTORS_CONSUMER, RELAY_CONSUMER, RESULTS_STREAM, TASKS_STREAM
from netcron.observability.metrics import (
    EXECUTOR_PULLS_WAITING,
    RESULTS_PENDING,
    TASKS_PENDING,
)

log = logging.getLogger(__name__)

SAMPLE_INTERVAL = 5.0


async def sample_backlog(js: JetStreamContext) -> None:
    """One sample of the executors' and the relay's consumers."""
    tasks = await js.consumer_info(TASKS_STREAM, EXECUTORS_CONSUMER)
    TASKS_PENDING.set(tasks.num_pending or 0)
    EXECUTOR_PULLS_WAITING.set(tasks.num_waiting or 0)
    results = await js.consumer_info(RESULTS_STREAM, RELAY_CONSUMER)
    RESULTS_PENDING.set((results.num_pending or 0) + (results.num_ack_pending or 0))


async def sample_backlog_forever(js: JetStreamContext, interval: float = SAMPLE_INTERVAL) -> None:
    """Until cancelled; a failed sample keeps the last numbers and is logged at DEBUG."""
    while True:
        try:
            await sample_backlog(js)
        except Exception as exc:
            log.debug("broker backlog not sampled: %r", exc)
        await asyncio.sleep(interval)
