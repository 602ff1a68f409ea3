"""Secrets masked in the executor, before an output leaves it for the broker.

Each pattern's groups mark the secret (a pattern without groups masks its whole match);
a masked secret becomes ``<removed>``. Per-platform defaults cover what configurations
carry (after Oxidized's models: type 5/7/8/9 secrets and passwords, SNMP communities and
users, TACACS+/RADIUS keys, pre-shared keys, routing-protocol keys, Junos ``$9$`` and
crypt strings); a command adds its own ``mask`` patterns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache

import regex

from netcron.history.options import compile_pattern

MASK = "<removed>"
#: Seconds all the patterns together may take on one output (a 1 MiB configuration takes
#: about 0.1 s); past it the run fails rather than let the output out unmasked.
TIME_LIMIT = 5.0


class MaskFailed(Exception):
    """The output could not be masked (a pattern that does not compile, or took too long)."""


#: Cisco-like CLIs (IOS, IOS XE, NX-OS, IOS XR, EOS) share most of their syntax.
_CISCO_LIKE = (
    r"^\s*enable (?:secret|password)(?: level \d+)?(?: \d+| sha512)? (\S+)",
    r"^\s*username \S+(?: .*?)? (?:secret|password)(?: \d+| sha512)? (\S+)",
    r"^\s*snmp-server community (\S+)",
    r"^\s*snmp-server host \S+(?: vrf \S+)?(?: informs| traps)?"
    r"(?: version (?:1|2c|3 (?:auth|noauth|priv)))? (\S+)",
    r"^\s*snmp-server user \S+ \S+(?: remote \S+)?(?: v3)?(?: encrypted)? auth \S+ (\S+)"
    r"(?: priv(?: \S+)*? (\S+)(?: localizedkey)?$)?",
    r"^\s*(?:tacacs-server|radius-server)(?: host \S+(?: .*?)?)? key(?: \d+)? (\S+)",
    r"^\s+key(?: \d+)? (\S+)\s*$",
    r"^\s*crypto isakmp key(?: \d+)? (\S+)",
    r"pre-shared-key(?: (?:local|remote|address \S+))?(?: \d+)? (\S+)",
    r"^\s*key-string(?: \d+)? (\S+)",
    r"^\s*(?:ip ospf )?authentication-key(?: \d+)? (\S+)",
    r"^\s*(?:ip ospf )?message-digest-key \d+ md5(?: \d+)? (\S+)",
    r"^\s*neighbor \S+ password(?: \d+)? (\S+)",
    r"^\s*(?:standby|vrrp) \d+ authentication(?: text| md5 key-string)?(?: \d+)? (\S+)",
    r"^\s*ppp (?:chap|pap) (?:password|sent-username \S+ password)(?: \d+)? (\S+)",
    r"^\s*wpa-psk ascii \d+ (\S+)",
    r"^\s*(?:password|secret)(?: \d+)? (\S+)",
    r"^\s*ntp authentication-key \d+ md5 (\S+)",
    r"\bkey 7 (\S+)",
)
_JUNOS = (
    r"(?:encrypted-password|secret|simple-password|authentication-key|ascii-text|"
    r"hexadecimal|pre-shared-key|md5 \d+ key) \"?([^\";\s]+)\"?",
    r"^\s*community (\S+) \{",
    r"^\s*(?:set snmp )?community (\S+)",
)
#: Crypt-style hashes and Junos ``$9$`` strings, wherever they appear.
_ANY = (r"(\$(?:1|5|6|8|9|14)\$[^\s\";]+)",)

SECRETS: dict[str, tuple[str, ...]] = {
    "cisco_ios": _CISCO_LIKE,
    "cisco_xe": _CISCO_LIKE,
    "cisco_nxos": _CISCO_LIKE,
    "cisco_xr": _CISCO_LIKE,
    "arista_eos": _CISCO_LIKE,
    "juniper_junos": _JUNOS,
    "linux": (),
}


@lru_cache(maxsize=256)
def _patterns(platform: str, mask: tuple[str, ...]) -> tuple[regex.Pattern[str], ...]:
    patterns = []
    for index, pattern in enumerate((*SECRETS.get(platform, ()), *_ANY, *mask)):
        try:
            patterns.append(compile_pattern(pattern))
        except regex.error as exc:
            where = index - len(SECRETS.get(platform, ())) - len(_ANY)
            raise MaskFailed(f"mask[{where}]: invalid regex: {exc}") from None
    return tuple(patterns)


def mask_secrets(
    text: str, platform: str, mask: Sequence[str] = (), time_limit: float = TIME_LIMIT
) -> str:
    """``text`` with every secret the platform's defaults or ``mask`` match replaced.

    Raises :class:`MaskFailed` for a ``mask`` pattern that does not compile or patterns
    that take longer than ``time_limit``: the caller must not let the output go unmasked.
    """
    spans: list[tuple[int, int]] = []
    deadline = time.monotonic() + time_limit
    try:
        for pattern in _patterns(platform, tuple(mask)):
            _spans(pattern, text, max(deadline - time.monotonic(), 0.001), spans)
    except TimeoutError:
        raise MaskFailed(f"masking took longer than {time_limit:g}s") from None
    return _masked(text, spans)


def _spans(
    pattern: regex.Pattern[str], text: str, time_limit: float, spans: list[tuple[int, int]]
) -> None:
    for match in pattern.finditer(text, timeout=time_limit):
        groups = [i for i in range(1, (pattern.groups or 0) + 1) if match.start(i) >= 0]
        if not pattern.groups:
            spans.append(match.span())
        spans.extend(match.span(i) for i in groups if match.end(i) > match.start(i))


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if end <= position:
            continue
        start = max(start, position)
        pieces.append(text[position:start])
        pieces.append(MASK)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
