"""The console's text handling: escaping device output, and its diffs."""

from __future__ import annotations

from netcron.ui import diffview
from netcron.ui.render import visible


def test_device_text_is_escaped_and_control_characters_are_marked() -> None:
    shown = str(visible("<b>x</b> & \x1b[1m\x00\x7f\x9b end"))
    assert "<b>" not in shown and "&lt;b&gt;x&lt;/b&gt; &amp;" in shown
    assert "\x1b" not in shown and "\x00" not in shown and "\x7f" not in shown
    assert '0x1b">^[</span>[1m' in shown
    assert '0x00">^@</span>' in shown and '0x7f">^?</span>' in shown
    assert '0x9b">\\x9b</span>' in shown


def test_tabs_and_newlines_are_kept() -> None:
    assert str(visible("a\tb\nc")) == "a\tb\nc"


def test_volatile_lines_are_left_out_of_a_diff_unless_asked_for() -> None:
    old = "! Last configuration change at 10:00\nhostname r1\nntp server 1.1.1.1\n"
    new = "! Last configuration change at 11:00\nhostname r1\nntp server 2.2.2.2\n"
    hidden = diffview.build(old, new)
    assert (hidden.added, hidden.removed, hidden.hidden) == (1, 1, 2)
    assert [line.kind for line in hidden.unified] == ["same", "removed", "added"]
    assert [row.kind for row in hidden.side] == ["same", "changed"]
    shown = diffview.build(old, new, hide_volatile=False)
    assert (shown.added, shown.removed, shown.hidden) == (2, 2, 0)


def test_identical_outputs_but_for_clocks_are_no_change() -> None:
    view = diffview.build("!Time: 10:00\nx\n", "!Time: 11:00\nx\n")
    assert view.identical and view.hidden == 2


def test_far_apart_changes_are_separate_hunks_with_their_line_numbers() -> None:
    old = "\n".join(f"line {n}" for n in range(40))
    new = old.replace("line 2\n", "line two\n").replace("line 35", "line 35b")
    view = diffview.build(old, new)
    assert any(line.kind == "gap" for line in view.unified)
    removed = [line for line in view.unified if line.kind == "removed"]
    assert [(line.old_no, line.text) for line in removed] == [(3, "line 2"), (36, "line 35")]


def test_lines_history_sets_aside_are_hidden_by_their_index() -> None:
    from netcron.ui.pages import volatile_lines

    old, new = "a\nfan speed 5120 rpm\nb\n", "a\nfan speed 5200 rpm\nb\n"
    assert not diffview.build(old, new).identical  # not volatile by the console's own rules
    marked_old = volatile_lines(old, "linux", [r"^fan speed "])  # a command's ignore_lines
    marked_new = volatile_lines(new, "linux", [r"^fan speed "])
    assert marked_old == marked_new == frozenset({1})
    view = diffview.build(old, new, volatile_old=marked_old, volatile_new=marked_new)
    assert view.identical and view.hidden == 2
    shown = diffview.build(
        old, new, hide_volatile=False, volatile_old=marked_old, volatile_new=marked_new
    )
    assert (shown.added, shown.removed) == (1, 1)
