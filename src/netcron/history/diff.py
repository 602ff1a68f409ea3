"""Line diffs between two runs' normalized outputs: stats, hunks and unified text (difflib)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property

from pydantic import BaseModel

#: Lines of context around each change, as ``diff -u`` shows.
CONTEXT = 3


class DiffStats(BaseModel):
    """Lines added and removed from one run's output to the next."""

    added: int
    removed: int


class Hunk(BaseModel):
    """One changed region, as a unified diff's ``@@ -a,b +c,d @@`` block describes it."""

    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    lines: list[str]


@dataclass
class Diff:
    """A comparison of ``old`` with ``new``, line by line.

    difflib's matcher with its defaults, as ``difflib.unified_diff`` uses it: with
    ``autojunk`` off, the hundreds of ``!`` lines of a 40 KB configuration made one
    comparison take 12 ms instead of 2.6 (`netcron bench --history`).
    """

    old: list[str]
    new: list[str]

    @classmethod
    def of(cls, old: str | None, new: str) -> Diff:
        return cls(_lines(old), _lines(new))

    @cached_property
    def _matcher(self) -> difflib.SequenceMatcher[str]:
        return difflib.SequenceMatcher(None, self.old, self.new)

    def stats(self) -> DiffStats:
        added = removed = 0
        for tag, i1, i2, j1, j2 in self._matcher.get_opcodes():
            if tag in ("replace", "delete"):
                removed += i2 - i1
            if tag in ("replace", "insert"):
                added += j2 - j1
        return DiffStats(added=added, removed=removed)

    def hunks(self, context: int = CONTEXT) -> list[Hunk]:
        hunks = []
        for group in self._matcher.get_grouped_opcodes(context):
            lines: list[str] = []
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    lines += [" " + line for line in self.old[i1:i2]]
                    continue
                lines += ["-" + line for line in self.old[i1:i2]]
                lines += ["+" + line for line in self.new[j1:j2]]
            first, last = group[0], group[-1]
            old_lines, new_lines = last[2] - first[1], last[4] - first[3]
            hunks.append(
                Hunk(
                    old_start=first[1] + 1 if old_lines else first[1],
                    old_lines=old_lines,
                    new_start=first[3] + 1 if new_lines else first[3],
                    new_lines=new_lines,
                    lines=lines,
                )
            )
        return hunks

    def unified(self, old_label: str, new_label: str, context: int = CONTEXT) -> str:
        """``diff -u`` text; empty when nothing changed."""
        out = []
        for hunk in self.hunks(context):
            out.append(
                f"@@ -{_range(hunk.old_start, hunk.old_lines)}"
                f" +{_range(hunk.new_start, hunk.new_lines)} @@"
            )
            out += hunk.lines
        if not out:
            return ""
        return "\n".join([f"--- {old_label}", f"+++ {new_label}", *out]) + "\n"


def _range(start: int, count: int) -> str:
    return str(start) if count == 1 else f"{start},{count}"


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    return text.splitlines()
