"""A crash of the executor or the worker loses no run and doubles none.

Runs in flight on a killed executor end `timed_out` after their TTL; fires while the
worker is down are caught up (the latest) or recorded `skipped` (the rest); a replayed
publish is dropped by the broker's dedup window. Every scheduled second ends up with
exactly one row.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from netcron.dev import DevStack

from .test_lifecycle import _create, _path, _runs
from .test_pipeline import eventually

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

FINAL = {"succeeded", "failed", "timed_out", "skipped", "canceled"}


async def test_killing_the_executor_and_the_worker_loses_and_doubles_no_run(
    api: httpx.AsyncClient, stack: DevStack
) -> None:
    schedule = await _create(api, "* * * * * *")
    await api.patch(_path(schedule), json={"ttl_seconds": 5})

    async def three_succeeded() -> bool:
        return len(await _runs(api, schedule, status="succeeded")) >= 3

    await eventually(three_succeeded)
    stack.kill("executor")
    await asyncio.sleep(2)
    stack.restart("executor")
    await asyncio.sleep(2)
    stack.kill("worker")
    await asyncio.sleep(2)
    stack.restart("worker")

    restarted = datetime.now(UTC)

    async def recovered() -> bool:
        runs = await _runs(api, schedule, status="succeeded")
        return any(datetime.fromisoformat(r["scheduled_at"]) > restarted for r in runs)

    await eventually(recovered, timeout=60)
    assert (await api.patch(_path(schedule), json={"is_active": False})).status_code == 200

    async def all_final() -> list[dict[str, Any]] | None:
        runs = await _runs(api, schedule)
        return runs if all(r["status"] in FINAL for r in runs) else None

    runs = await eventually(all_final, timeout=30)
    seconds = sorted(int(datetime.fromisoformat(r["scheduled_at"]).timestamp()) for r in runs)
    assert len(seconds) == len(set(seconds)), "a scheduled second has two rows"
    missing = sorted(set(range(seconds[0], seconds[-1] + 1)) - set(seconds))
    assert missing == [], f"fires with no row: {missing}"
    counts = Counter(r["status"] for r in runs)
    print(f"rows after the crashes: {dict(counts)}")
    assert counts["succeeded"] >= 4
