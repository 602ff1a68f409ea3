"""Per-device session limit across every executor: leases in a JetStream key-value bucket.

A device with ``session_limit`` N has N slots, keys ``<device_id>.<slot>``. A run takes
a free slot with an atomic ``create`` (it fails when the key holds a live lease), keeps
it fresh while the session lasts, and deletes it at the end. The bucket's TTL removes
the lease of an executor that died holding one, so a crash blocks a device for at most
``LEASE_TTL`` seconds. A run that finds every slot taken tries again every
``RETRY_INTERVAL`` seconds until its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

SESSIONS_BUCKET = "NETCRON_SESSIONS"
#: A lease not refreshed for this long is gone (the executor holding it died).
LEASE_TTL = 30.0
REFRESH_INTERVAL = LEASE_TTL / 3
RETRY_INTERVAL = 0.2


class NoSessionInTime(Exception):
    """Every session to the device stayed taken until the run's deadline."""


async def open_sessions_bucket(js: JetStreamContext) -> KeyValue:
    try:
        return await js.key_value(SESSIONS_BUCKET)
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=SESSIONS_BUCKET,
            history=1,
            ttl=LEASE_TTL,
            storage=StorageType.MEMORY,
            description="netcron: per-device SSH session leases",
        )
        return await js.create_key_value(config)


class SessionLeases:
    """Takes and gives back per-device session slots for one executor."""

    def __init__(self, kv: KeyValue, holder: str) -> None:
        self.kv = kv
        self.holder = holder

    @contextlib.asynccontextmanager
    async def hold(
        self, device_id: UUID, limit: int, deadline: datetime, run_id: str
    ) -> AsyncIterator[None]:
        """Inside, this run holds one of the device's ``limit`` sessions."""
        lease = await self._take(device_id, limit, deadline, run_id)
        refresh = asyncio.create_task(self._refresh(lease))
        try:
            yield
        finally:
            refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresh
            try:
                await self.kv.delete(lease.key, last=lease.revision)
            except Exception as exc:
                log.warning("session lease %s not given back: %r", lease.key, exc)

    async def _take(self, device_id: UUID, limit: int, deadline: datetime, run_id: str) -> _Lease:
        value = f"{self.holder} {run_id}".encode()
        waited = False
        while True:
            for slot in random.sample(range(limit), limit):
                key = f"{device_id}.{slot}"
                try:
                    revision = await self.kv.create(key, value)
                except KeyWrongLastSequenceError:
                    continue
                if waited:
                    log.info("run got a session to device %s", device_id, extra={"run_id": run_id})
                return _Lease(key, value, revision)
            if not waited:
                waited = True
                log.info(
                    "run waits: all %d session(s) to device %s are in use",
                    limit,
                    device_id,
                    extra={"run_id": run_id},
                )
            left = (deadline - datetime.now(UTC)).total_seconds()
            if left <= 0:
                raise NoSessionInTime(
                    f"no free session to the device (limit {limit}) before the deadline"
                )
            await asyncio.sleep(min(left, RETRY_INTERVAL * random.uniform(0.5, 1.5)))

    async def _refresh(self, lease: _Lease) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                lease.revision = await self.kv.update(lease.key, lease.value, last=lease.revision)
            except Exception as exc:
                log.warning("session lease %s not refreshed: %r", lease.key, exc)


@dataclass
class _Lease:
    key: str
    value: bytes
    revision: int
