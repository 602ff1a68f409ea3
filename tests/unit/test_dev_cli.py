"""`netcron dev` and client commands on a first run: what they say, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from netcron.api_target import find_api_target
from netcron.cli import main
from netcron.config import Settings
from netcron.external_servers import redact_url


def test_dev_without_the_embedded_servers_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)  # import pgserver now fails
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["dev", "--data-dir", str(tmp_path / "data")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "pip install 'netcron[dev-stack]'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()


def _settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_a_client_finds_the_dev_key_and_url_in_dot_netcron(tmp_path: Path) -> None:
    data = tmp_path / ".netcron"
    data.mkdir()
    (data / "api.key").write_text("nc_dev\n")
    (data / "api.url").write_text("http://127.0.0.1:8001\n")
    (tmp_path / "src").mkdir()
    target = find_api_target(_settings(), cwd=tmp_path / "src")
    assert (target.url, target.key) == ("http://127.0.0.1:8001", "nc_dev")
    assert str(data / "api.key") in target.describe()
    assert str(data / "api.url") in target.describe()


def test_configured_key_and_options_come_before_dot_netcron(tmp_path: Path) -> None:
    (tmp_path / ".netcron").mkdir()
    (tmp_path / ".netcron" / "api.key").write_text("nc_dev\n")
    target = find_api_target(_settings(api_key="configured"), cwd=tmp_path)
    assert (target.key, target.key_source) == ("configured", "NETCRON_API_KEY")
    flagged = find_api_target(_settings(), key="flag", url="http://x:1/", cwd=tmp_path)
    assert (flagged.key, flagged.url, flagged.url_source) == ("flag", "http://x:1", "--url")


def test_redacted_urls_keep_everything_but_the_password() -> None:
    url = "postgresql+asyncpg://netcron:s3cret@localhost:5432/netcron"
    assert redact_url(url) == "postgresql+asyncpg://netcron:***@localhost:5432/netcron"
    assert redact_url("nats://localhost:4222") == "nats://localhost:4222"
