"""The FastAPI application: routers, error handlers and the clients it owns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from netcron import __version__
from netcron.api import (
    checks,
    codec,
    commands,
    devices,
    events,
    fires,
    health,
    history,
    jobs,
    results,
    schedules,
    telemetry,
    webhooks,
)
from netcron.api.codec import CodecCors
from netcron.api.docs import install_docs
from netcron.api.errors import document_problems, install_error_handlers
from netcron.api.limits import BodyLimit
from netcron.api.orchestrator import Orchestrator, TemporalOrchestrator
from netcron.api.reconcile import reconcile_forever
from netcron.api.telemetry import RequestTelemetry
from netcron.apikeys import parse_api_keys
from netcron.broker.jetstream import connect_nats
from netcron.config import Settings, get_settings
from netcron.crypto import CredentialCipher
from netcron.db.session import create_engine, create_read_sessionmaker, create_sessionmaker
from netcron.history.retention import retain_forever
from netcron.logging import setup_logging
from netcron.observability.tracing import setup_tracing
from netcron.retry import wait_for
from netcron.shutdown import absorb_stop_signals
from netcron.ui import mount_console
from netcron.webhooks.delivery import WebhookDispatcher

log = logging.getLogger(__name__)

#: How long a stopping api waits for its background tasks (NATS, webhooks, reconciliation).
STOP_TIMEOUT = 3.0


def create_app(
    settings: Settings, orchestrator: Orchestrator | None = None, *, reconcile: bool = True
) -> FastAPI:
    """The api; pass ``orchestrator`` to replace Temporal (tests about HTTP behaviour)."""
    cipher = CredentialCipher(settings.secret_key)
    api_keys = parse_api_keys(settings.api_keys)
    if not api_keys:
        log.warning("NETCRON_API_KEYS is empty: every request but /health and /ready is refused")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.cipher = cipher
        app.state.api_keys = api_keys
        app.state.engine = create_engine(settings.database_url)
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
        app.state.read_sessionmaker = create_read_sessionmaker(app.state.engine)
        app.state.orchestrator = orchestrator or await TemporalOrchestrator.connect(settings)
        app.state.nats = None
        app.state.nats_connected = asyncio.Event()
        background = [
            asyncio.create_task(_connect_nats(app, settings)),
            asyncio.create_task(_deliver_webhooks(app, settings)),
        ]
        if reconcile:
            background.append(asyncio.create_task(_reconcile(app, settings)))
            background.append(asyncio.create_task(_retention(app, settings)))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            # Bounded: a task stuck in a driver's cancellation must not hold the stop.
            await asyncio.wait(background, timeout=STOP_TIMEOUT)
            if app.state.nats is not None:
                await app.state.nats.close()
            await app.state.orchestrator.close()
            await app.state.engine.dispose()

    app = FastAPI(
        title="netcron",
        version=__version__,
        description="Run commands on network devices on cron schedules.",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    document_problems(app)
    # A run's output may be output_max_bytes, and JSON escaping can double it; its parsed
    # records may be output_max_bytes more.
    app.add_middleware(BodyLimit, limit=3 * settings.output_max_bytes + 65_536)
    app.add_middleware(CodecCors, origins=settings.codec_origin_list())
    app.add_middleware(RequestTelemetry)
    for module in (
        health,
        telemetry,
        devices,
        checks,
        commands,
        schedules,
        jobs,
        fires,
        results,
        history,
        events,
        webhooks,
        codec,
    ):
        app.include_router(module.router)
    app.include_router(fires.internal)
    mount_console(app)
    return app


async def _connect_nats(app: FastAPI, settings: Settings) -> None:
    """In the background: the api serves while NATS is down, and /ready says so."""
    with contextlib.suppress(asyncio.CancelledError):
        nc = await connect_nats(settings.nats_url, "netcron-api")
        await wait_for("the events stream", lambda: events.ensure_events_stream(nc))
        app.state.nats = nc
        app.state.nats_connected.set()


async def _deliver_webhooks(app: FastAPI, settings: Settings) -> None:
    """Once NATS is connected; see ``netcron.webhooks.delivery`` for why in the api."""
    with contextlib.suppress(asyncio.CancelledError):
        await app.state.nats_connected.wait()
        dispatcher = WebhookDispatcher(
            app.state.nats,
            app.state.sessionmaker,
            app.state.read_sessionmaker,
            app.state.cipher,
            settings,
        )
        await dispatcher.run()


async def _reconcile(app: FastAPI, settings: Settings) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await reconcile_forever(
            app.state.sessionmaker, app.state.orchestrator, settings.reconcile_interval
        )


async def _retention(app: FastAPI, settings: Settings) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await retain_forever(app.state.sessionmaker, settings)


def app_from_environment() -> FastAPI:
    """The app of one api worker process (``NETCRON_API_WORKERS`` > 1): settings from env."""
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format, service="api")
    setup_tracing(settings, "api")
    return create_app(settings)


def run_api(settings: Settings) -> None:
    """Serve the api; with several workers, uvicorn forks one process per worker.

    One process serves on one core: a burst of run records at the top of a second kept
    reads waiting behind it (GET p99 160 ms at 200 requests/s beside 20 runs/s).
    """
    options: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
    }
    # Installed before uvicorn captures the signals: it restores these, then re-sends.
    absorb_stop_signals()
    if settings.api_workers > 1:
        uvicorn.run(
            "netcron.api.app:app_from_environment",
            factory=True,
            workers=settings.api_workers,
            **options,
        )
    else:
        uvicorn.run(create_app(settings), **options)
