"""Line diffs: stats, hunks and unified text agree with diff -u."""

from __future__ import annotations

import difflib

from netcron.history.diff import Diff


def test_the_first_run_is_all_added() -> None:
    diff = Diff.of(None, "a\nb\nc\n")
    assert (diff.stats().added, diff.stats().removed) == (3, 0)
    assert diff.unified("/dev/null", "r1") == "--- /dev/null\n+++ r1\n@@ -0,0 +1,3 @@\n+a\n+b\n+c\n"


def test_no_change_is_an_empty_diff() -> None:
    diff = Diff.of("a\nb\n", "a\nb\n")
    assert diff.hunks() == []
    assert diff.unified("r1", "r2") == ""
    assert (diff.stats().added, diff.stats().removed) == (0, 0)


def test_a_replaced_line_counts_once_each_way() -> None:
    old = "\n".join(f"line {i}" for i in range(20))
    new = old.replace("line 10", "line ten")
    stats = Diff.of(old, new).stats()
    assert (stats.added, stats.removed) == (1, 1)


def test_unified_text_matches_difflib() -> None:
    old = "\n".join(f"line {i}" for i in range(40))
    new = old.replace("line 3\n", "").replace("line 30", "line thirty") + "\nline 40"
    ours = Diff.of(old, new).unified("a", "b")
    theirs = "".join(
        line if line.endswith("\n") else line + "\n"
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), "a", "b", lineterm="")
    )
    assert ours == theirs


def test_hunks_carry_their_ranges() -> None:
    old = "\n".join(f"line {i}" for i in range(40))
    new = old.replace("line 30", "line thirty")
    (hunk,) = Diff.of(old, new).hunks()
    assert (hunk.old_start, hunk.old_lines, hunk.new_start, hunk.new_lines) == (28, 7, 28, 7)
    assert "-line 30" in hunk.lines and "+line thirty" in hunk.lines
