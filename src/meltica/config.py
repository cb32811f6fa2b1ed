"""Settings from the environment (`MELTICA_*`), validated by pydantic-settings."""

from __future__ import annotations

import re
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from meltica.api.ratelimit import parse_rate
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
from meltica.domain.values import ROUTER_VENUE
from meltica.processors.bars import parse_width

_DOCUMENT: ContextVar[Document | None] = ContextVar("meltica_config_document", default=None)

# What `POST /v1/admin/reload` and SIGHUP apply to a running process; the rest needs a restart.
RELOADABLE = ("risk", "instruments", "venues", "strategies")
_KAFKA_TLS_FILES = ("kafka_ssl_ca_location", "kafka_ssl_certificate_location", "kafka_ssl_key_location")
SECRETS = ("api_key", "database_url", "schema_registry_url", "kafka_sasl_password", "kafka_ssl_key_password")


class Settings(BaseSettings):
    """Everything the composition root needs to choose and wire backends."""

    model_config = SettingsConfigDict(env_prefix="MELTICA_", extra="ignore")

    data_dir: Path = Field(
        default=Path.home() / ".meltica", description="Embedded log and read models live here."
    )
    log_backend: Literal["sqlite", "memory", "kafka"] = Field(
        default="sqlite",
        description="sqlite (embedded default), memory (tests) or kafka (production); "
        "unset, kafka when a Kafka bootstrap is configured.",
    )
    kafka_bootstrap: str | None = Field(default=None, description="Kafka bootstrap servers, host:port[,...].")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How Kafka clients connect (librdkafka security.protocol)."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism (SASL_* protocols only)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password (never shown).")
    kafka_sasl_password_file: Path | None = Field(
        default=None, description="File holding the SASL password (instead of kafka_sasl_password)."
    )
    kafka_ssl_ca_location: Path | None = Field(
        default=None, description="PEM CA bundle that verifies the brokers (default: the system's)."
    )
    kafka_ssl_certificate_location: Path | None = Field(
        default=None, description="PEM client certificate (mutual TLS)."
    )
    kafka_ssl_key_location: Path | None = Field(
        default=None, description="PEM key of the client certificate."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of the client key (never shown)."
    )
    kafka_ssl_key_password_file: Path | None = Field(
        default=None, description="File holding the client key's password."
    )
    kafka_ssl_verify_hostname: bool = Field(
        default=True, description="Check the broker certificate names the broker host (TLS)."
    )
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
    api_rate_read: str = Field(default="200/s", description="Requests per API key to read routes (N/s|m|h).")
    api_rate_trade: str = Field(default="100/s", description="Requests per API key to trading routes.")
    api_rate_admin: str = Field(default="200/s", description="Requests per API key to admin routes.")
    api_rate_auth_failures: str = Field(
        default="60/m", description="Failed authentications per client address before 429."
    )
    api_key_cache_seconds: float = Field(
        default=1.0, ge=0, le=60, description="Verified keys are cached this long (a revocation's delay)."
    )

    @field_validator("api_rate_read", "api_rate_trade", "api_rate_admin", "api_rate_auth_failures")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

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
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Process logs on stderr: text, or JSON lines with service, level, trace and span ids.",
    )
    client_id: str = Field(default="meltica", description="Kafka client id and transactional id prefix.")
    snapshot_every: int = Field(
        default=10_000,
        ge=0,
        description="Kafka services: save a partition's state after this many inputs (0: never).",
    )
    snapshot_key_file: Path | None = Field(
        default=None,
        description="HMAC key signing snapshots (default: <data_dir>/snapshot.key, made 0600 at first use).",
    )
    replay_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders a replay venue added or changed over the API may read, e.g. "
        "MELTICA_REPLAY_DIRS='[\"/srv/ticks\"]' (resolved, links followed; empty: <data_dir>/replay "
        "and the directory the server started in). The configuration file's venues may name any file.",
    )
    secret_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders the credential files of a live venue added or changed over the API must be "
        "in, e.g. MELTICA_SECRET_DIRS='[\"/etc/meltica/secrets\"]' (empty: <data_dir>/secrets). Keep "
        "them readable by the Meltica user only. The configuration file's venues may name any file.",
    )
    strategy_modules: list[str] = Field(
        default_factory=list,
        description="Module prefixes whose `module:Class` strategies the API may load (POST "
        "/v1/strategies, /v1/backtests), e.g. MELTICA_STRATEGY_MODULES='[\"mydesk.strategies\"]'. "
        "Importing runs the module's code: empty (the default) refuses every user module over the API.",
    )
    bar_widths: list[str] = Field(
        default_factory=list,
        description="Time bars built from trades and quotes, e.g. ['1m', '5m'] (empty: no bar builder).",
    )

    sim_venues: list[str] = Field(
        default_factory=lambda: ["SIM"],
        description="The simulated venues orders execute on, by venue code (instrument ids SYMBOL.CODE), "
        "e.g. ['SIMA', 'SIMB'] for two books to route across (venue SOR).",
    )

    @field_validator("sim_venues")
    @classmethod
    def _sim_venues(cls, value: list[str]) -> list[str]:
        for code in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", code):
                raise ValueError(f"sim_venues: {code!r} is not a venue code like SIM (letters, digits, _, -)")
            if code == ROUTER_VENUE:
                raise ValueError(f"sim_venues: {ROUTER_VENUE} is the smart order router, not a venue")
        if len(set(value)) != len(value):
            raise ValueError("sim_venues: a venue is named twice")
        return value

    @field_validator("strategy_modules")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", prefix):
                raise ValueError(f"strategy_modules: {prefix!r} is not a module name like mydesk.strategies")
        return value

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

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        """SASL settings that fit the protocol; `*_file` secrets read (their content never shown)."""
        for name in ("kafka_sasl_password", "kafka_ssl_key_password"):
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name) is not None:
                raise ValueError(f"set {name} or {name}_file, not both")
            setattr(self, name, SecretStr(read_secret(path.expanduser())))
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_sasl_mechanism, "
                "kafka_sasl_username and kafka_sasl_password (or kafka_sasl_password_file)"
            )
        if not sasl and self.kafka_sasl_mechanism:
            raise ValueError("kafka_sasl_mechanism needs kafka_security_protocol SASL_PLAINTEXT or SASL_SSL")
        tls = [n for n in _KAFKA_TLS_FILES if getattr(self, n) is not None]
        if tls and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError(f"{', '.join(tls)} need kafka_security_protocol SSL or SASL_SSL")
        return self

    @model_validator(mode="after")
    def _backend_of_bootstrap(self) -> Settings:
        """One source of truth for the log: a configured Kafka bootstrap (variable or file) means
        the log is on Kafka, unless `log_backend` is set explicitly."""
        if "log_backend" not in self.model_fields_set and self.kafka_bootstrap:
            self.log_backend = "kafka"
        return self

    def split_log(self) -> str | None:
        """Why a local SQLite log must not be opened under these settings (None: it may): a Kafka
        bootstrap is configured, so writing locally would split the system's log in two."""
        if self.log_backend != "sqlite" or not self.kafka_bootstrap:
            return None
        return (
            f"log_backend is sqlite but a Kafka cluster is configured ({self.kafka_bootstrap}): "
            f"refusing to write the local log {self.log_path}. Unset MELTICA_LOG_BACKEND (or set it "
            "to kafka) to use the cluster, or unset MELTICA_KAFKA_BOOTSTRAP (and the file's "
            "kafka_bootstrap) to use the local log."
        )

    @field_validator("data_dir", "api_tls_cert", "api_tls_key", "snapshot_key_file")
    @classmethod
    def _home(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    def replay_roots(self) -> tuple[Path, ...]:
        """The folders replay files named over the API must be in, resolved (links followed)."""
        dirs = self.replay_dirs or [self.data_dir / "replay", Path.cwd()]
        return tuple(d.expanduser().resolve() for d in dirs)

    def secret_roots(self) -> tuple[Path, ...]:
        """The folders credential files named over the API must be in, resolved (links followed)."""
        dirs = self.secret_dirs or [self.data_dir / "secrets"]
        return tuple(d.expanduser().resolve() for d in dirs)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log.db"

    @property
    def snapshot_key_path(self) -> Path:
        return self.snapshot_key_file or self.data_dir / "snapshot.key"

    @property
    def read_model_url(self) -> str:
        """The read models' database: the configured URL, else SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'readmodels.db'}"


def read_secret(path: Path) -> str:
    """A secret kept in a file (e.g. a mounted Kubernetes secret), without its trailing newline."""
    try:
        secret = path.read_text().rstrip("\r\n")
    except OSError as err:
        raise ValueError(f"cannot read the secret file {path}: {err.strerror}") from None
    if not secret:
        raise ValueError(f"the secret file {path} is empty")
    return secret


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
