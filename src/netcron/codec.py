"""Temporal payload encryption: workflow inputs, signals, results and markers are
encrypted before they leave the process, so Temporal's history (and its UI) holds
ciphertext only. The same ``NETCRON_SECRET_KEY`` as the device credentials, which are
already a Fernet token inside: they are encrypted twice on the way through Temporal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from netcron.crypto import CredentialCipher

ENCODING = b"binary/encrypted"


class EncryptionCodec(PayloadCodec):
    """Fernet over each whole serialized payload (metadata included)."""

    def __init__(self, cipher: CredentialCipher) -> None:
        self.cipher = cipher

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(
                metadata={"encoding": ENCODING},
                data=self.cipher.encrypt_bytes(payload.SerializeToString()),
            )
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            decoded.append(Payload.FromString(self.cipher.decrypt_bytes(payload.data)))
        return decoded


def data_converter(secret_key: str) -> DataConverter:
    """Pydantic payloads, encrypted; failure messages and traces encrypted too."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(CredentialCipher(secret_key)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
