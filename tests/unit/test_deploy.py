"""deploy/: the alert rules and the dashboard name only metrics netcron exports.

Expressions are parsed by ``promql-parser`` (a port of Prometheus' own PromQL parser);
where ``promtool`` is installed (Debian's ``prometheus`` package), Prometheus itself
checks the rules too and runs ``deploy/prometheus/alerts_test.yml``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from netcron.observability.metrics import API, EXECUTOR, WORKER

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "netcron.json"
#: Series Prometheus makes itself.
BUILTIN = {"up"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exported() -> set[str]:
    names = set()
    for registry in (API, WORKER, EXECUTOR):
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def selectors(node: Any) -> Iterator[str]:
    """The metric name of every selector in a parsed expression."""
    if type(node).__name__ == "VectorSelector":
        yield node.name
    for child_name in ("lhs", "rhs", "expr", "args", "param", "vector_selector"):
        child = getattr(node, child_name, None)
        for item in child if isinstance(child, list) else [child]:
            if item is not None:
                yield from selectors(item)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_every_alert_rule_parses_and_names_real_metrics() -> None:
    known = exported() | BUILTIN
    for rule in rules():
        names = set(selectors(promql_parser.parse(rule["expr"])))
        assert names, rule["alert"]
        assert names <= known, f"{rule['alert']} names unknown metrics {names - known}"


def test_the_alerts_the_issue_asks_for_are_there() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert {
        "NetcronRunFailureRate",
        "NetcronFireLagHigh",
        "NetcronNoExecutorPolling",
        "NetcronRelayBacklogGrowing",
    } <= set(by_name)
    assert "> 5" in by_name["NetcronFireLagHigh"]["expr"]
    for rule in by_name.values():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_every_dashboard_query_parses_and_names_real_metrics() -> None:
    known = exported()
    queries = dashboard_queries()
    assert len(queries) >= 10
    for query in queries:
        names = set(selectors(promql_parser.parse(query)))
        assert names and names <= known, f"{query} names unknown metrics {names - known}"


def test_the_dashboard_shows_what_the_issue_lists() -> None:
    shown = {
        name for query in dashboard_queries() for name in selectors(promql_parser.parse(query))
    }
    for metric in (
        "netcron_runs_total",
        "netcron_fire_lag_seconds_bucket",
        "netcron_start_lag_seconds_bucket",
        "netcron_executor_slots_in_use",
        "netcron_tasks_pending",
        "netcron_results_pending",
        "netcron_http_request_duration_seconds_bucket",
    ):
        assert metric in shown, metric


def test_grafana_provisions_the_dashboard_from_prometheus() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service in ("prometheus", "grafana"):
        for volume in compose[service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert {panel["datasource"]["uid"] for panel in panels} == {datasource["uid"]}


def test_prometheus_scrapes_the_port_compose_gives_the_services() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    ports = {
        job["job_name"]: job["dns_sd_configs"][0]["port"]
        for job in config["scrape_configs"]
        if "dns_sd_configs" in job
    }
    for service in ("worker", "executor"):
        port = int(compose[service]["environment"]["NETCRON_METRICS_PORT"])
        assert ports[f"netcron-{service}"] == port


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    for args in (["check", "rules", str(ALERTS)], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(
            ["promtool", *args],
            cwd=DEPLOY / "prometheus",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
