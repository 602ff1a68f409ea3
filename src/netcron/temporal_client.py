"""Connecting to Temporal the same way from the api and the worker."""

from __future__ import annotations

from temporalio.client import Client

from netcron.codec import data_converter
from netcron.config import Settings
from netcron.observability.tracing import temporal_interceptors
from netcron.retry import wait_for


async def connect_temporal(settings: Settings) -> Client:
    """A client with the pydantic converter and encrypted payloads, retried until it answers."""

    async def attempt() -> Client:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings.secret_key),
            interceptors=temporal_interceptors(),
        )

    return await wait_for(
        f"Temporal at {settings.temporal_address}", attempt, timeout=settings.connect_timeout
    )
