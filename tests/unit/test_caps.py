"""FireCaps: the bookkeeping of a fire's concurrency caps (no I/O)."""

from __future__ import annotations

from netcron.fleet.caps import FireCaps


def test_a_finished_run_is_dropped_and_a_waiting_one_leaves_its_queue() -> None:
    caps = FireCaps(max_in_flight=2, per_label={})
    for run_id in ("a", "b", "c", "d"):
        caps.add(run_id, [])
    assert caps.take() == ["a", "b"]
    caps.done("a")
    caps.drop("a")  # in flight, not waiting: nothing to remove
    caps.drop("c")  # waiting: its device is gone
    assert caps.waiting == 1
    assert caps.take() == ["d"]
    assert caps.waiting == 0


def test_a_run_put_back_first_is_taken_first_and_can_be_dropped() -> None:
    caps = FireCaps(max_in_flight=1, per_label={"site": 1})
    caps.add("a", ["s1"])
    caps.add("b", ["s1"])
    assert caps.take() == ["a"]
    caps.done("a")
    caps.add("a", ["s1"], first=True)
    caps.drop("b")
    assert caps.take() == ["a"]
    assert caps.waiting == 0
