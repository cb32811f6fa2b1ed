"""`meltica up`: the embedded stack in one process."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from meltica.api.waiting import follow_engine
from meltica.bootstrap import App, build
from meltica.config import Settings, load_settings
from meltica.config_file import ConfigFileError
from meltica.control import snapshots
from meltica.domain.risk.limits import RiskLimits
from meltica.errors import MelticaError
from meltica.log.single_writer import DataDirLockedError, WriterLock
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.runtime.engine import Engine
from meltica.runtime.service_metrics import EngineMetrics, export_projector_metrics
from meltica.runtime.snapshot_keys import SnapshotKeyError, load_key
from meltica.seeding import seed_demo, seed_market
from meltica.strategies.demo import DemoStrategy

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEMO_SIZES = {"BTCUSDT.SIM": "0.01", "ETHUSDT.SIM": "0.1", "USDJPY.SIM": "100"}


def save_snapshot(engine: Engine, directory: Path, keep: int = 3, key: bytes | None = None) -> Path:
    """Snapshot the stopped engine's processors (signed with `key`); keep the newest `keep` of these
    automatic ones (those made with `meltica snapshot create` are the operator's to delete)."""
    snapshot = snapshots.capture(engine)
    path = snapshots.save(snapshot, directory / f"auto-{snapshots.name_for(snapshot)}", key)
    older = sorted(directory.glob(f"auto-*{snapshots.SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in older[keep:]:
        stale.unlink(missing_ok=True)
    return path


def embedded_engine(app: App, demo: bool) -> Engine:
    """The engine `meltica up` runs (snapshots are made of and restored into this)."""
    return app.engine([DemoStrategy(sizes=DEMO_SIZES)] if demo else [])


LAYOUT_FILE = "engine-layout.json"


def check_layout(data_dir: Path, engine: Engine) -> None:
    """Refuse to replay this data directory's log with processors set up otherwise than those that
    wrote it (the demo strategy or not, the simulated venues, the bar widths): the engine rebuilds
    its state by stepping the log's inputs through them again, and other processors would decide
    otherwise than the log says (a strategy's orders missing, a fill at a venue that is gone)."""
    path = data_dir / LAYOUT_FILE
    now = snapshots.layout_of(engine.processors)
    if path.exists():
        before = json.loads(path.read_text())
        if before != now:
            gone = [x for x in before if x not in now]
            new = [x for x in now if x not in before]
            out.print(
                f"[red]error:[/red] the log in {data_dir} was written by processors set up otherwise "
                f"(then: {', '.join(gone) or '-'}; now: {', '.join(new) or '-'}), and replaying it with "
                "these would not give the state it records. Start with the settings it was written with "
                "(`--demo` or `--no-demo`, `sim_venues`, `bar_widths`), or use a new MELTICA_DATA_DIR. "
                "To stop the demo strategy for good: start as before, then `meltica strategies stop demo`."
            )
            raise typer.Exit(2)
    else:  # a new log (or one written before the layout was kept): this run's is its layout
        path.write_text(json.dumps(now))


def bind_api(host: str, port: int) -> socket.socket:
    """The API's socket, bound and listening now: a busy port fails here, before anything starts."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not a port in use: TIME_WAIT only
        sock.bind(address)
        sock.listen(2048)  # connections queue from now on, until the server accepts them
    except OSError:
        sock.close()
        raise
    return sock


def up(
    tick_ms: Annotated[
        int,
        typer.Option(
            help="The default 'sim' venue's ms between ticks (when it is created; then: venues update)."
        ),
    ] = 500,
    demo: Annotated[bool, typer.Option(help="Run the demo strategy on account DEMO.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
) -> None:
    """Start the embedded stack: SQLite log, every processor, the simulated venue, a synthetic market."""
    settings = load_settings()
    lock = WriterLock(settings.data_dir, "up")
    try:
        lock.acquire()  # one engine per data directory, before anything is written
    except DataDirLockedError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None
    try:
        if settings.api_tls_cert:  # a certificate that does not load fails here, not in the API's thread
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                settings.api_tls_cert, settings.api_tls_key
            )
        sock = bind_api(settings.api_host, settings.api_port)
    except OSError as error:
        lock.release()
        err.print(
            f"[red]error:[/red] cannot serve the API on {settings.api_host}:{settings.api_port} ({error}); "
            "nothing started",
            highlight=False,
        )
        raise typer.Exit(1) from None
    try:
        _run(settings, sock, tick_ms, demo, seed)
    finally:
        sock.close()
        lock.release()


def _run(settings: Settings, sock: socket.socket, tick_ms: int, demo: bool, seed: int) -> None:
    """`up` once it holds the data directory and the API's port."""
    app = build(settings)
    demo_limits = RiskLimits(throttle_rate=Decimal(50), throttle_burst=20)  # the demo trades every few ticks
    seed_demo(app.log, app.publisher, app.clock, "meltica up", demo_limits)
    if not settings.venues:  # the default market, unless the configuration declares venues
        market = {"seed": str(seed), "tick_ms": str(tick_ms)}
        seed_market(app.log, app.publisher, app.clock, "meltica up", market)
    reloader = app.reloader()
    if reloader is not None:
        report = reloader.apply("meltica up", settings)
        applied = ", ".join(report["applied"]) or "no changes since last start"
        out.print(f"  configuration {reloader.path}: {applied}")
    engine = embedded_engine(app, demo)
    check_layout(settings.data_dir, engine)
    started = time.monotonic()
    snapshots_dir = settings.data_dir / "snapshots"
    try:
        key: bytes | None = load_key(settings.snapshot_key_path)
    except SnapshotKeyError as error:
        out.print(f"snapshots off: {error}", style="yellow", markup=False, highlight=False)
        key = None
    refused: list[str] = []
    found = None if key is None else snapshots.latest(snapshots_dir, engine.processors, key, refused)
    for why in refused:
        out.print(f"snapshot refused: {why}", style="yellow", markup=False, highlight=False)
    try:
        replayed = engine.recover(None if found is None else (found[1].processors, found[1].positions))
    except MelticaError as error:
        out.print(
            f"[yellow]snapshot {found[0] if found else ''} not used ({error}); replaying the log[/yellow]"
        )
        replayed, found = engine.recover(), None
    if found is not None:
        out.print(f"  started from snapshot {found[0].name}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    reload_requested = threading.Event()
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: reload_requested.set())
    venues = app.market_data()

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = app.read_models(settings.read_model_url)
    projector = app.projector(db)
    api = app.api(db, reloader)
    follow_engine(engine, api.state.parts.waiter)  # `?wait=` answered from the engine's commits
    server = uvicorn.Server(
        uvicorn.Config(
            api,
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=settings.api_tls_cert,
            ssl_keyfile=settings.api_tls_key,
            proxy_headers=False,  # X-Forwarded-For is the client's to write: never its address
        )
    )
    EngineMetrics(engine)  # /metrics: the processors' metrics as the services export them, service="engine"
    export_projector_metrics(projector)
    venues.export_metrics()
    threads = [
        threading.Thread(target=venues.run, args=(stop,), name="venues"),
        threading.Thread(target=engine.run, args=(stop,), name="engine"),
        threading.Thread(target=projector.run, args=(stop,), name="projector"),
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="api", daemon=True),
    ]
    for t in threads:
        t.start()
    out.print(f"[bold green]Meltica is up[/bold green] — embedded log at [bold]{settings.log_path}[/bold]")
    out.print(
        f"  replayed {replayed} steps in {time.monotonic() - started:.1f}s; instruments: "
        + ", ".join(i.instrument_id for i in DEFAULT_INSTRUMENTS)
    )
    scheme = "https" if settings.api_tls_cert else "http"
    port = sock.getsockname()[1]
    out.print(f"  REST API: {scheme}://{settings.api_host}:{port}  (/docs; keys: meltica keys create)")
    out.print("  watch:  meltica tail orders.events --follow     submit: meltica orders submit --help")
    out.print("  Ctrl-C stops it; nothing is lost, and the next `meltica up` continues from here.")
    last = 0.0
    while not stop.wait(0.2):
        if reload_requested.is_set() and reloader is not None:
            reload_requested.clear()
            try:
                report = reloader.apply("SIGHUP")
                out.print(f"  reloaded {reloader.path}: applied {report['applied'] or 'nothing'}")
                if report["restart_required"]:
                    out.print(
                        f"  [yellow]restart needed for: {', '.join(report['restart_required'])}[/yellow]"
                    )
            except ConfigFileError as error:
                out.print(f"[red]reload refused, nothing applied:[/red] {error}", markup=False)
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            s = engine.stats
            out.print(f"  steps {s.steps}  events out {s.outputs}  dead letters {s.dead_letters}")
    server.should_exit = True
    for t in threads:
        t.join(timeout=10)
    api.state.parts.backtests.close()  # its backtest jobs left queued: the next start runs them at once
    if key is not None and not any(t.is_alive() for t in threads if t.name == "engine"):
        saved = save_snapshot(engine, snapshots_dir, key=key)  # the next start replays nothing
        out.print(f"  saved {saved.name}")
    app.close()
    out.print(f"[bold]stopped[/bold] after {engine.stats.steps} steps; state is in {settings.data_dir}")
