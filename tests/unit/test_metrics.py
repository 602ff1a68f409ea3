"""The metric definitions: Prometheus naming, fixed cardinality, buckets for seconds."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, Histogram

from netcron.api.telemetry import RequestTelemetry
from netcron.observability import metrics
from netcron.observability.metrics import API, EXECUTOR, HTTP_REQUEST_DURATION, LAG_BUCKETS, WORKER

REGISTRIES = {"api": API, "worker": WORKER, "executor": EXECUTOR}
ID_LABELS = {"run_id", "device_id", "schedule_id", "command_id", "webhook_id", "device", "url"}


def _ours(registry: CollectorRegistry) -> list[Counter | Histogram]:
    return [
        collector
        for collector in registry._collector_to_names  # type: ignore[attr-defined]
        if getattr(collector, "_name", "").startswith("netcron_")
    ]


@pytest.mark.parametrize("service", REGISTRIES)
def test_metric_names_follow_prometheus_conventions(service: str) -> None:
    families = [
        family for family in REGISTRIES[service].collect() if family.name.startswith("netcron_")
    ]
    assert families, service
    for family in families:
        assert "_ms" not in family.name and "millis" not in family.name, family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name


@pytest.mark.parametrize("service", REGISTRIES)
def test_no_metric_is_labelled_with_an_id(service: str) -> None:
    for collector in _ours(REGISTRIES[service]):
        assert not ID_LABELS & set(collector._labelnames), collector._name  # type: ignore[union-attr]


def test_each_metric_belongs_to_one_service() -> None:
    names = [
        family.name
        for registry in REGISTRIES.values()
        for family in registry.collect()
        if family.name.startswith("netcron_")
    ]
    assert len(names) == len(set(names))


def test_lag_buckets_resolve_seconds_level_lags() -> None:
    assert tuple(sorted(LAG_BUCKETS)) == LAG_BUCKETS
    assert LAG_BUCKETS[0] <= 0.01
    assert LAG_BUCKETS[-1] >= 60
    assert 1.0 in LAG_BUCKETS and 5.0 in LAG_BUCKETS  # the fire-lag alert's threshold is a bound
    between_1_and_10 = [b for b in LAG_BUCKETS if 1 <= b <= 10]
    assert len(between_1_and_10) >= 3


def test_lag_is_never_negative() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    assert metrics.lag_seconds(now + timedelta(seconds=0.3), now) == 0.0
    assert metrics.lag_seconds(now - timedelta(seconds=2), now) == 2.0


def _requests(route: str, status: str) -> float:
    value = API.get_sample_value(
        "netcron_http_request_duration_seconds_count",
        {"method": "GET", "route": route, "status": status},
    )
    return value or 0.0


def test_requests_are_labelled_by_route_template_not_path() -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    app.add_middleware(RequestTelemetry)
    client = TestClient(app)
    before = _requests("/things/{thing_id}", "200"), _requests("unmatched", "404")
    assert client.get("/things/abc").status_code == 200
    assert client.get("/things/def").status_code == 200
    assert client.get("/no/such/path/123").status_code == 404
    assert _requests("/things/{thing_id}", "200") == before[0] + 2
    assert _requests("unmatched", "404") == before[1] + 1
    assert HTTP_REQUEST_DURATION._labelnames == ("method", "route", "status")
