"""Console routes answer in HTML, errors included: a 404 or 422 is a page, not JSON."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from netcron.api.errors import DomainError
from netcron.ui.render import page
from netcron.ui.session import ConsoleForbidden, SignInRequired, current_user


async def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return page(
        request,
        "error.html",
        await current_user(request),
        status_code=status,
        title=title,
        detail=detail,
    )


class ConsoleRoute(APIRoute):
    """An APIRoute whose client errors render the console's error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.method in ("GET", "HEAD"):
                    target = "/ui/login?next=" + quote(request.url.path, safe="/")
                    return RedirectResponse(target, status_code=303)
                return await error_page(request, 403, "Sign in first", "this session has ended")
            except ConsoleForbidden as exc:
                return await error_page(request, 403, "Forbidden", exc.detail)
            except DomainError as exc:
                return await error_page(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
                    for e in exc.errors()
                )
                return await error_page(request, 422, "Invalid request", detail)

        return route
