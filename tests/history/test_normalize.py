"""Volatile lines per platform are set aside for comparison and restored for reading."""

from __future__ import annotations

import pytest

from netcron.history.normalize import NormalizeTimeout, normalize, relative_to, restore

from .configs import EOS_RUNNING, IOS_RUNNING, IOS_VERSION, JUNOS_CONFIG, NXOS_RUNNING


def _bump_clock(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("platform", "text", "old", "new"),
    [
        ("cisco_ios", IOS_RUNNING, "10:14:03 UTC Tue Nov 24", "11:20:00 UTC Wed Nov 25"),
        ("cisco_ios", IOS_RUNNING, "clock-period 36028797018963968", "clock-period 36028797"),
        ("cisco_xe", IOS_RUNNING, "Current configuration : 4213", "Current configuration : 4300"),
        ("cisco_ios", IOS_VERSION, "41 weeks, 2 days, 3 hours, 12", "41 weeks, 2 days, 4 hours, 1"),
        ("cisco_nxos", NXOS_RUNNING, "!Time: Wed Nov 25 03:00:00", "!Time: Thu Nov 26 03:00:00"),
        ("arista_eos", EOS_RUNNING, "modified at Tue Nov 24 10:14:03", "modified at Wed Nov 25"),
        ("juniper_junos", JUNOS_CONFIG, "2026-11-24 10:14:03 UTC", "2026-11-25 09:00:00 UTC"),
    ],
)
def test_a_volatile_line_does_not_change_the_normalized_text(
    platform: str, text: str, old: str, new: str
) -> None:
    assert normalize(text, platform).text == normalize(_bump_clock(text, old, new), platform).text


def test_a_real_change_does_change_the_normalized_text() -> None:
    changed = IOS_RUNNING.replace(" description uplink", " description uplink-to-core")
    assert normalize(IOS_RUNNING, "cisco_ios").text != normalize(changed, "cisco_ios").text


def test_ignore_lines_adds_the_users_own_filters() -> None:
    text = "hostname r1\n! generated 2026-11-25 by script\ninterface Gi1\n"
    later = text.replace("2026-11-25", "2026-11-26")
    assert normalize(text, "cisco_ios").text != normalize(later, "cisco_ios").text
    ignore = [r"^! generated "]
    assert normalize(text, "cisco_ios", ignore).text == normalize(later, "cisco_ios", ignore).text


def test_filters_are_per_platform() -> None:
    assert "!Time:" in normalize(NXOS_RUNNING, "juniper_junos").text
    assert "!Time:" not in normalize(NXOS_RUNNING, "cisco_nxos").text


@pytest.mark.parametrize(
    "text",
    [
        IOS_RUNNING,
        IOS_VERSION,
        "ntp clock-period 1",
        "ntp clock-period 1\n",
        "\nntp clock-period 1\n\n",
        "",
        "no volatile line here",
        "ntp clock-period 1\r\nhostname r1\r\n",
    ],
)
def test_restore_gives_back_the_output_byte_for_byte(text: str) -> None:
    normalized = normalize(text, "cisco_ios")
    assert restore(normalized.text, normalized.residue()) == text


def test_nothing_set_aside_means_no_residue() -> None:
    assert normalize("hostname r1\n", "cisco_ios").residue() is None


def test_a_later_run_keeps_only_the_volatile_lines_that_moved() -> None:
    first = normalize(IOS_RUNNING, "cisco_ios")
    later_text = IOS_RUNNING.replace("clock-period 36028797018963968", "clock-period 360287")
    later = normalize(later_text, "cisco_ios")
    relative = relative_to(later.residue(), first.residue())
    assert relative == {"changed": [[later.volatile[-1][0], "ntp clock-period 360287"]]}
    assert restore(later.text, relative, first.residue()) == later_text
    same = relative_to(first.residue(), first.residue())
    assert same == {"changed": []}
    assert restore(first.text, same, first.residue()) == IOS_RUNNING


def test_a_residue_of_another_shape_stays_whole() -> None:
    first = normalize(IOS_RUNNING, "cisco_ios")
    other_text = IOS_RUNNING.replace("ntp clock-period 36028797018963968\n", "")
    other = normalize(other_text, "cisco_ios")
    assert relative_to(other.residue(), first.residue()) == other.residue()
    assert restore(other.text, other.residue(), first.residue()) == other_text


def test_filters_that_backtrack_without_end_stop_at_the_time_limit() -> None:
    with pytest.raises(NormalizeTimeout):
        normalize("a" * 40 + "!\nhostname r1\n", "cisco_ios", [r"(a|aa)+$"], time_limit=0.2)
