"""Credential encryption: round trip, rotation, wrong or missing keys, masked repr."""

from __future__ import annotations

import pytest

from netcron.crypto import (
    CredentialCipher,
    Credentials,
    CredentialsUnreadable,
    SecretKeyMissing,
    generate_key,
)

SECRET = Credentials(password="pa55word", enable_secret="en4ble")


def test_round_trip_and_no_plain_text_in_the_token() -> None:
    cipher = CredentialCipher(generate_key())
    token = cipher.encrypt(SECRET)
    assert token is not None
    assert "pa55word" not in token
    assert cipher.decrypt(token) == SECRET


def test_nothing_to_hide_gives_no_token() -> None:
    cipher = CredentialCipher(generate_key())
    assert cipher.encrypt(Credentials()) is None
    assert cipher.decrypt(None) == Credentials()


def test_rotation_reads_old_tokens_and_writes_with_the_new_key() -> None:
    old, new = generate_key(), generate_key()
    token = CredentialCipher(old).encrypt(SECRET)
    assert token is not None
    rotated = CredentialCipher(f"{new},{old}")
    assert rotated.decrypt(token) == SECRET
    assert CredentialCipher(new).decrypt(rotated.rotate(token)) == SECRET


def test_a_wrong_key_cannot_read_the_token() -> None:
    token = CredentialCipher(generate_key()).encrypt(SECRET)
    with pytest.raises(CredentialsUnreadable):
        CredentialCipher(generate_key()).decrypt(token)


@pytest.mark.parametrize("keys", ["", " , ", "not-a-fernet-key"])
def test_missing_or_malformed_key_is_refused(keys: str) -> None:
    with pytest.raises(SecretKeyMissing):
        CredentialCipher(keys)


def test_repr_never_shows_secrets() -> None:
    assert "pa55word" not in repr(SECRET)
    assert "pa55word" not in str(SECRET)
    assert "***" in repr(SECRET)
