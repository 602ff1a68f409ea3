"""Settings: the only place that reads the environment (NETCRON_* variables and `.env`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting netcron has; each service reads the ones it needs."""

    model_config = SettingsConfigDict(
        env_prefix="NETCRON_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        "postgresql+asyncpg://netcron:netcron@localhost:5432/netcron",
        description="SQLAlchemy URL of PostgreSQL (asyncpg driver); only the api uses it.",
    )
    temporal_address: str = Field("localhost:7233", description="Temporal frontend host:port.")
    temporal_namespace: str = Field("default", description="Temporal namespace.")
    temporal_task_queue: str = Field("netcron", description="Task queue of the worker.")
    nats_url: str = Field(
        "nats://localhost:4222", description="NATS server URL(s), comma-separated."
    )
    api_url: str = Field(
        "http://localhost:8000", description="Base URL of the api, for the worker."
    )
    api_host: str = Field("0.0.0.0", description="Address the api listens on.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port the api listens on.")
    api_workers: int = Field(
        1, ge=1, le=64, description="api processes (uvicorn workers) sharing the port."
    )
    api_keys: str = Field(
        "",
        description="API keys: comma-separated `key` or `name:key:read+write+results+codec`.",
    )
    api_key: str = Field(
        "", description="Key the worker presents to the api (default: one with `results`)."
    )
    secret_key: str = Field(
        "",
        description="Fernet keys, comma-separated, newest first; they encrypt device credentials.",
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_format: Literal["plain", "json"] = Field("plain", description="Log line format.")
    executor_id: str = Field(
        "", description="Name of this executor in results (default: host:pid)."
    )
    executor_concurrency: int = Field(
        16,
        ge=1,
        le=10_000,
        description="Tasks one executor runs at once (a job's max_in_flight goes up to 10,000).",
    )
    executor_execution_log: str = Field(
        "",
        description="File the executor appends `<run_id> <attempt>` to as each command starts.",
    )
    executor_driver: Literal["emulated", "ssh"] = Field(
        "emulated", description="How commands run: emulated, or ssh to the real device."
    )
    emulated_delay_min: float = Field(
        0.2, ge=0, description="Emulated command: shortest delay (s)."
    )
    emulated_delay_max: float = Field(1.0, ge=0, description="Emulated command: longest delay (s).")
    emulated_failure_rate: float = Field(
        0.0, ge=0, le=1, description="Emulated command: share of runs that fail (0..1)."
    )
    output_max_bytes: int = Field(1_048_576, ge=1024, description="Output kept per run (bytes).")
    reconcile_interval: float = Field(
        60, ge=0, description="Seconds between reconciliations of schedules (0: only at start)."
    )
    codec_origins: str = Field(
        "",
        description="Browser origins (the Temporal UI) allowed to call /codec, comma-separated.",
    )
    connect_timeout: float = Field(
        0, ge=0, description="Give up on a dependency at start after this many seconds (0: never)."
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    def codec_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.codec_origins.split(",") if origin.strip()]

    def client_api_key(self) -> str | None:
        """The key this service presents to the api."""
        from netcron.apikeys import key_for_scope

        return self.api_key or key_for_scope(self.api_keys, "results")


@lru_cache
def get_settings() -> Settings:
    return Settings()
