"""Settings from the environment (`MELTICA_*`), validated by pydantic-settings."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from meltica.config_file import (
    ConfigFileError,
    Document,
    YamlFileSource,
    config_path,
    explain,
    read_document,
    unknown_keys,
)
from meltica.control.specs import InstrumentSpec, LimitsRequest, StrategySpec, VenueSpec
from meltica.processors.bars import parse_width

_DOCUMENT: ContextVar[Document | None] = ContextVar("meltica_config_document", default=None)

# What `POST /v1/admin/reload` and SIGHUP apply to a running process; the rest needs a restart.
RELOADABLE = ("risk", "instruments", "venues", "strategies")
SECRETS = ("api_key", "database_url", "schema_registry_url")


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
    snapshot_every: int = Field(
        default=10_000,
        ge=0,
        description="Kafka services: save a partition's state after this many inputs (0: never).",
    )
    bar_widths: list[str] = Field(
        default_factory=list,
        description="Time bars built from trades and quotes, e.g. ['1m', '5m'] (empty: no bar builder).",
    )

    @field_validator("bar_widths")
    @classmethod
    def _widths(cls, value: list[str]) -> list[str]:
        for width in value:
            parse_width(width)
        return value

    risk: list[LimitsRequest] = Field(default_factory=list, description="Risk limits per scope.")
    instruments: list[InstrumentSpec] = Field(default_factory=list, description="Instruments to define.")
    venues: list[VenueSpec] = Field(default_factory=list, description="Market-data/venue connections.")
    strategies: list[StrategySpec] = Field(default_factory=list, description="Strategy instances.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then `MELTICA_*` variables, then the YAML file (`MELTICA_CONFIG_PATH`)."""
        document = _DOCUMENT.get()
        if document is None:
            path = config_path()
            document = read_document(path) if path else None
        return init_settings, env_settings, YamlFileSource(settings_cls, document)

    @field_validator("data_dir", "api_tls_cert", "api_tls_key")
    @classmethod
    def _home(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log.db"

    @property
    def read_model_url(self) -> str:
        """The read models' database: the configured URL, else SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'readmodels.db'}"


def load_settings(path: Path | None = None) -> Settings:
    """The settings of `path` (default: `MELTICA_CONFIG_PATH`) under the environment; a problem is a
    `ConfigFileError` naming each bad key and its line in the file."""
    path = path or config_path()
    if path is None:
        try:
            return Settings()
        except ValidationError as err:
            raise explain(err, None) from None
    document = read_document(path)
    problems = unknown_keys(document, set(Settings.model_fields))
    token = _DOCUMENT.set(document)  # this file, already read, instead of MELTICA_CONFIG_PATH's
    try:
        settings = Settings()
    except ValidationError as err:
        problems += explain(err, document).problems
    finally:
        _DOCUMENT.reset(token)
    if problems:
        raise ConfigFileError(problems)
    return settings
