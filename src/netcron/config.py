"""Settings: the only place that reads the environment (NETCRON_* variables and `.env`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
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
    results_retention_days: int = Field(
        90, ge=0, description="Runs older than this many days are deleted (0: keep all)."
    )
    versions_retention_days: int = Field(
        0,
        ge=0,
        description="Change points older than this many days are deleted, the newest of each "
        "command kept (0: keep all).",
    )
    retention_interval: float = Field(
        3600, gt=0, description="Seconds between retention passes of the api."
    )
    codec_origins: str = Field(
        "",
        description="Browser origins (the Temporal UI) allowed to call /codec, comma-separated.",
    )
    connect_timeout: float = Field(
        0, ge=0, description="Give up on a dependency at start after this many seconds (0: never)."
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port the worker and the executor serve /metrics on (0 or unset: off; "
        "the api serves /metrics on its own port).",
    )
    otlp_endpoint: str = Field(
        "",
        validation_alias=AliasChoices("NETCRON_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector for traces, e.g. http://otel-collector:4318 "
        "(also read from OTEL_EXPORTER_OTLP_ENDPOINT; empty: no traces).",
    )
    webhook_allowed_networks: str = Field(
        "",
        description="Networks (CIDR, comma-separated) webhook receivers must be in "
        "(empty: any address).",
    )
    webhook_retry_min: float = Field(
        1.0, gt=0, description="Seconds before a failed webhook delivery is first retried."
    )
    webhook_retry_max: float = Field(
        300.0, gt=0, description="Longest wait between two webhook delivery attempts (s)."
    )
    webhook_timeout: float = Field(
        10.0, gt=0, le=60, description="Seconds a webhook receiver has to answer."
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        import ipaddress

        for network in (part.strip() for part in value.split(",")):
            if network:
                try:
                    ipaddress.ip_network(network, strict=False)
                except ValueError:
                    raise ValueError(f"{network!r} is not a network (CIDR)") from None
        return value

    def webhook_network_list(self) -> list[str]:
        return [net.strip() for net in self.webhook_allowed_networks.split(",") if net.strip()]

    def codec_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.codec_origins.split(",") if origin.strip()]

    def client_api_key(self) -> str | None:
        """The key this service presents to the api."""
        from netcron.apikeys import key_for_scope

        return self.api_key or key_for_scope(self.api_keys, "results")


@lru_cache
def get_settings() -> Settings:
    return Settings()
