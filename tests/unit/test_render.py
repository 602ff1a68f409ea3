"""Command rendering: placeholders only, never attribute access, no second command."""

from __future__ import annotations

import pytest

from netcron.render import RenderError, placeholders, render


def test_placeholders_are_filled() -> None:
    assert render("show interfaces {ifname} | i {what}", {"ifname": "Gi0/1", "what": "rate"}) == (
        "show interfaces Gi0/1 | i rate"
    )


def test_missing_parameter_is_named() -> None:
    with pytest.raises(RenderError) as error:
        render("show bgp vrf {vrf} {afi}", {"afi": "ipv4"})
    assert error.value.param == "vrf"


def test_format_tricks_are_plain_text() -> None:
    text = "show {0.__class__} {x[0]} {}"
    assert placeholders(text) == set()
    assert render(text, {}) == text


def test_values_with_newlines_are_refused() -> None:
    with pytest.raises(RenderError, match="newline"):
        render("show {x}", {"x": "version\nreload"})


def test_a_value_is_not_rendered_again() -> None:
    assert render("echo {a}", {"a": "{b}", "b": "x"}) == "echo {b}"
