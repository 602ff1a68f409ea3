"""Credential encryption: Fernet under ``NETCRON_SECRET_KEY`` (MultiFernet for rotation).

The api encrypts device credentials before they touch PostgreSQL and hands the same
ciphertext to the workflow and the broker; only the executor decrypts, just before it
connects. Plain text never leaves those two places.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel


class SecretKeyMissing(RuntimeError):
    """No usable NETCRON_SECRET_KEY is configured."""


class CredentialsUnreadable(ValueError):
    """A ciphertext that none of the configured keys can open."""


class Credentials(BaseModel):
    """What a driver needs to log in; never serialised except encrypted."""

    password: str | None = None
    private_key: str | None = None
    enable_secret: str | None = None

    def __repr__(self) -> str:
        return (
            f"Credentials(password={'***' if self.password else None}, "
            f"private_key={'***' if self.private_key else None}, "
            f"enable_secret={'***' if self.enable_secret else None})"
        )

    __str__ = __repr__


def generate_key() -> str:
    return Fernet.generate_key().decode()


class CredentialCipher:
    """Encrypts with the first key, decrypts with any (so keys can be rotated)."""

    def __init__(self, secret_keys: str) -> None:
        keys = [key.strip() for key in secret_keys.split(",") if key.strip()]
        if not keys:
            raise SecretKeyMissing(
                "NETCRON_SECRET_KEY is not set; generate one with `netcron keygen`"
            )
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError:
            raise SecretKeyMissing(
                "NETCRON_SECRET_KEY must be url-safe base64 Fernet keys (32 bytes each)"
            ) from None

    def encrypt(self, credentials: Credentials) -> str | None:
        """A Fernet token of the credentials, or None when there is nothing to hide."""
        data = credentials.model_dump(exclude_none=True)
        if not data:
            return None
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def decrypt(self, token: str | None) -> Credentials:
        if not token:
            return Credentials()
        try:
            return Credentials.model_validate_json(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise CredentialsUnreadable(
                "device credentials cannot be decrypted with NETCRON_SECRET_KEY"
            ) from None

    def encrypt_bytes(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise CredentialsUnreadable(
                "data cannot be decrypted with NETCRON_SECRET_KEY"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key."""
        return self._fernet.rotate(token.encode()).decode()
