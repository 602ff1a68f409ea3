"""Two outputs side by side or as a unified diff, for the diff page (difflib)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

#: Lines that change on every run without the configuration changing: clocks, uptimes,
#: counters of when something was last written. Hidden unless the reader asks for them.
VOLATILE = re.compile(
    r"^(!\s*(Last configuration change|NVRAM config last updated|Time:)"
    r"|ntp clock-period"
    r"|.*\buptime is\b"
    r"|Current configuration : \d+ bytes"
    r"|Building configuration"
    r"|## Last (commit|changed):"
    r"|.*\b(System time|Last reboot|Last login)\b)",
    re.IGNORECASE,
)

Kind = Literal["same", "added", "removed", "changed", "gap"]


@dataclass(frozen=True)
class UnifiedLine:
    kind: Kind
    old_no: int | None
    new_no: int | None
    text: str


@dataclass(frozen=True)
class SideRow:
    kind: Kind
    old_no: int | None
    old: str | None
    new_no: int | None
    new: str | None


@dataclass
class DiffView:
    unified: list[UnifiedLine]
    side: list[SideRow]
    added: int
    removed: int
    hidden: int

    @property
    def identical(self) -> bool:
        return self.added == 0 and self.removed == 0


def is_volatile(line: str) -> bool:
    return bool(VOLATILE.match(line.strip()))


def _numbered(text: str, keep: Callable[[int, str], bool]) -> tuple[list[tuple[int, str]], int]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    kept = [(index + 1, line) for index, line in enumerate(lines) if keep(index, line)]
    return kept, len(lines) - len(kept)


def build(
    old: str,
    new: str,
    *,
    hide_volatile: bool = True,
    context: int = 3,
    volatile_old: frozenset[int] = frozenset(),
    volatile_new: frozenset[int] = frozenset(),
) -> DiffView:
    """The diff of ``old`` → ``new``; volatile lines are left out of both sides when hidden.

    A line is volatile when it matches :data:`VOLATILE`, or when its index (from 0) is in
    ``volatile_old`` / ``volatile_new`` (what configuration history's normalization of the
    device's platform, and the command's ``ignore_lines``, set aside).
    """

    def keeper(marked: frozenset[int]) -> Callable[[int, str], bool]:
        def keep(index: int, line: str) -> bool:
            return not (hide_volatile and (index in marked or is_volatile(line)))

        return keep

    a, hidden_a = _numbered(old, keeper(volatile_old))
    b, hidden_b = _numbered(new, keeper(volatile_new))
    # difflib's defaults, as the api's diffs use them (autojunk off cost 4x on configurations)
    matcher = difflib.SequenceMatcher(None, [t for _, t in a], [t for _, t in b])
    unified: list[UnifiedLine] = []
    side: list[SideRow] = []
    added = removed = 0
    for group in matcher.get_grouped_opcodes(context):
        if unified:
            unified.append(UnifiedLine("gap", None, None, "…"))
            side.append(SideRow("gap", None, "…", None, "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for (no_a, text), (no_b, _) in zip(a[i1:i2], b[j1:j2], strict=True):
                    unified.append(UnifiedLine("same", no_a, no_b, text))
                    side.append(SideRow("same", no_a, text, no_b, text))
                continue
            removed += i2 - i1
            added += j2 - j1
            unified.extend(UnifiedLine("removed", no, None, text) for no, text in a[i1:i2])
            unified.extend(UnifiedLine("added", None, no, text) for no, text in b[j1:j2])
            olds, news = a[i1:i2], b[j1:j2]
            for index in range(max(len(olds), len(news))):
                o = olds[index] if index < len(olds) else None
                n = news[index] if index < len(news) else None
                kind: Kind = "changed" if o and n else "removed" if o else "added"
                side.append(
                    SideRow(
                        kind,
                        o[0] if o else None,
                        o[1] if o else None,
                        n[0] if n else None,
                        n[1] if n else None,
                    )
                )
    return DiffView(unified, side, added, removed, hidden_a + hidden_b)
