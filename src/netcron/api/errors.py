"""Domain errors and their one translation into RFC 9457 problem documents."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class DomainError(Exception):
    """An error a client can act on; ``status`` and ``title`` shape the problem document."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status = 404
    title = "Not found"

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} does not exist")


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class ServiceUnavailable(DomainError):
    status = 503
    title = "Service unavailable"


class FieldInvalid(DomainError):
    """A value that passed the schema but not a rule that needs the database (422)."""

    status = 422
    title = "Validation failed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document, the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


def document_problems(app: FastAPI) -> None:
    """Say in the OpenAPI schema that errors are problem documents (422 and any other)."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(components["Problem"].pop("$defs", {}))
        content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for item in document.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "Validation failed", "content": content}
                responses["default"] = {
                    "description": "An error (problem document)",
                    "content": content,
                }
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = document
        return document

    app.openapi = schema  # type: ignore[method-assign]


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field(loc: tuple[Any, ...]) -> str:
    """``ignore_lines[1]``, ``params.ifname``: where in the request the error is."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _is_nul_refused(exc: DBAPIError) -> bool:
    """PostgreSQL refusing a NUL in text (0x00) or in JSON (\\u0000): the client's input."""
    message = str(exc.orig)
    return "0x00" in message or "unsupported Unicode escape sequence" in message


#: SQLSTATEs that mean a concurrent change won the race: an ordinary outcome for the
#: client (the thing it named is gone, or changed under it), never a server error.
RACES = {
    "23503": (404, "Not found", "something this request refers to was deleted meanwhile"),
    "23505": (409, "Conflict", "a concurrent request created the same thing"),
    "40001": (409, "Conflict", "a concurrent change conflicted with this one; retry"),
    "40P01": (409, "Conflict", "a concurrent change conflicted with this one; retry"),
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if isinstance(exc, FieldInvalid):
            extra["errors"] = [{"field": exc.field, "message": exc.message}]
        return problem(exc.status, exc.title, exc.detail, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e["loc"])), "message": _message(e)} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "Validation failed", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return problem(exc.status_code, detail, detail)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if _is_nul_refused(exc):
            detail = "a text value holds a NUL character, which cannot be stored"
            errors = [{"field": "body", "message": detail}]
            return problem(422, "Validation failed", detail, errors=errors)
        race = RACES.get(getattr(exc.orig, "sqlstate", None) or "")
        if race is not None:
            log.info(
                "%s %s lost a race (%s): %s",
                request.method,
                request.url.path,
                race[0],
                str(exc.orig).splitlines()[0],
            )
            return problem(*race)
        return await unexpected(request, exc)

    @app.exception_handler(StaleDataError)
    @app.exception_handler(ObjectDeletedError)
    async def deleted_meanwhile(request: Request, exc: Exception) -> JSONResponse:
        log.info("%s %s lost a race (404): %s", request.method, request.url.path, exc)
        return problem(404, "Not found", RACES["23503"][2])

    @app.exception_handler(InvalidRequestError)
    async def refresh_failed(request: Request, exc: InvalidRequestError) -> JSONResponse:
        if str(exc).startswith("Could not refresh instance"):
            return await deleted_meanwhile(request, exc)  # gone between commit and reply
        return await unexpected(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500, "Internal server error", "an unexpected error occurred; see the api log"
        )
