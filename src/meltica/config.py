"""Settings from the environment (`MELTICA_*`), validated by pydantic-settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the composition root needs to choose and wire backends."""

    model_config = SettingsConfigDict(env_prefix="MELTICA_", extra="ignore")

    data_dir: Path = Field(
        default=Path.home() / ".meltica", description="Embedded log and read models live here."
    )
    log_backend: Literal["sqlite", "memory", "kafka"] = Field(
        default="sqlite", description="sqlite (embedded default), memory (tests) or kafka (production)."
    )
    kafka_bootstrap: str | None = Field(default=None, description="Kafka bootstrap servers, host:port[,...].")
    schema_registry_url: str | None = Field(
        default=None, description="Confluent-compatible schema registry; unset: single-object encoding."
    )
    namespace: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_-]*$",
        description="Prefix of every Kafka topic and group (several systems on one cluster).",
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the read models.")
    partitions: int = Field(default=4, ge=1, le=1024, description="Partitions of each topic created.")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="FULL", description="FULL survives power loss; NORMAL survives a process crash."
    )
    api_host: str = Field(default="127.0.0.1", description="Where `meltica up` serves the REST API.")
    api_port: int = Field(default=8080, ge=0, le=65535, description="REST API port (0: any free port).")
    api_key: str | None = Field(default=None, description="The CLI's API key (from `meltica keys create`).")
    api_tls_cert: Path | None = Field(default=None, description="PEM certificate: serve the API over TLS.")
    api_tls_key: Path | None = Field(default=None, description="PEM private key of the certificate.")
    api_url: str = Field(default="http://127.0.0.1:8080", description="Where the CLI finds the REST API.")
    tracing: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Export OpenTelemetry spans: none (ids only), console, or otlp (extra 'otlp').",
    )
    trace_sample_ratio: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Fraction of traces recorded; all events carry trace context.",
    )
    client_id: str = Field(default="meltica", description="Kafka client id and transactional id prefix.")

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log.db"

    @property
    def read_model_url(self) -> str:
        """The read models' database: the configured URL, else SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'readmodels.db'}"
