"""Volatile lines set aside before runs are compared: clocks, uptimes, commit stamps.

A line that changes on every run without the configuration changing (IOS
``ntp clock-period``, NX-OS ``!Time:``, an uptime in ``show version``) would make every
backup look changed, Oxidized's most heard complaint. Each platform has default filters
(after Oxidized's models and what the devices print), and a command adds its own
``ignore_lines``. A filtered line is not thrown away: it is kept beside the normalized
text with its line number (the *residue*), so the output can be put back together byte
for byte while the normalized text, identical from run to run, is stored once.

A stored blob keeps the residue of the first run that produced it, and each later run
keeps only the lines that differ from it (``relative_to``): an ``ntp clock-period``
that moved, or nothing at all when only the lines that move with a change (the
last-change stamps) were set aside. A residue is either whole, ``{"lines": n, "at":
[[index, line], …]}``, or relative to its blob's, ``{"changed": [[index, line], …]}``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import regex

from netcron.history.options import compile_pattern

#: Lines set aside: ``{"lines": n, "at": [[index, line], …]}``, or ``{"changed": […]}``.
Residue = dict[str, Any]

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


#: Seconds the filters may take on one output (a 1 MiB configuration takes about 0.1 s).
TIME_LIMIT = 2.0


class NormalizeTimeout(Exception):
    """The filters took longer than ``TIME_LIMIT`` (a user's pattern that backtracks)."""


@lru_cache(maxsize=256)
def _filter(patterns: tuple[str, ...]) -> regex.Pattern[str] | None:
    if not patterns:
        return None
    return compile_pattern("|".join(f"(?:{pattern})" for pattern in patterns))


@dataclass(frozen=True)
class Normalized:
    """The text runs are compared on, and the lines set aside (with their line numbers)."""

    text: str
    volatile: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0

    def residue(self) -> Residue | None:
        """What the run's row keeps to restore its output (None: nothing was set aside)."""
        if not self.volatile:
            return None
        return {"lines": self.total, "at": [[index, line] for index, line in self.volatile]}


def normalize(
    text: str, platform: str, ignore_lines: Sequence[str] = (), time_limit: float | None = None
) -> Normalized:
    """Set aside the lines that match the platform's filters or ``ignore_lines``.

    The user's patterns run with a time limit (the platform's are known to be quick):
    past ``time_limit`` (default ``TIME_LIMIT``) this raises :class:`NormalizeTimeout`.
    """
    time_limit = TIME_LIMIT if time_limit is None else time_limit
    defaults = _filter(VOLATILE.get(platform, ()))
    users = _filter(tuple(ignore_lines))
    lines = text.split("\n")
    if defaults is None and users is None:
        return Normalized(text, [], len(lines))
    deadline = time.monotonic() + time_limit
    kept: list[str] = []
    volatile: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        if (defaults is not None and defaults.search(line)) or (
            users is not None and _search(users, line, deadline, time_limit)
        ):
            volatile.append((index, line))
        else:
            kept.append(line)
    if not volatile:
        return Normalized(text, [], len(lines))
    return Normalized("\n".join(kept), volatile, len(lines))


def _search(pattern: regex.Pattern[str], line: str, deadline: float, limit: float) -> bool:
    left = deadline - time.monotonic()
    try:
        if left <= 0:
            raise TimeoutError
        return pattern.search(line, timeout=left) is not None
    except TimeoutError:
        raise NormalizeTimeout(f"normalizing took longer than {limit:g}s") from None


def relative_to(residue: Residue | None, reference: Residue | None) -> Residue | None:
    """``residue`` as the lines that differ from ``reference`` (its blob's), if it can be.

    It can when both set the same line numbers aside of outputs of the same length;
    otherwise the residue stays whole.
    """
    if residue is None or reference is None or "at" not in reference:
        return residue
    ours, theirs = _lines_at(residue), _lines_at(reference)
    if residue["lines"] != reference["lines"] or ours.keys() != theirs.keys():
        return residue
    return {"changed": [[i, line] for i, line in ours.items() if theirs[i] != line]}


def resolve(residue: Residue | None, reference: Residue | None) -> Residue | None:
    """The whole residue of a run, from its own and its blob's."""
    if residue is None or "changed" not in residue:
        return residue
    if reference is None:
        raise ValueError("a relative residue needs its blob's residue")
    lines = _lines_at(reference) | _lines_at({"at": residue["changed"]})
    return {"lines": reference["lines"], "at": [[i, line] for i, line in sorted(lines.items())]}


def _lines_at(residue: Residue) -> dict[int, str]:
    return {int(index): str(line) for index, line in residue["at"]}


def restore(text: str, residue: Residue | None, reference: Residue | None = None) -> str:
    """The output as the device gave it: ``text`` with the lines set aside put back."""
    whole = resolve(residue, reference)
    if not whole:
        return text
    pending = _lines_at(whole)
    total = int(whole["lines"])
    kept = text.split("\n") if total > len(pending) else []
    source = iter(kept)
    return "\n".join(pending[i] if i in pending else next(source) for i in range(total))
