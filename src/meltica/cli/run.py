"""`meltica run <service>`: one processor, the projector or the REST API as its own process on Kafka."""

from __future__ import annotations

import logging
import signal
import threading
import time
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from meltica import structured_logs
from meltica.bootstrap import build, build_missing_topics
from meltica.config import Settings, load_settings
from meltica.strategies.base import Strategy
from meltica.topology import NODES

out = Console(stderr=True)


class Host(StrEnum):
    kafka = "kafka"
    faust = "faust"


# Processes that are not processors of the topology: market-data connections, read models, the API.
PROCESSES = ("venues", "projector", "api")
Service = StrEnum("Service", {name: name for name in (*NODES, *PROCESSES)})  # type: ignore[misc]


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
    service: Annotated[Service, typer.Argument(help="A processor of the topology, or a process.")],
    host: Annotated[
        Host, typer.Option(help="Processor host: confluent-kafka (default) or faust-streaming.")
    ] = Host.kafka,
    instance: Annotated[
        str | None,
        typer.Option(
            help="Instance id (transactional id; under ACLs it starts with '<service>-'); default: random."
        ),
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
    name = str(service)
    structured_logs.set_service(name)  # the CLI set the format up (MELTICA_LOG_FORMAT)
    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise _fail("meltica run needs MELTICA_KAFKA_BOOTSTRAP (the Kafka cluster to run on)")
    settings = settings.model_copy(update={"log_backend": "kafka"})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if name == "api":
        _run_api(settings)
    elif name == "projector":
        _run_projector(settings, stop, health_port)
    elif name == "venues":
        _run_venues(settings, stop, health_port)
    elif host is Host.faust:
        import faust

        faust.Worker(faust_app([name]), loglevel="info").execute_from_commandline()
    else:
        try:
            strategies = [parse_strategy(s) for s in strategy or []]
        except ValueError as err:
            raise _fail(str(err)) from err
        if demo:
            from meltica.cli.up import DEMO_SIZES
            from meltica.strategies.demo import DemoStrategy

            strategies.append(DemoStrategy(sizes=DEMO_SIZES))
        _run_processor(settings, name, instance, health_port, strategies, stop)


def faust_app(processors: list[str]) -> Any:
    """The faust-streaming app hosting `processors` (risk, orders, venue, portfolio)."""
    settings = Settings().model_copy(update={"log_backend": "kafka"})
    if not settings.kafka_bootstrap:
        raise _fail("the faust host needs MELTICA_KAFKA_BOOTSTRAP")
    return build(settings).faust_app(processors)


def _fail(message: str) -> typer.Exit:
    out.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _run_processor(
    settings: Settings,
    service: str,
    instance: str | None,
    health_port: int,
    strategies: list[Strategy],
    stop: threading.Event,
) -> None:
    from meltica.runtime.health import HealthServer
    from meltica.runtime.service_metrics import watch_processor

    app = build_missing_topics(settings)
    svc = app.processor_service(service, strategies, instance)
    watch_processor(service, svc, settings)  # its /metrics: host counters, lag, outputs
    health = None
    if health_port >= 0:
        health = HealthServer(
            settings.api_host,
            health_port,
            alive=lambda: time.monotonic() - svc.stats.last_loop < 30,
            ready=svc.ready.is_set,
        ).start()
        out.print(f"{service}: health on http://{settings.api_host}:{health.port}/healthz")
    out.print(f"{service}: instance {svc.instance_id} joining group {svc.wire_group}")
    try:
        svc.run(stop)
    finally:
        if health is not None:
            health.stop()
        app.close()
    s = svc.stats
    out.print(
        f"{service}: stopped after {s.records} records, {s.transactions} transactions, "
        f"{svc.core.replayed} replayed"
    )


def _run_projector(settings: Settings, stop: threading.Event, health_port: int) -> None:
    from meltica.runtime.health import HealthServer
    from meltica.runtime.service_metrics import export_projector_metrics

    if not settings.database_url:
        raise _fail("meltica run projector needs MELTICA_DATABASE_URL")
    app = build_missing_topics(settings)
    projector = app.projector(app.read_models(settings.database_url))
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
    from meltica.runtime.health import HealthServer

    app = build_missing_topics(settings)
    manager = app.market_data()
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

    from meltica.api.order_feed import KafkaOrderFeed
    from meltica.log.kafka import KafkaLog

    if not settings.database_url:
        raise _fail("meltica run api needs MELTICA_DATABASE_URL")
    app = build_missing_topics(settings)
    if not isinstance(app.log, KafkaLog):  # (`meltica run` sets the Kafka backend)
        raise _fail("meltica run api needs the Kafka log")
    reloader = app.reloader()
    if reloader is not None:  # the API owns the configuration: applies it, reloads it on request
        report = reloader.apply("meltica run api", settings)
        out.print(f"api: configuration {reloader.path}: {', '.join(report['applied']) or 'no changes'}")
    api = app.api(app.read_models(settings.database_url), reloader)
    feed = KafkaOrderFeed(app.log, app.codec, api.state.parts.waiter)  # `?wait=` from committed events
    feed.start()  # from the ends of orders.events now, before the API serves
    try:
        uvicorn.run(
            api,
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            ssl_certfile=settings.api_tls_cert,
            ssl_keyfile=settings.api_tls_key,
            proxy_headers=False,  # X-Forwarded-For is the client's to write: never its address
        )
    finally:
        feed.stop()
        app.close()
