"""`meltica run <service>`: one processor, the projector or the REST API as its own process on Kafka."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from meltica import structured_logs
from meltica.config import Settings, load_settings
from meltica.log.partitioner import partition_for
from meltica.runtime.processor import Processor
from meltica.strategies.base import Strategy

if TYPE_CHECKING:
    from meltica.bootstrap import App

out = Console(stderr=True)


class Host(StrEnum):
    kafka = "kafka"
    faust = "faust"


class Service(StrEnum):
    risk = "risk"
    orders = "orders"
    venue = "venue"
    portfolio = "portfolio"
    strategies = "strategies"
    bars = "bars"
    venues = "venues"
    projector = "projector"
    api = "api"


def processor_factory(
    service: Service, strategies: list[Strategy], partitions: int, bar_widths: list[str] | None = None
) -> Callable[[int], Processor]:
    """A fresh processor for one partition of `service`'s keyed inputs."""
    from meltica.processors.bars import BarBuilder
    from meltica.processors.orders import OrderProcessor
    from meltica.processors.portfolio import PortfolioProcessor
    from meltica.processors.risk import RiskProcessor
    from meltica.processors.strategies import StrategyHost
    from meltica.processors.venue import VenueProcessor
    from meltica.venues.sim.matching import SimVenue

    def strategies_of(p: int) -> StrategyHost:
        return StrategyHost([s for s in strategies if partition_for(s.account_id.encode(), partitions) == p])

    makers: dict[Service, Callable[[int], Processor]] = {
        Service.risk: lambda p: RiskProcessor(),
        Service.orders: lambda p: OrderProcessor(),
        Service.venue: lambda p: VenueProcessor([SimVenue("SIM")]),
        Service.portfolio: lambda p: PortfolioProcessor(),
        Service.strategies: strategies_of,
        Service.bars: lambda p: BarBuilder(bar_widths or ["1m"]),
    }
    return makers[service]


def parse_strategy(spec: str) -> Strategy:
    """`NAME@INSTRUMENT[:key=value,...]`, e.g. `sma-cross@BTCUSDT.SIM:fast=5,slow=20,account_id=ACC-1`."""
    from meltica.strategies import catalog

    head, _, raw = spec.partition(":")
    name, _, instrument = head.partition("@")
    if not instrument:
        raise ValueError(f"strategy {spec!r}: expected NAME@INSTRUMENT[:key=value,...]")
    params = dict(kv.split("=", 1) for kv in raw.split(",") if kv) if raw else {}
    return catalog.build(name, instrument, params)


def run(
    service: Annotated[Service, typer.Argument(help="What to run.")],
    host: Annotated[
        Host, typer.Option(help="Processor host: confluent-kafka (default) or faust-streaming.")
    ] = Host.kafka,
    instance: Annotated[
        str | None, typer.Option(help="Instance id (transactional id); default: random per process.")
    ] = None,
    health_port: Annotated[
        int, typer.Option(help="Port of /healthz, /readyz and /metrics (0: any free port, -1: none).")
    ] = -1,
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="strategies service: NAME@INSTRUMENT[:key=value,...], repeatable."),
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="strategies service: also run the demo strategy on DEMO.")
    ] = False,
) -> None:
    """Run one service of the distributed shape against MELTICA_KAFKA_BOOTSTRAP and MELTICA_DATABASE_URL.

    Start several instances of a processor to split its partitions; SIGTERM stops one cleanly.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    structured_logs.set_service(service.value)  # the CLI set the format up (MELTICA_LOG_FORMAT)
    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise _fail("meltica run needs MELTICA_KAFKA_BOOTSTRAP (the Kafka cluster to run on)")
    settings = settings.model_copy(update={"log_backend": "kafka"})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if service is Service.api:
        _run_api(settings)
    elif service is Service.projector:
        _run_projector(settings, stop, health_port)
    elif service is Service.venues:
        _run_venues(settings, stop, health_port)
    elif host is Host.faust:
        import faust

        faust.Worker(faust_app([service.value]), loglevel="info").execute_from_commandline()
    else:
        try:
            strategies = [parse_strategy(s) for s in strategy or []]
        except ValueError as err:
            raise _fail(str(err)) from err
        if demo:
            from meltica.cli.up import DEMO_SIZES
            from meltica.strategies.demo import DemoStrategy

            strategies.append(DemoStrategy(sizes=DEMO_SIZES))
        _run_processor(settings, service, instance, health_port, strategies, stop)


def faust_app(processors: list[str]) -> Any:
    """The faust-streaming app hosting `processors` (risk, orders, venue, portfolio)."""
    from meltica.bootstrap import build
    from meltica.log.kafka import KafkaLog
    from meltica.log.kafka_security import client_security, faust_credentials
    from meltica.runtime.faust_host import build_app

    settings = Settings().model_copy(update={"log_backend": "kafka"})
    if not settings.kafka_bootstrap:
        raise _fail("the faust host needs MELTICA_KAFKA_BOOTSTRAP")
    app = build(settings)
    makers = {name: processor_factory(Service(name), [], settings.partitions) for name in processors}
    return build_app(
        app.log.wire(f"meltica-faust-{'-'.join(processors)}") if isinstance(app.log, KafkaLog) else "",
        makers,
        bootstrap=settings.kafka_bootstrap,
        codec=app.codec,
        namespace=settings.namespace,
        security=client_security(settings),
        credentials=faust_credentials(settings),
    )


def _app(settings: Settings) -> App:
    """The wired service: the topics created only where missing (one metadata request instead
    of one creation per topic: a restarted service takes its partitions back seconds sooner)."""
    from meltica.bootstrap import build, build_log
    from meltica.topics import topic_specs

    log = build_log(settings)
    try:
        have = log.topics()
        for spec in topic_specs(settings.partitions):
            if spec.name not in have:
                log.create_topic(spec)
    finally:
        log.close()
    return build(settings, create_topics=False)


def _fail(message: str) -> typer.Exit:
    out.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _run_processor(
    settings: Settings,
    service: Service,
    instance: str | None,
    health_port: int,
    strategies: list[Strategy],
    stop: threading.Event,
) -> None:
    from meltica.runtime.health import HealthServer
    from meltica.topics import inputs_of

    app = _app(settings)
    make = processor_factory(service, strategies, settings.partitions, settings.bar_widths)
    from meltica.log.kafka_security import client_security
    from meltica.runtime.kafka_host import KafkaProcessorHost
    from meltica.runtime.service_metrics import watch_processor

    assert settings.kafka_bootstrap is not None  # nosec B101 # typing; checked by run()
    svc = KafkaProcessorHost(
        service.value,
        make,
        inputs_of(service.value),
        bootstrap=settings.kafka_bootstrap,
        codec=app.codec,
        namespace=settings.namespace,
        partitions=settings.partitions,
        instance_id=instance,
        snapshot_every=settings.snapshot_every,
        security=client_security(settings),
    )
    watch_processor(service.value, svc, settings)  # its /metrics: host counters, lag, outputs
    health = None
    if health_port >= 0:
        health = HealthServer(
            settings.api_host,
            health_port,
            alive=lambda: time.monotonic() - svc.stats.last_loop < 30,
            ready=svc.ready.is_set,
        ).start()
        out.print(f"{service.value}: health on http://{settings.api_host}:{health.port}/healthz")
    out.print(f"{service.value}: instance {svc.instance_id} joining group {svc.wire_group}")
    try:
        svc.run(stop)
    finally:
        if health is not None:
            health.stop()
        app.close()
    s = svc.stats
    out.print(
        f"{service.value}: stopped after {s.records} records, {s.transactions} transactions, "
        f"{svc.core.replayed} replayed"
    )


def _run_projector(settings: Settings, stop: threading.Event, health_port: int) -> None:
    from sqlalchemy import create_engine

    from meltica.projections import migrations
    from meltica.projections.projector import Projector
    from meltica.runtime.health import HealthServer
    from meltica.runtime.service_metrics import export_projector_metrics

    if not settings.database_url:
        raise _fail("meltica run projector needs MELTICA_DATABASE_URL")
    app = _app(settings)
    migrations.upgrade(settings.database_url)
    projector = Projector(app.log, app.codec, create_engine(settings.database_url, pool_pre_ping=True))
    export_projector_metrics(projector)
    beat = [time.monotonic()]

    def loop() -> None:
        while not stop.is_set():
            beat[0] = time.monotonic()
            try:
                if projector.poll_once() == 0:
                    stop.wait(0.05)
            except Exception as err:  # the database went away: keep the offsets, retry
                out.print(f"projector: {type(err).__name__}: {err}; retrying")
                projector.reset()
                stop.wait(1.0)

    health = None
    if health_port >= 0:
        health = HealthServer(
            settings.api_host, health_port, alive=lambda: time.monotonic() - beat[0] < 30, ready=lambda: True
        ).start()
    out.print("projector: projecting the log into the read models")
    try:
        loop()
    finally:
        if health is not None:
            health.stop()
        app.close()


def _run_venues(settings: Settings, stop: threading.Event, health_port: int) -> None:
    from meltica.clock import LiveClock
    from meltica.control.venues import VenueManager
    from meltica.runtime.health import HealthServer
    from meltica.runtime.publisher import Publisher

    app = _app(settings)
    manager = VenueManager(app.log, app.codec, Publisher(app.log, app.codec, LiveClock()))
    manager.export_metrics()
    health = None
    if health_port >= 0:
        health = HealthServer(
            settings.api_host,
            health_port,
            alive=lambda: time.monotonic() - manager.beat < 120,  # a write waits 30 s at most
            ready=manager.recovered.is_set,
        ).start()
        out.print(f"venues: health and metrics on http://{settings.api_host}:{health.port}/metrics")
    out.print("venues: running the venue registry's connections (venues.commands)")
    try:
        manager.run(stop)
    finally:
        if health is not None:
            health.stop()
        app.close()


def _run_api(settings: Settings) -> None:
    import uvicorn
    from sqlalchemy import create_engine

    from meltica.api.app import Services, create_app
    from meltica.clock import LiveClock
    from meltica.config_file import config_path
    from meltica.control.reload import Reloader
    from meltica.runtime.publisher import Publisher

    if not settings.database_url:
        raise _fail("meltica run api needs MELTICA_DATABASE_URL")
    app = _app(settings)
    publisher = Publisher(app.log, app.codec, LiveClock())
    path = config_path()
    reloader = Reloader(path, settings, app.log, app.codec, publisher) if path else None
    if reloader is not None:  # the API owns the configuration: applies it, reloads it on request
        report = reloader.apply("meltica run api", settings)
        out.print(f"api: configuration {path}: {', '.join(report['applied']) or 'no changes'}")
    services = Services(
        app.log,
        publisher,
        create_engine(settings.database_url, pool_pre_ping=True),
        None if reloader is None else reloader.apply,
        replay_dirs=settings.replay_roots(),
    )
    try:
        uvicorn.run(
            create_app(services),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            ssl_certfile=settings.api_tls_cert,
            ssl_keyfile=settings.api_tls_key,
            proxy_headers=False,  # X-Forwarded-For is the client's to write: never its address
        )
    finally:
        app.close()
