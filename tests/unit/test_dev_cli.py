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


def _dev_files(root: Path, url: str = "http://127.0.0.1:8001", key: str = "nc_dev") -> Path:
    data = root / ".netcron"
    data.mkdir()
    (data / "api.key").write_text(key + "\n")
    (data / "api.url").write_text(url + "\n")
    return data


def test_a_client_finds_the_dev_key_and_url_in_dot_netcron(tmp_path: Path) -> None:
    data = _dev_files(tmp_path)
    (tmp_path / "src").mkdir()
    target = find_api_target(_settings(), cwd=tmp_path / "src", environment=_settings())
    assert (target.url, target.key) == ("http://127.0.0.1:8001", "nc_dev")
    assert str(data / "api.key") in target.describe()
    assert str(data / "api.url") in target.describe()


def test_a_running_dev_comes_before_a_compose_env(tmp_path: Path) -> None:
    (tmp_path / "with-dev").mkdir()
    (tmp_path / "without-dev").mkdir()
    _dev_files(tmp_path / "with-dev")
    from_env_file = _settings(api_url="http://localhost:8000", api_keys="compose-key")
    target = find_api_target(from_env_file, cwd=tmp_path / "with-dev", environment=_settings())
    assert (target.url, target.key) == ("http://127.0.0.1:8001", "nc_dev")
    alone = find_api_target(from_env_file, cwd=tmp_path / "without-dev", environment=_settings())
    assert (alone.url, alone.key) == ("http://localhost:8000", "compose-key")
    assert alone.key_source == ".env NETCRON_API_KEYS"


def test_the_environment_and_options_come_before_dot_netcron(tmp_path: Path) -> None:
    _dev_files(tmp_path)
    exported = _settings(api_key="exported", api_url="http://api:8000")
    target = find_api_target(exported, cwd=tmp_path, environment=exported)
    assert (target.key, target.key_source) == ("exported", "NETCRON_API_KEY")
    assert (target.url, target.url_source) == ("http://api:8000", "NETCRON_API_URL")
    flagged = find_api_target(
        _settings(), key="flag", url="http://x:1/", cwd=tmp_path, environment=_settings()
    )
    assert (flagged.key, flagged.url, flagged.url_source) == ("flag", "http://x:1", "--url")


def test_redacted_urls_keep_everything_but_the_password() -> None:
    url = "postgresql+asyncpg://netcron:s3cret@localhost:5432/netcron"
    assert redact_url(url) == "postgresql+asyncpg://netcron:***@localhost:5432/netcron"
    assert redact_url("nats://localhost:4222") == "nats://localhost:4222"
