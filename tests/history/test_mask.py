"""Secrets are masked per platform and by the user's own patterns."""

from __future__ import annotations

import pytest

from netcron.history.mask import MASK, MaskFailed, mask_secrets

from .configs import (
    EOS_RUNNING,
    IOS_RUNNING,
    IOS_SECRETS,
    JUNOS_CONFIG,
    JUNOS_SECRETS,
    NXOS_RUNNING,
)


def test_ios_defaults_mask_every_kind_of_secret() -> None:
    masked = mask_secrets(IOS_RUNNING, "cisco_ios")
    assert [secret for secret in IOS_SECRETS if secret in masked] == []
    assert "enable secret 9 <removed>" in masked
    assert "username netops privilege 15 password 7 <removed>" in masked
    assert "snmp-server community <removed> RO" in masked
    assert " key <removed>" in masked


def test_masking_keeps_everything_that_is_not_a_secret() -> None:
    masked = mask_secrets(IOS_RUNNING, "cisco_ios")
    assert masked.count("\n") == IOS_RUNNING.count("\n")
    for line in ("hostname core-sw-1", " ip address 10.0.0.1 255.255.255.0", "ntp server 10.1.1.1"):
        assert line in masked


def test_junos_defaults_mask_hashes_and_communities() -> None:
    masked = mask_secrets(JUNOS_CONFIG, "juniper_junos")
    assert [secret for secret in JUNOS_SECRETS if secret in masked] == []
    assert 'encrypted-password "<removed>";' in masked


@pytest.mark.parametrize(
    ("platform", "text", "secrets"),
    [
        (
            "cisco_nxos",
            NXOS_RUNNING,
            ("$5$KLMNOP$0hYs0xBEZwvPq6qYDrtNj0kDoQUWbDDoA1xLBlFcnd6", "NxComm"),
        ),
        ("arista_eos", EOS_RUNNING, ("$6$aBcD$SomeLongHashValue/xyz", "EosComm")),
    ],
)
def test_other_platforms_mask_their_secrets(
    platform: str, text: str, secrets: tuple[str, ...]
) -> None:
    masked = mask_secrets(text, platform)
    assert [secret for secret in secrets if secret in masked] == []


def test_user_patterns_mask_a_group_or_the_whole_match() -> None:
    text = "wifi psk=Sup3rS3cret\napi token abc123 end\n"
    masked = mask_secrets(text, "linux", [r"psk=(\S+)", r"token \w+"])
    assert masked == f"wifi psk={MASK}\napi {MASK} end\n"


def test_an_invalid_user_pattern_raises_rather_than_passing_output_through() -> None:
    with pytest.raises(MaskFailed):
        mask_secrets("x", "linux", ["(unclosed"])


def test_overlapping_matches_mask_once() -> None:
    text = "username a secret 5 $1$abc$def\n"
    assert mask_secrets(text, "cisco_ios") == f"username a secret 5 {MASK}\n"


def test_a_pattern_that_backtracks_without_end_fails_the_masking() -> None:
    text = "a" * 40 + "!\n"
    with pytest.raises(MaskFailed, match=r"longer than 0\.2s"):
        mask_secrets(text, "linux", [r"(a|aa)+$"], time_limit=0.2)


def test_an_invalid_user_pattern_is_named() -> None:
    with pytest.raises(MaskFailed, match=r"mask\[1\]: invalid regex"):
        mask_secrets("x", "cisco_ios", ["ok", "(unclosed"])
