"""What a device's output means: a rejected command, and the platform and version it reports."""

from __future__ import annotations

import re

#: Strings a platform prints when it refuses a command (beside scrapli's own list).
REJECTIONS: dict[str, tuple[str, ...]] = {
    "cisco_ios": ("% Invalid input detected", "% Incomplete command", "% Ambiguous command"),
    "cisco_xe": ("% Invalid input detected", "% Incomplete command", "% Ambiguous command"),
    "cisco_nxos": ("% Invalid command at", "% Invalid input detected", "% Incomplete command"),
    "cisco_xr": ("% Invalid input detected", "% Incomplete command", "% Ambiguous command"),
    "arista_eos": ("% Invalid input", "% Incomplete command", "% Ambiguous command"),
    "juniper_junos": ("syntax error", "unknown command", "is ambiguous"),
    "linux": ("command not found",),
}

#: The command that says what a device runs, per platform.
VERSION_COMMANDS = {"linux": "uname -a"}

#: (platform, pattern whose group 1 is the software version), most specific first.
_VERSIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cisco_xr", re.compile(r"Cisco IOS XR Software, Version (\S+)")),
    ("cisco_xe", re.compile(r"Cisco IOS XE Software, Version (\S+)")),
    ("cisco_nxos", re.compile(r"NXOS: version (\S+)")),
    ("cisco_ios", re.compile(r"Cisco IOS Software.*?Version ([^,\s]+)")),
    ("arista_eos", re.compile(r"Software image version: (\S+)")),
    ("juniper_junos", re.compile(r"^Junos: (\S+)", re.MULTILINE)),
    ("linux", re.compile(r"^Linux \S+ (\S+)", re.MULTILINE)),
)


def rejection(platform: str, output: str) -> str | None:
    """The line in which the device refused the command, if it did."""
    for marker in REJECTIONS.get(platform, ()):
        for line in output.splitlines():
            if marker in line:
                return line.strip()
    return None


def version_command(platform: str) -> str:
    return VERSION_COMMANDS.get(platform, "show version")


def identify(output: str) -> tuple[str | None, str | None]:
    """(platform, software version) read from ``show version`` (``uname -a`` on linux)."""
    for platform, pattern in _VERSIONS:
        match = pattern.search(output)
        if match:
            return platform, match.group(1)
    return None, None
