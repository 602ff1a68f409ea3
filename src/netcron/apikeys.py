"""API keys: parsing ``NETCRON_API_KEYS`` and finding a presented key in constant time.

Entries are comma-separated, each a bare ``key`` (every scope) or
``name:key:scope+scope`` with scopes ``read``, ``write``, ``results`` and ``codec``.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

Scope = Literal["read", "write", "results", "codec"]
SCOPES: frozenset[str] = frozenset({"read", "write", "results", "codec"})


@dataclass(frozen=True)
class ApiKey:
    name: str
    key: str
    scopes: frozenset[str]

    def __repr__(self) -> str:
        return f"ApiKey(name={self.name!r}, scopes={sorted(self.scopes)})"


def parse_api_keys(value: str) -> list[ApiKey]:
    """Parse ``NETCRON_API_KEYS``; a malformed entry is an error naming its position."""
    keys = []
    for index, entry in enumerate(part.strip() for part in value.split(",")):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) == 1:
            keys.append(ApiKey(f"key{index + 1}", parts[0], SCOPES))
            continue
        if len(parts) != 3 or not parts[1]:
            raise ValueError(
                f"NETCRON_API_KEYS entry {index + 1} is not `key` or `name:key:scopes`"
            )
        scopes = frozenset(parts[2].split("+"))
        unknown = scopes - SCOPES
        if unknown:
            raise ValueError(
                f"NETCRON_API_KEYS entry {index + 1} has unknown scopes {sorted(unknown)}"
            )
        keys.append(ApiKey(parts[0], parts[1], scopes))
    return keys


def key_for_scope(value: str, scope: Scope) -> str | None:
    """The first configured key with ``scope`` (what the worker presents by default)."""
    return next((k.key for k in parse_api_keys(value) if scope in k.scopes), None)


def find_key(keys: list[ApiKey], presented: str) -> ApiKey | None:
    """Constant time in the presented key: every configured key is compared."""
    found = None
    for candidate in keys:
        if hmac.compare_digest(candidate.key.encode(), presented.encode()):
            found = candidate
    return found


def generate_api_key() -> str:
    return "nc_" + secrets.token_urlsafe(32)
