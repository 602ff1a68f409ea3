"""The codec endpoint: what the worker's codec encrypts, a `codec` key reads in plain."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from temporalio.api.common.v1 import Payload

from netcron.codec import ENCODING, data_converter

from .conftest import ADMIN_KEY, CODEC_KEY, UI_ORIGIN


def _json(payload: Payload) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


async def _encrypted(secret_key: str, value: object) -> list[dict[str, Any]]:
    """Payloads exactly as the worker hands them to Temporal."""
    payloads = await data_converter(secret_key).encode([value])
    assert payloads[0].metadata["encoding"] == ENCODING
    return [_json(payload) for payload in payloads]


async def test_decode_opens_what_the_worker_encrypted(
    client: httpx.AsyncClient, secret_key: str
) -> None:
    value = {"schedule_id": "s-1", "command": "show version"}
    response = await client.post(
        "/codec/decode",
        json={"payloads": await _encrypted(secret_key, value)},
        headers={"X-API-Key": CODEC_KEY, "X-Namespace": "default"},
    )
    assert response.status_code == 200, response.text
    (payload,) = response.json()["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert base64.b64decode(payload["data"]) == b'{"schedule_id":"s-1","command":"show version"}'


async def test_encode_then_decode_gives_the_payload_back(client: httpx.AsyncClient) -> None:
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": "MQ=="}
    codec = {"Authorization": f"Bearer {CODEC_KEY}", "X-API-Key": ""}
    encoded = await client.post("/codec/encode", json={"payloads": [plain]}, headers=codec)
    assert encoded.status_code == 200
    (sealed,) = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
    decoded = await client.post("/codec/decode", json=encoded.json(), headers=codec)
    assert decoded.json() == {"payloads": [plain]}


async def test_a_key_without_the_codec_scope_is_refused(
    client: httpx.AsyncClient, secret_key: str
) -> None:
    body = {"payloads": await _encrypted(secret_key, {"a": 1})}
    response = await client.post("/codec/decode", json=body, headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 403
    assert "codec" in response.json()["detail"]
    anonymous = await client.post("/codec/decode", json=body, headers={"X-API-Key": ""})
    assert anonymous.status_code == 401


async def test_a_payload_that_is_not_base64_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/codec/decode",
        json={"payloads": [{"metadata": {"encoding": "json plain"}, "data": ""}]},
        headers={"X-API-Key": CODEC_KEY},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "payloads[0].metadata"


async def test_a_payload_sealed_under_another_key_is_a_422(client: httpx.AsyncClient) -> None:
    from netcron.crypto import generate_key

    response = await client.post(
        "/codec/decode",
        json={"payloads": await _encrypted(generate_key(), {"a": 1})},
        headers={"X-API-Key": CODEC_KEY},
    )
    assert response.status_code == 422
    assert "NETCRON_SECRET_KEY" in response.json()["detail"]


async def test_the_temporal_ui_origin_passes_the_preflight(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    other = await client.options(
        "/codec/decode",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers


async def test_a_browser_signed_in_at_codec_decodes_with_its_cookie(
    client: httpx.AsyncClient, secret_key: str
) -> None:
    refused = await client.post(
        "/codec/session", content=f"api_key={ADMIN_KEY}", headers={"X-API-Key": ""}
    )
    assert refused.status_code == 403
    signed_in = await client.post(
        "/codec/session",
        content=f"api_key={CODEC_KEY}",
        headers={"X-API-Key": "", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert signed_in.status_code == 200
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/codec" in cookie and "SameSite=strict" in cookie
    response = await client.post(
        "/codec/decode",
        json={"payloads": await _encrypted(secret_key, {"a": 1})},
        headers={"X-API-Key": "", "Origin": UI_ORIGIN},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-credentials"] == "true"


def test_the_codec_scope_is_a_scope() -> None:
    from netcron.apikeys import parse_api_keys

    (key,) = parse_api_keys("ops:k:codec")
    assert key.scopes == {"codec"}
    assert "codec" in parse_api_keys("bare-key")[0].scopes
