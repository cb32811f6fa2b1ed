"""The composition root: the only place that picks concrete backends from the settings and wires the
parts of a process — log, codec, clock, command writer, the topology's processors on their host,
read models, projector, API. The CLI's commands keep only a process's lifecycle and its console."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meltica import telemetry
from meltica.clock import Clock, LiveClock
from meltica.config import Settings
from meltica.errors import ConfigurationError
from meltica.events.catalog import default_catalog
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.base import EventLog
from meltica.log.memory import MemoryLog
from meltica.log.sqlite import SqliteLog
from meltica.runtime.engine import Engine
from meltica.runtime.publisher import Publisher
from meltica.strategies.base import Strategy
from meltica.topics import topic_specs
from meltica.topology import DEFAULT_BAR_WIDTHS, INPUTS, OUTPUTS, Wiring, build_engine, factory
from meltica.venues.sim.matching import SimVenue

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy import Engine as SqlEngine

    from meltica.control.reload import Reloader
    from meltica.control.venues import VenueManager
    from meltica.projections.projector import Projector
    from meltica.runtime.kafka_host import KafkaProcessorHost


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
    """The wired parts of a Meltica process: its settings, log, codec, clock and command writer."""

    settings: Settings
    log: EventLog
    codec: Codec
    clock: Clock = field(default_factory=LiveClock)

    @property
    def publisher(self) -> Publisher:
        """Writes commands and events to the log (one per process: shares its clock)."""
        if self._publisher is None:
            self._publisher = Publisher(self.log, self.codec, self.clock)
        return self._publisher

    _publisher: Publisher | None = field(default=None, repr=False)

    def wiring(self, strategies: Sequence[Strategy] = ()) -> Wiring:
        """What the topology's processors are built with, from the settings."""
        return Wiring(
            venues=tuple(SimVenue(code) for code in self.settings.sim_venues),
            strategies=tuple(strategies),
            bar_widths=tuple(self.settings.bar_widths),
            strategy_modules=tuple(self.settings.strategy_modules),
        )

    def engine(self, strategies: Sequence[Strategy] = ()) -> Engine:
        """The embedded engine: every processor of the topology on this log (`meltica up`)."""
        return build_engine(self.log, self.codec, self.wiring(strategies), clock=self.clock)

    def processor_service(
        self, name: str, strategies: Sequence[Strategy] = (), instance: str | None = None
    ) -> KafkaProcessorHost:
        """Processor `name` of the topology as a Kafka service (`meltica run <name>`)."""
        from meltica.log.kafka_security import client_security
        from meltica.runtime.kafka_host import KafkaProcessorHost

        settings = self.settings
        if not settings.kafka_bootstrap:
            raise ConfigurationError("a processor service needs MELTICA_KAFKA_BOOTSTRAP")
        return KafkaProcessorHost(
            name,
            factory(name, self.wiring(strategies), settings.partitions),
            INPUTS[name],
            bootstrap=settings.kafka_bootstrap,
            codec=self.codec,
            namespace=settings.namespace,
            partitions=settings.partitions,
            instance_id=instance,
            clock=self.clock,
            snapshot_every=settings.snapshot_every,
            security=client_security(settings),
            outputs=OUTPUTS[name],
        )

    def faust_app(self, processors: Sequence[str]) -> Any:
        """Processors of the topology as faust-streaming agents (`meltica run --host faust`)."""
        from meltica.log.kafka import KafkaLog
        from meltica.log.kafka_security import client_security, faust_credentials
        from meltica.runtime.faust_host import build_app

        settings = self.settings
        if not settings.kafka_bootstrap:
            raise ConfigurationError("the faust host needs MELTICA_KAFKA_BOOTSTRAP")
        return build_app(
            self.log.wire(f"meltica-faust-{'-'.join(processors)}") if isinstance(self.log, KafkaLog) else "",
            {name: factory(name, self.wiring(), settings.partitions) for name in processors},
            INPUTS,
            bootstrap=settings.kafka_bootstrap,
            codec=self.codec,
            namespace=settings.namespace,
            security=client_security(settings),
            credentials=faust_credentials(settings),
            clock=self.clock,
        )

    def bar_widths(self) -> tuple[str, ...]:
        """The bar widths built: the configured ones; on Kafka the bars service's default without."""
        configured = tuple(self.settings.bar_widths)
        return configured or (DEFAULT_BAR_WIDTHS if self.settings.log_backend == "kafka" else ())

    def reloader(self) -> Reloader | None:
        """The configuration file's loader and reloader, where there is a file (`MELTICA_CONFIG`)."""
        from meltica.config_file import config_path
        from meltica.control.reload import Reloader

        path = config_path()
        return Reloader(path, self.settings, self.log, self.codec, self.publisher) if path else None

    def market_data(self) -> VenueManager:
        """The market-data connections of the venue registry (`venues.commands`)."""
        from meltica.control.venues import VenueManager

        return VenueManager(self.log, self.codec, self.publisher, clock=self.clock)

    def read_models(self, url: str) -> SqlEngine:
        """The read-model database at `url`, migrated to the newest schema."""
        from sqlalchemy import create_engine

        from meltica.projections import migrations

        migrations.upgrade(url)
        return create_engine(url, pool_pre_ping=not url.startswith("sqlite"))  # a file needs no ping

    def projector(self, db: SqlEngine) -> Projector:
        """Projects this log into the read models in `db`."""
        from meltica.projections.projector import Projector

        return Projector(self.log, self.codec, db, clock=self.clock)

    def api(self, db: SqlEngine, reloader: Reloader | None = None) -> FastAPI:
        """The REST API: commands to this log, queries to the read models in `db`."""
        from meltica.api.app import create_app
        from meltica.api.deps import Services

        services = Services(
            self.log,
            self.publisher,
            db,
            None if reloader is None else reloader.apply,
            replay_dirs=self.settings.replay_roots(),
            secret_dirs=self.settings.secret_roots(),
            strategy_modules=tuple(self.settings.strategy_modules),
            bar_widths=self.bar_widths(),
        )
        return create_app(services, clock=self.clock)

    def close(self) -> None:
        self.log.close()


def build(settings: Settings | None = None, *, create_topics: bool = True, clock: Clock | None = None) -> App:
    """Wire a Meltica process from `settings` (default: the environment)."""
    settings = settings or Settings()
    telemetry.configure(None if settings.tracing == "none" else settings.tracing, settings.trace_sample_ratio)
    log = build_log(settings)
    if create_topics:
        for spec in topic_specs(settings.partitions):
            log.create_topic(spec)
    return App(settings, log, build_codec(settings, log), clock or LiveClock())


def build_missing_topics(settings: Settings) -> App:
    """Wire a service, creating only the topics that are missing (one metadata request instead of
    one creation per topic: a restarted service takes its partitions back seconds sooner)."""
    log = build_log(settings)
    try:
        have = log.topics()
        for spec in topic_specs(settings.partitions):
            if spec.name not in have:
                log.create_topic(spec)
    finally:
        log.close()
    return build(settings, create_topics=False)
