"""Every Prometheus metric netcron exports, one registry per service.

Each service serves its own registry (the api on ``/metrics``, the worker and the
executor on ``NETCRON_METRICS_PORT``), so a scrape shows only what that service measures:
a gauge the executor owns never reads 0 on the api. Names follow Prometheus' rules (base
units, ``_seconds``, ``_total``); no label holds a run, device or schedule id, so the
number of series stays fixed however many devices there are.

Updating a metric costs a lock-free increment or a bucket search: cheap enough for the
record path and the executor's loop. Numbers that need a round trip (broker backlogs)
are sampled on a timer by :class:`netcron.observability.backlog.BacklogSampler`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger(__name__)

#: Seconds-level lags and durations: 5 ms to 5 min, with 5 s (the fire-lag alert) a bound.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: A command on a device: from a tenth of a second to the longest timeouts.
COMMAND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: An HTTP request to the api: milliseconds, with a tail to seconds.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


API = _registry()
WORKER = _registry()
EXECUTOR = _registry()

# --- api -------------------------------------------------------------------------------

HTTP_REQUEST_DURATION = Histogram(
    "netcron_http_request_duration_seconds",
    "Time the api took to answer a request, by route template and status code.",
    ["method", "route", "status"],
    buckets=REQUEST_BUCKETS,
    registry=API,
)
RUNS_RECORDED = Counter(
    "netcron_runs_recorded_total",
    "Runs the api recorded as ended, by final status and error kind (skipped runs included).",
    ["status", "error_kind"],
    registry=API,
)
RECONCILE_REPAIRS = Counter(
    "netcron_reconcile_repairs_total",
    "Schedule workflows reconciliation repaired, by repair (started, updated, stopped).",
    ["repair"],
    registry=API,
)
EVENT_CLIENTS = Gauge(
    "netcron_event_stream_clients",
    "Clients connected to the event stream (SSE and WebSocket).",
    registry=API,
)
WEBHOOK_DELIVERIES = Counter(
    "netcron_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome (delivered, failed, expired, refused).",
    ["outcome"],
    registry=API,
)
WEBHOOK_DELIVERY_DURATION = Histogram(
    "netcron_webhook_delivery_duration_seconds",
    "Time a webhook receiver took to answer one attempt.",
    buckets=REQUEST_BUCKETS,
    registry=API,
)
WEBHOOK_BACKLOG = Gauge(
    "netcron_webhook_pending_deliveries",
    "Webhook deliveries not yet acknowledged by their receiver, over all webhooks.",
    registry=API,
)

# --- worker ----------------------------------------------------------------------------

FIRE_LAG = Histogram(
    "netcron_fire_lag_seconds",
    "How late a run's task was published after its scheduled time (0 when early).",
    buckets=LAG_BUCKETS,
    registry=WORKER,
)
END_TO_END = Histogram(
    "netcron_run_end_to_end_seconds",
    "From a run's scheduled time until its final status was recorded.",
    buckets=COMMAND_BUCKETS,
    registry=WORKER,
)
TASKS_PENDING = Gauge(
    "netcron_tasks_pending",
    "Tasks on the broker that no executor has taken yet (the executors consumer's pending).",
    registry=WORKER,
)
EXECUTOR_PULLS_WAITING = Gauge(
    "netcron_executor_pull_requests",
    "Pull requests executors have waiting on the broker; 0 means no executor is polling.",
    registry=WORKER,
)
RESULTS_PENDING = Gauge(
    "netcron_results_pending",
    "Results waiting in the relay: on the broker, or delivered and not yet acked.",
    registry=WORKER,
)

# --- executor --------------------------------------------------------------------------

RUNS = Counter(
    "netcron_runs_total",
    "Run attempts executors finished, by status, platform and error kind.",
    ["status", "platform", "error_kind"],
    registry=EXECUTOR,
)
START_LAG = Histogram(
    "netcron_start_lag_seconds",
    "How late a command started after its scheduled time (first attempts).",
    buckets=LAG_BUCKETS,
    registry=EXECUTOR,
)
COMMAND_DURATION = Histogram(
    "netcron_command_duration_seconds",
    "Time a command took on the device, session included, by platform and status.",
    ["platform", "status"],
    buckets=COMMAND_BUCKETS,
    registry=EXECUTOR,
)
EXECUTOR_SLOTS_IN_USE = Gauge(
    "netcron_executor_slots_in_use",
    "Tasks this executor is running now.",
    registry=EXECUTOR,
)
EXECUTOR_SLOTS = Gauge(
    "netcron_executor_slots",
    "Tasks this executor may run at once (NETCRON_EXECUTOR_CONCURRENCY).",
    registry=EXECUTOR,
)
SSH_CONNECT = Histogram(
    "netcron_ssh_connect_seconds",
    "Time to open an SSH session (TCP, key exchange, login, prompt), by platform.",
    ["platform"],
    buckets=LAG_BUCKETS,
    registry=EXECUTOR,
)
SSH_FAILURES = Counter(
    "netcron_ssh_connect_failures_total",
    "SSH sessions that could not be opened, by error kind.",
    ["kind"],
    registry=EXECUTOR,
)


def lag_seconds(since: datetime, now: datetime) -> float:
    """Seconds from ``since`` to ``now``, never negative (a task published early has 0)."""
    return max((now - since).total_seconds(), 0.0)


@contextlib.contextmanager
def slot_in_use() -> Iterator[None]:
    EXECUTOR_SLOTS_IN_USE.inc()
    try:
        yield
    finally:
        EXECUTOR_SLOTS_IN_USE.dec()


def serve_metrics(
    registry: CollectorRegistry, port: int, service: str, host: str = "0.0.0.0"
) -> WSGIServer | None:
    """Serve ``registry`` on ``port`` from a thread; None (off) when the port is 0."""
    if not port:
        return None
    server, _ = start_http_server(port, host, registry=registry)
    log.info("%s metrics on http://%s:%d/metrics", service, host, port)
    return server
