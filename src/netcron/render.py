"""Filling a command's ``{name}`` placeholders: plain substitution, never ``str.format``.

``str.format`` would let a command text reach attributes (``{0.__class__}``); here a
placeholder is only ever a name, and every value is checked before it is placed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RenderError(ValueError):
    """A command cannot be rendered; ``param`` names the parameter at fault."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def check_value(name: str, value: str) -> str:
    """A parameter value may not carry newlines or control characters (no second command)."""
    if _CONTROL.search(value):
        raise RenderError(name, f"parameter {name!r} contains a newline or control character")
    return value


def render(text: str, params: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` replaced by ``params[name]``."""
    missing = sorted(placeholders(text) - set(params))
    if missing:
        raise RenderError(missing[0], f"missing parameter(s) {', '.join(missing)} for this command")
    for name, value in params.items():
        check_value(name, value)
    return PLACEHOLDER.sub(lambda match: params[match.group(1)], text)
