"""`NETCRON_API_WORKERS`: one process, or uvicorn workers built from the environment."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi import FastAPI

from netcron.api import app as app_module
from netcron.config import Settings
from netcron.crypto import generate_key

KEY = generate_key()


def _captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(app_module.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_one_worker_serves_the_app_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _captured(monkeypatch)
    app_module.run_api(Settings(_env_file=None, secret_key=KEY, api_port=8123))
    [(app, options)] = calls
    assert isinstance(app, FastAPI)
    assert options["port"] == 8123 and "workers" not in options


def test_several_workers_each_build_the_app_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _captured(monkeypatch)
    app_module.run_api(Settings(_env_file=None, secret_key=KEY, api_workers=3))
    [(target, options)] = calls
    assert (options["workers"], options["factory"]) == (3, True)
    module, _, name = target.partition(":")
    factory = getattr(importlib.import_module(module), name)
    configured: list[str | None] = []
    monkeypatch.setattr(
        app_module, "setup_logging", lambda *args, service=None: configured.append(service)
    )
    monkeypatch.setattr(
        app_module, "get_settings", lambda: Settings(_env_file=None, secret_key=KEY)
    )
    assert isinstance(factory(), FastAPI)
    assert configured == ["api"]
