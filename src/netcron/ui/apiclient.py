"""The console's way into the api's own endpoints: in-process, as the signed-in key."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request

from netcron.ui.session import ConsoleUser


async def call_api(
    request: Request, user: ConsoleUser, method: str, path: str, body: Any = None
) -> httpx.Response:
    """One request to this same api through its ASGI interface (no socket, no second hop)."""
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://console.internal", timeout=60
    ) as client:
        return await client.request(method, path, json=body, headers={"X-API-Key": user.key.key})
