"""The codec server: Temporal's UI and CLI send payloads here to see them decoded.

Temporal's codec-server protocol: ``POST /codec/decode`` and ``POST /codec/encode`` take
and return ``{"payloads": [...]}``, each payload in proto3 JSON (``metadata`` values and
``data`` base64). The Temporal server keeps storing ciphertext; only a holder of an API
key with the ``codec`` scope reads the plain payloads. The key comes in ``X-API-Key``,
as ``Authorization: Bearer`` (``temporal --codec-auth``), or, for the Temporal UI, in a
cookie set by signing in at ``GET /codec`` and sent with the UI's "Include cross-origin
credentials". Browsers reach it across origins through :class:`CodecCors`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, field_validator
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload

from netcron.api.auth import identify, require_scope
from netcron.api.errors import FieldInvalid
from netcron.apikeys import ApiKey
from netcron.codec import EncryptionCodec
from netcron.crypto import CredentialCipher, CredentialsUnreadable

PREFIX = "/codec"
#: The cookie a browser holds after signing in at ``GET /codec`` (path-bound to /codec).
COOKIE = "netcron_codec"
COOKIE_MAX_AGE = 8 * 3600
MAX_PAYLOADS = 10_000

router = APIRouter(prefix=PREFIX, tags=["codec"])

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")


def _base64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


class JsonPayload(BaseModel):
    """One Temporal payload in proto3 JSON: bytes fields are base64."""

    metadata: dict[Annotated[str, Field(max_length=256)], str] = Field(
        default_factory=dict, max_length=64
    )
    data: str = ""

    @field_validator("metadata")
    @classmethod
    def _metadata_base64(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            try:
                _base64(item)
            except ValueError:
                raise ValueError(f"metadata value {key!r} is not base64") from None
        return value

    @field_validator("data")
    @classmethod
    def _data_base64(cls, value: str) -> str:
        _base64(value)
        return value

    def to_proto(self) -> Payload:
        return Payload(
            metadata={key: _base64(value) for key, value in self.metadata.items()},
            data=_base64(self.data),
        )

    @classmethod
    def from_proto(cls, payload: Payload) -> JsonPayload:
        return cls(
            metadata={
                key: base64.b64encode(value).decode() for key, value in payload.metadata.items()
            },
            data=base64.b64encode(payload.data).decode(),
        )


class Payloads(BaseModel):
    """The body of both codec endpoints, in and out."""

    payloads: list[JsonPayload] = Field(max_length=MAX_PAYLOADS)


async def codec_scope(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """A key with the ``codec`` scope: from a header, else from the sign-in cookie."""
    presented = api_key or (bearer.credentials if bearer else None) or request.cookies.get(COOKIE)
    return require_scope(identify(request, presented), "codec")


CodecKey = Annotated[ApiKey, Depends(codec_scope)]


def _codec(request: Request) -> EncryptionCodec:
    cipher: CredentialCipher = request.app.state.cipher
    return EncryptionCodec(cipher)


@router.post("/decode", response_model=Payloads)
async def decode(body: Payloads, request: Request, key: CodecKey) -> Payloads:
    """Decrypt payloads stored by the worker (what the Temporal UI shows)."""
    protos = [payload.to_proto() for payload in body.payloads]
    try:
        decoded = await _codec(request).decode(protos)
    except CredentialsUnreadable:
        raise FieldInvalid(
            "payloads", "a payload does not open with this api's NETCRON_SECRET_KEY"
        ) from None
    return Payloads(payloads=[JsonPayload.from_proto(payload) for payload in decoded])


@router.post("/encode", response_model=Payloads)
async def encode(body: Payloads, request: Request, key: CodecKey) -> Payloads:
    """Encrypt payloads as the worker would (inputs typed into the Temporal UI or CLI)."""
    encoded = await _codec(request).encode([payload.to_proto() for payload in body.payloads])
    return Payloads(payloads=[JsonPayload.from_proto(payload) for payload in encoded])


_SIGN_IN = """<!doctype html>
<html><head><meta charset="utf-8"><title>netcron codec sign-in</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Decoded payloads in the Temporal UI</h1>
<p>{message}</p>
<form method="post" action="{prefix}/session">
<label>API key with the <code>codec</code> scope
<input type="password" name="api_key" autocomplete="off" required></label>
<button type="submit">Sign in</button>
</form>
<p>Then, in the Temporal UI's Codec Server settings, turn on
<em>Include cross-origin credentials</em>.</p>
</body></html>
"""


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def sign_in_page() -> HTMLResponse:
    """A form that keeps the key in an HttpOnly cookie for the Temporal UI's requests."""
    message = "Sign in once; this browser then sends the key with the UI's decode requests."
    return HTMLResponse(_SIGN_IN.format(message=message, prefix=PREFIX))


@router.post("/session", response_class=HTMLResponse, include_in_schema=False)
async def sign_in(request: Request) -> HTMLResponse:
    form = parse_qs((await request.body()).decode(errors="replace"))
    presented = (form.get("api_key") or [""])[0].strip()
    require_scope(identify(request, presented), "codec")
    response = HTMLResponse(
        _SIGN_IN.format(message="Signed in: the Temporal UI can decode payloads.", prefix=PREFIX)
    )
    response.set_cookie(
        COOKIE,
        presented,
        max_age=COOKIE_MAX_AGE,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


class CodecCors:
    """CORS for the codec paths only, for the browser origins of the Temporal UI.

    Credentials are allowed (the sign-in cookie), so origins are listed, never ``*``.
    """

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=["Content-Type", "X-Namespace", "Authorization", "X-API-Key"],
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
