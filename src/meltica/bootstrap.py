"""The composition root: the only place that picks concrete backends from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from meltica import telemetry
from meltica.config import Settings
from meltica.errors import ConfigurationError
from meltica.events.catalog import default_catalog
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.base import EventLog
from meltica.log.memory import MemoryLog
from meltica.log.sqlite import SqliteLog
from meltica.topics import topic_specs


def build_log(settings: Settings) -> EventLog:
    """The event log the settings ask for."""
    if settings.log_backend == "memory":
        return MemoryLog()
    if settings.log_backend == "sqlite":
        if (refusal := settings.split_log()) is not None:
            raise ConfigurationError(refusal)
        return SqliteLog(settings.log_path, synchronous=settings.sqlite_synchronous)
    if not settings.kafka_bootstrap:
        raise ConfigurationError("log_backend=kafka needs MELTICA_KAFKA_BOOTSTRAP")
    try:
        from meltica.log.kafka import KafkaLog
        from meltica.log.kafka_security import client_security
    except ImportError as err:
        raise ConfigurationError(
            "the Kafka backend needs the 'kafka' extra: pip install 'meltica[kafka]'"
        ) from err
    return KafkaLog(
        settings.kafka_bootstrap,
        client_id=settings.client_id,
        namespace=settings.namespace,
        security=client_security(settings),
    )


def build_codec(settings: Settings, log: EventLog) -> Codec:
    """Confluent framing with a registry URL; otherwise single-object framing and our own registry."""
    if settings.schema_registry_url:
        from meltica.events.wire import ConfluentFraming

        return Codec(default_catalog(), confluent=ConfluentFraming(settings.schema_registry_url))
    return Codec(default_catalog(), registry=EmbeddedSchemaRegistry(log))


@dataclass
class App:
    """The wired parts of a Meltica process."""

    settings: Settings
    log: EventLog
    codec: Codec

    def close(self) -> None:
        self.log.close()


def build(settings: Settings | None = None, *, create_topics: bool = True) -> App:
    """Wire a Meltica process from `settings` (default: the environment)."""
    settings = settings or Settings()
    telemetry.configure(None if settings.tracing == "none" else settings.tracing, settings.trace_sample_ratio)
    log = build_log(settings)
    if create_topics:
        for spec in topic_specs(settings.partitions):
            log.create_topic(spec)
    return App(settings, log, build_codec(settings, log))
