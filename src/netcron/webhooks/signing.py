"""The signature on every delivery: HMAC-SHA256 over the timestamp and the body.

``Netcron-Signature: t=<unix seconds>,v1=<hex digest>``, where the digest is
``HMAC-SHA256(secret, "<t>." + body)``. Signing the timestamp with the body lets a
receiver refuse a replayed delivery: a signature older than a few minutes is not fresh.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Netcron-Signature"
#: Seconds a receiver should accept a signature for (what :func:`verify` defaults to).
TOLERANCE = 300


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance: int = TOLERANCE, now: float | None = None
) -> bool:
    """What a receiver does: the header's digest matches and its timestamp is fresh."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
