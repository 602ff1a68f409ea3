"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "A dependency is unreachable."}})
async def ready(request: Request) -> JSONResponse:
    """200 when PostgreSQL, Temporal and NATS are reachable; else 503 naming what is not."""
    state = request.app.state
    checks: dict[str, Any] = {}
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["temporal"] = "ok" if await state.orchestrator.ready() else "unreachable"
    nats = state.nats
    checks["nats"] = "ok" if nats is not None and nats.is_connected else "unreachable"
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )
