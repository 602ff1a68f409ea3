"""Volatile lines set aside before runs are compared: clocks, uptimes, commit stamps.

A line that changes on every run without the configuration changing (IOS
``ntp clock-period``, NX-OS ``!Time:``, an uptime in ``show version``) would make every
backup look changed, Oxidized's most heard complaint. Each platform has default filters
(after Oxidized's models and what the devices print), and a command adds its own
``ignore_lines``. A filtered line is not thrown away: it is kept beside the normalized
text with its line number, so the output can be put back together byte for byte while
the normalized text, identical from run to run, is stored once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from netcron.history.options import compile_pattern

_IOS = (
    r"^! Last configuration change at ",
    r"^! NVRAM config last updated at ",
    r"^! No configuration change since last restart",
    r"^ntp clock-period ",
    r"^Current configuration\s*:\s*\d+ bytes",
    r"^\S+ uptime is ",
    r"^Uptime for this control processor is ",
    r"^System restarted at ",
    r"^System returned to ROM by ",
)
#: Per platform (netmiko names), searched in each line.
VOLATILE: dict[str, tuple[str, ...]] = {
    "cisco_ios": _IOS,
    "cisco_xe": _IOS,
    "cisco_nxos": (
        r"^!Time: ",
        r"^!Running configuration last done at: ",
        r"^\s*Kernel uptime is ",
        r"^\s*Last reset",
        r"^\s*System uptime:?\s",
    ),
    "cisco_xr": (
        r"^!! Last configuration change at ",
        r"^Building configuration\.\.\.$",
        r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
        r" +\d+ \d\d:\d\d:\d\d(\.\d+)? \S+$",
        r"^\S+ uptime is ",
        r"^System uptime is ",
    ),
    "arista_eos": (
        r"^! Startup-config last modified at ",
        r"^! Time: ",
        r"^Uptime: ",
        r"^Free memory: ",
    ),
    "juniper_junos": (
        r"^## Last commit: ",
        r"^## Last changed: ",
        r"^Current time: ",
        r"^System booted: ",
        r"^Protocols started: ",
        r"^Last configured: ",
        r"^Time source: ",
    ),
    "linux": (r"^\s*\d\d:\d\d:\d\d up ", r"^up \d+ "),
}


@lru_cache(maxsize=256)
def _filter(platform: str, ignore_lines: tuple[str, ...]) -> re.Pattern[str] | None:
    patterns = (*VOLATILE.get(platform, ()), *ignore_lines)
    if not patterns:
        return None
    return compile_pattern("|".join(f"(?:{pattern})" for pattern in patterns))


@dataclass(frozen=True)
class Normalized:
    """The text runs are compared on, and the lines set aside (with their line numbers)."""

    text: str
    volatile: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0

    def residue(self) -> dict[str, Any] | None:
        """What the run's row keeps to restore its output (None: nothing was set aside)."""
        if not self.volatile:
            return None
        return {"lines": self.total, "at": [[index, line] for index, line in self.volatile]}


def normalize(text: str, platform: str, ignore_lines: Sequence[str] = ()) -> Normalized:
    """Drop the lines that match the platform's filters or ``ignore_lines``."""
    pattern = _filter(platform, tuple(ignore_lines))
    lines = text.split("\n")
    if pattern is None:
        return Normalized(text, [], len(lines))
    kept: list[str] = []
    volatile: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        if pattern.search(line):
            volatile.append((index, line))
        else:
            kept.append(line)
    if not volatile:
        return Normalized(text, [], len(lines))
    return Normalized("\n".join(kept), volatile, len(lines))


def restore(text: str, residue: dict[str, Any] | None) -> str:
    """The output as the device gave it: ``text`` with the lines set aside put back."""
    if not residue:
        return text
    at = [(int(index), str(line)) for index, line in residue["at"]]
    kept = text.split("\n") if int(residue["lines"]) > len(at) else []
    lines: list[str] = []
    source = iter(kept)
    pending = dict(at)
    for index in range(int(residue["lines"])):
        lines.append(pending[index] if index in pending else next(source))
    return "\n".join(lines)
