"""The web console at ``/ui``: server-rendered pages over the api's own data and endpoints."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount_console(app: FastAPI) -> None:
    """Add the console's routes and static files to the api."""
    from netcron.ui import actions, live, pages

    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(live.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
