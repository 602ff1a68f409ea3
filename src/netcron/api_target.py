"""Which api a client command (`netcron events`) talks to, with which key, and why.

In order: the command's options, then the environment, then the files a `netcron dev`
writes to its data dir (``.netcron/api.url``, ``.netcron/api.key``) in the current
directory or one above it, then `.env` and the defaults. The command says on
stderr where it took each from, so a 401 is never a mystery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from netcron.config import Settings

DATA_DIR = ".netcron"


@dataclass(frozen=True)
class ApiTarget:
    url: str
    key: str
    url_source: str
    key_source: str

    def describe(self) -> str:
        key = f"key from {self.key_source}" if self.key else "no API key"
        return f"api {self.url} (from {self.url_source}), {key}"


def find_dev_dir(start: Path) -> Path | None:
    """The nearest ``.netcron/`` holding an api key or URL, from ``start`` upwards."""
    for directory in (start, *start.parents):
        candidate = directory / DATA_DIR
        if (candidate / "api.key").is_file() or (candidate / "api.url").is_file():
            return candidate
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def find_api_target(
    settings: Settings,
    *,
    url: str = "",
    key: str = "",
    cwd: Path | None = None,
    environment: Settings | None = None,
) -> ApiTarget:
    """Options, then the environment, then a running `netcron dev`, then `.env` or defaults.

    A `netcron dev` beside a `.env` written for the containers is the case this order is
    for: its files say where it listens and which key it uses, while the `.env` names
    the containers' api. ``environment`` is the settings without `.env` (for tests).
    """
    if environment is None:
        environment = Settings(_env_file=None)
    dev_dir = find_dev_dir((cwd or Path.cwd()).resolve())
    dev_url = _read(dev_dir / "api.url") if dev_dir else ""
    dev_key = _read(dev_dir / "api.key") if dev_dir else ""
    explicit = environment.model_fields_set
    url_source = key_source = ""
    if url:
        url_source = "--url"
    elif "api_url" in explicit:
        url, url_source = environment.api_url, "NETCRON_API_URL"
    elif dev_url and dev_dir:
        url, url_source = dev_url, str(dev_dir / "api.url")
    else:
        url = settings.api_url
        url_source = ".env NETCRON_API_URL" if "api_url" in settings.model_fields_set else "default"
    if key:
        key_source = "--key"
    elif explicit & {"api_key", "api_keys"} and environment.client_api_key():
        key = environment.client_api_key() or ""
        key_source = "NETCRON_API_KEY" if environment.api_key else "NETCRON_API_KEYS"
    elif dev_key and dev_dir:
        key, key_source = dev_key, str(dev_dir / "api.key")
    elif settings.client_api_key():
        key = settings.client_api_key() or ""
        key_source = ".env NETCRON_API_KEY" if settings.api_key else ".env NETCRON_API_KEYS"
    return ApiTarget(url=url.rstrip("/"), key=key, url_source=url_source, key_source=key_source)
