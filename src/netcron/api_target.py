"""Which api a client command (`netcron events`) talks to, with which key, and why.

In order: the command's options, then the settings (environment or `.env`), then the
files `netcron dev` leaves in its data dir (``.netcron/api.url``, ``.netcron/api.key``)
in the current directory or one above it, then the default URL. The command says on
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
    settings: Settings, *, url: str = "", key: str = "", cwd: Path | None = None
) -> ApiTarget:
    dev_dir = find_dev_dir((cwd or Path.cwd()).resolve())
    url_source = key_source = ""
    if url:
        url_source = "--url"
    elif "api_url" in settings.model_fields_set:
        url, url_source = settings.api_url, "NETCRON_API_URL"
    elif dev_dir is not None and _read(dev_dir / "api.url"):
        url, url_source = _read(dev_dir / "api.url"), str(dev_dir / "api.url")
    else:
        url, url_source = settings.api_url, "the default"
    if key:
        key_source = "--key"
    elif settings.client_api_key():
        key = settings.client_api_key() or ""
        key_source = "NETCRON_API_KEY" if settings.api_key else "NETCRON_API_KEYS"
    elif dev_dir is not None and _read(dev_dir / "api.key"):
        key, key_source = _read(dev_dir / "api.key"), str(dev_dir / "api.key")
    return ApiTarget(url=url.rstrip("/"), key=key, url_source=url_source, key_source=key_source)
