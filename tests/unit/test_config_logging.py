"""Settings from the environment; log lines carry run and schedule ids."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from netcron.config import Settings
from netcron.logging import JsonFormatter, PlainFormatter


def test_settings_read_netcron_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETCRON_API_PORT", "9001")
    monkeypatch.setenv("NETCRON_LOG_LEVEL", "debug")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.api_port == 9001
    assert settings.log_level == "DEBUG"


def test_invalid_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETCRON_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="log level"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def _record() -> logging.LogRecord:
    record = logging.LogRecord("netcron.test", logging.INFO, __file__, 1, "run %s", ("done",), None)
    record.run_id = "s:1"
    record.schedule_id = "s"
    return record


def test_plain_lines_carry_the_ids() -> None:
    line = PlainFormatter().format(_record())
    assert "run done" in line
    assert "run_id=s:1" in line
    assert "schedule_id=s" in line


def test_json_lines_carry_the_ids() -> None:
    payload = json.loads(JsonFormatter().format(_record()))
    assert payload["message"] == "run done"
    assert payload["run_id"] == "s:1"
    assert payload["level"] == "INFO"


def test_log_lines_carry_no_terminal_colour_field() -> None:
    record = _record()
    record.color_message = "\x1b[32mrun %s\x1b[0m"
    assert "color_message" not in PlainFormatter().format(record)
    assert "color_message" not in json.loads(JsonFormatter().format(record))
