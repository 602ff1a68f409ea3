"""The fault suite's figures: fires lost, rows doubled, commands run twice, recovery."""

from __future__ import annotations

from collections import Counter

from netcron.tools.chaos_report import (
    Row,
    Window,
    analyse,
    expected_fires,
    markdown_table,
    repeated_executions,
)

START = 1_800_000_000
WINDOW = Window("worker", "kill -9", START, START + 5.2, START + 8.4, START + 20)
EVERY_SECOND = {"s1": "* * * * * *", "s2": "* * * * * *"}


def _ok(schedule: str, second: int, latency: float = 0.3) -> Row:
    return Row(schedule, second, "succeeded", latency)


def _all_ok(skip: frozenset[tuple[str, int]] = frozenset()) -> list[Row]:
    return [
        _ok(s, START + i) for s in EVERY_SECOND for i in range(20) if (s, START + i) not in skip
    ]


def test_expected_fires_are_the_crons_seconds_in_the_half_open_window() -> None:
    fires = expected_fires({"s1": "* * * * * *", "s2": "*/5 * * * * *"}, START, START + 10)
    assert {second for s, second in fires if s == "s1"} == set(range(START, START + 10))
    assert {second for s, second in fires if s == "s2"} == {START, START + 5}


def test_a_clean_window_has_nothing_lost_or_doubled_and_no_recovery_time() -> None:
    expected = expected_fires(EVERY_SECOND, WINDOW.start, WINDOW.end)
    report = analyse(WINDOW, expected, _all_ok(), Counter())
    assert (report.expected, report.recorded, report.lost, report.duplicated) == (40, 40, 0, 0)
    assert report.recovery_s == 0
    assert report.met_targets


def test_a_fire_without_a_final_row_is_lost_and_a_second_row_is_a_duplicate() -> None:
    expected = expected_fires(EVERY_SECOND, WINDOW.start, WINDOW.end)
    rows = _all_ok(skip=frozenset({("s1", START + 3), ("s2", START + 4)}))
    rows += [
        Row("s2", START + 4, "running", 0.5),
        Row("s1", START + 6, "skipped", 0.1, "overlap"),
    ]
    report = analyse(WINDOW, expected, rows, Counter())
    assert report.lost == 2
    assert report.duplicated == 1
    assert report.statuses == {"succeeded": 38, "running": 1, "skipped": 1}
    assert report.reasons == {"": 1, "overlap": 1}
    assert not report.met_targets


def test_recovery_counts_from_the_process_back_to_the_first_second_that_flows() -> None:
    expected = expected_fires(EVERY_SECOND, WINDOW.start, WINDOW.end)
    rows = _all_ok(skip=frozenset({("s1", START + 12), ("s2", START + 9)}))
    rows += [Row("s1", START + 12, "timed_out", 10.0), Row("s2", START + 9, "succeeded", 2.5)]
    report = analyse(WINDOW, expected, rows, Counter())
    assert report.lost == 0
    # s1's fire at +12 went wrong; from +13 everything flows; back at +8.4.
    assert report.recovery_s == 4.6
    assert report.flowing == [2] * 9 + [1, 2, 2, 1] + [2] * 7


def test_a_window_that_never_flows_again_has_no_recovery_time() -> None:
    expected = expected_fires(EVERY_SECOND, WINDOW.start, WINDOW.end)
    rows = _all_ok(skip=frozenset({("s1", START + 19)}))
    report = analyse(WINDOW, expected, rows, Counter())
    assert report.lost == 1
    assert report.recovery_s is None
    assert "not in the window" in markdown_table([report])


def test_only_repeats_of_the_same_run_and_attempt_in_the_window_count() -> None:
    executions = Counter(
        {
            (f"s1:{START + 2}", 1): 2,  # run twice: counts
            (f"s1:{START + 3}", 1): 1,
            (f"s1:{START + 3}", 2): 1,  # a retry is another attempt
            (f"s2:{START + 30}", 1): 3,  # outside the window
            (f"other:{START + 2}", 1): 2,  # not one of the window's schedules
            (f"s1:{START + 4}:manual-1a2b", 1): 2,  # a manual run, not a fire
        }
    )
    assert repeated_executions(executions, {"s1", "s2"}, START, START + 20) == 1
