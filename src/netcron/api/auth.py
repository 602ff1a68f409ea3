"""API keys and scopes: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

``NETCRON_API_KEYS`` holds comma-separated entries, each a bare ``key`` (every scope) or
``name:key:scope+scope``. Scopes: ``read`` (GET), ``write`` (changes), ``results`` (the
worker recording runs), ``codec`` (decoding Temporal payloads for the Temporal UI and CLI).
Keys are compared in constant time and never logged.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from netcron.api.errors import DomainError
from netcron.apikeys import ApiKey, find_key


class Unauthenticated(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")


async def authenticate(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    return identify(request, api_key or (bearer.credentials if bearer else None))


def identify(request: Request, presented: str | None) -> ApiKey:
    """The configured key matching ``presented``; 401 when there is none."""
    if not presented:
        raise Unauthenticated("send an API key in X-API-Key or as Authorization: Bearer <key>")
    found = find_key(request.app.state.api_keys, presented)
    if found is None:
        raise Unauthenticated("the API key is not valid")
    request.state.api_key = found
    return found


def require_scope(key: ApiKey, scope: str) -> ApiKey:
    if scope not in key.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")
    return key


async def results_scope(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
    """The scope the worker records runs with."""
    if "results" not in key.scopes:
        raise Forbidden("this API key lacks the 'results' scope")
    return key


async def read_or_write(request: Request, key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
    """GET needs ``read``; every other method needs ``write``."""
    scope = "read" if request.method in ("GET", "HEAD") else "write"
    if scope not in key.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")
    return key
