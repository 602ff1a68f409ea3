"""The compose file and Dockerfile, checked without a Docker engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from netcron.cli import command_names
from netcron.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _netcron_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {
        name: spec
        for name, spec in compose["services"].items()
        if str(spec.get("image", "")).startswith("netcron")
    }


def test_compose_brings_up_every_part() -> None:
    services = set(_compose()["services"])
    assert {"api", "worker", "executor", "postgres", "nats", "temporal", "temporal-ui"} <= services


def test_every_netcron_variable_in_compose_is_a_real_setting() -> None:
    fields = {f"NETCRON_{name.upper()}" for name in Settings.model_fields}
    for name, spec in _netcron_services(_compose()).items():
        unknown = {key for key in spec["environment"] if key.startswith("NETCRON_")} - fields
        assert not unknown, f"{name} sets unknown settings {unknown}"


def test_every_service_command_exists() -> None:
    commands = command_names()
    for name, spec in _netcron_services(_compose()).items():
        program, subcommand = spec["command"][:2]
        assert program == "netcron", name
        assert subcommand in commands, f"{name} runs unknown command {subcommand}"


def test_services_wait_for_healthy_dependencies() -> None:
    compose = _compose()
    for name in ("api", "worker"):
        depends = compose["services"][name]["depends_on"]
        assert depends["temporal"]["condition"] == "service_healthy", name
        assert depends["nats"]["condition"] == "service_healthy", name
    for name in ("postgres", "nats", "temporal", "api"):
        assert "healthcheck" in compose["services"][name], name


def test_env_example_lists_every_setting() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert listed == {f"NETCRON_{name.upper()}" for name in Settings.model_fields}


def test_image_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2
    assert "\nUSER netcron" in dockerfile


def test_temporal_gets_the_timer_config() -> None:
    temporal = _compose()["services"]["temporal"]
    [mount] = temporal["volumes"]
    source = mount.split(":")[0]
    config = yaml.safe_load((ROOT / source).read_text())
    assert config["history.timerProcessorMaxTimeShift"][0]["value"] == "10ms"
    assert config["history.timerProcessorMaxPollRPS"][0]["value"] >= 1000
