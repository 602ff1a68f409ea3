"""The fault suite itself, end to end: a tiny load, one fault, and the report's invariants."""

from __future__ import annotations

import json

import nats
import pytest

from netcron.devstack import EmbeddedNats
from netcron.tools.chaos import ChaosOptions, run_chaos

pytestmark = pytest.mark.integration


def test_the_chaos_suite_kills_the_executor_and_reports_no_fire_lost_or_doubled(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("chaos")
    options = ChaosOptions(
        faults=["executor"],
        schedules=2,
        devices=1,
        delay=0.05,
        ttl=4,
        warmup=2,
        baseline=0,
        lead=2,
        down=1,
        settle=7,
        patience=20,
        out=tmp / "out",
        data_dir=tmp / "stack",
    )
    run = run_chaos(options)

    [report] = run.reports
    assert report.fault == "executor"
    assert report.window_s >= 10
    assert report.expected == 2 * report.window_s
    assert report.recorded == report.expected
    assert (report.lost, report.duplicated, report.unexpected, report.run_twice) == (0, 0, 0, 0)
    assert report.recovery_s is not None
    assert report.crashed == []
    executor_logs = (tmp / "stack" / "logs" / "executor.log").read_text()
    assert executor_logs.count("is consuming") == 2, "the executor was not killed and restarted"
    assert run.json_path is not None
    assert json.loads(run.json_path.read_text())["faults"][0]["lost"] == 0


async def test_a_stopped_nats_starts_again_on_its_port_with_its_streams(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats") / "store")
    url = server.start(preferred_port=None)
    try:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"])
        await js.publish("keep.one", b"kept")
        await nc.close()
        server.stop()
        assert server.start_again() == url
        nc = await nats.connect(url)
        message = await nc.jetstream().get_last_msg("KEEP", "keep.one")
        await nc.close()
    finally:
        server.stop()
    assert message.data == b"kept"
