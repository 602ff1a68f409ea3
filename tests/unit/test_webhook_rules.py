"""Webhook rules without a server: signatures, targets, matching, backoff."""

from __future__ import annotations

import time
import uuid

import pytest
from pydantic import ValidationError

from netcron.config import Settings
from netcron.events import Event
from netcron.webhooks.delivery import backoff
from netcron.webhooks.matching import CHECK_FAILED, EVENT_TYPES, delivered_as, selects
from netcron.webhooks.signing import signature, verify
from netcron.webhooks.targets import TargetRefused, check_url, parse_networks

SECRET = "whsec-unit-0123456789"


def test_a_signature_verifies_only_with_its_secret_body_and_a_fresh_timestamp() -> None:
    body = b'{"type": "run.failed"}'
    now = int(time.time())
    header = signature(SECRET, body, now)
    assert header.startswith(f"t={now},v1=")
    assert verify(SECRET, body, header)
    assert not verify("another-secret-012345", body, header)
    assert not verify(SECRET, body + b" ", header)
    assert not verify(SECRET, body, header, now=now + 301)  # a replay, five minutes on
    assert not verify(SECRET, body, "v1=deadbeef")


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature(SECRET, b"{}", 1_700_000_000) == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/x",
        "http:///nohost",
        "https://user:pw@h/x",
        "javascript:alert(1)",
        "http://h:0/",
        "http://h:99999/",
        "http://" + "a" * 2050,
    ],
)
def test_urls_that_are_not_http_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url, [])


def test_private_addresses_are_allowed_unless_the_admin_restricts_them() -> None:
    assert check_url("http://10.0.0.5:8080/hook", []) == "http://10.0.0.5:8080/hook"
    assert check_url("http://[fd00::1]/hook", []) == "http://[fd00::1]/hook"
    only = parse_networks(["192.0.2.0/24"])
    assert check_url("https://192.0.2.9/hook", only)
    assert check_url("https://hooks.example.net/x", only)  # names are checked at delivery
    with pytest.raises(TargetRefused):
        check_url("http://10.0.0.5/hook", only)


def test_an_allowed_network_that_is_not_one_is_a_settings_error() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, webhook_allowed_networks="10.0.0.0/8,nonsense")  # type: ignore[call-arg]


def _event(kind: str, **data: object) -> Event:
    return Event(type=kind, device_id=uuid.uuid4(), data=dict(data))


def test_a_webhook_gets_the_types_it_asked_for() -> None:
    assert delivered_as(_event("run.failed"), ["run.failed"]) == "run.failed"
    assert delivered_as(_event("run.succeeded"), ["run.failed"]) is None


def test_a_failed_check_is_check_failed_to_who_asked_for_failures_only() -> None:
    failed, passed = _event("device.checked", ok=False), _event("device.checked", ok=True)
    assert delivered_as(failed, [CHECK_FAILED]) == CHECK_FAILED
    assert delivered_as(passed, [CHECK_FAILED]) is None
    assert delivered_as(failed, ["device.checked", CHECK_FAILED]) == "device.checked"


def test_selectors_match_every_pair() -> None:
    assert selects({}, None)
    assert selects({"site": "ams"}, {"site": "ams", "role": "core"})
    assert not selects({"site": "ams", "role": "edge"}, {"site": "ams", "role": "core"})
    assert not selects({"site": "ams"}, None)


def test_the_types_of_other_issues_are_known() -> None:
    assert {"run.changed", "fire.started", "fire.finished", "run.timed_out"} <= EVENT_TYPES


def test_backoff_doubles_up_to_its_ceiling() -> None:
    assert [backoff(n, 1, 300) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff(20, 1, 300) == 300
    assert backoff(10_000, 1, 300) == 300
