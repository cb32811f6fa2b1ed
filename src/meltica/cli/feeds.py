"""`meltica feed`: write recorded market data files into the market-data topics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from meltica.bootstrap import build
from meltica.config import Settings
from meltica.marketdata.formats import TOPIC_OF, DataFormat, read

feed_app = typer.Typer(help="Market data into the log.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@feed_app.command("replay")
def replay_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    file_format: Annotated[DataFormat, typer.Option("--format", help="What the file holds.")],
    instrument: Annotated[str, typer.Option(help="Instrument id to give the data, SYMBOL.VENUE.")],
    speed: Annotated[
        float, typer.Option(help="0: as fast as possible; 1: real time; 10: ten times faster.")
    ] = 0,
) -> None:
    """Replay a recorded file into its market-data topic (validated first: nothing half-written)."""
    try:
        events = read(path, file_format, instrument)
    except ValueError as bad:
        err.print(f"[red]error:[/red] {bad}")
        raise typer.Exit(1) from bad
    app = build(Settings())
    publisher = app.publisher
    try:
        if speed <= 0:
            app.log.append([publisher.message(TOPIC_OF[type(e)], e) for e in events])
        else:
            with Progress(console=out) as progress:
                task = progress.add_task(f"replaying {path.name}", total=len(events))
                start_wall, start_ts = time.monotonic(), events[0].ts if events else 0
                for e in events:
                    delay = (e.ts - start_ts) / 1e9 / speed - (time.monotonic() - start_wall)
                    if delay > 0:
                        time.sleep(delay)
                    publisher.publish(TOPIC_OF[type(e)], e)
                    progress.advance(task)
    finally:
        app.close()
    out.print(f"{len(events)} events from {path.name}")


@feed_app.command("synthetic")
def synthetic(
    tick_ms: Annotated[int, typer.Option(help="Milliseconds between ticks per instrument.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the random walk.")] = 7,
) -> None:
    """Publish a synthetic market (seeded random walk) for the default instruments until stopped."""
    import signal
    import threading

    from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
    from meltica.marketdata.synthetic import SyntheticFeed, publish_live
    from meltica.topics import INSTRUMENTS

    app = build(Settings())
    publisher = app.publisher
    if all(app.log.end_offset(INSTRUMENTS, p) == 0 for p in range(app.log.partitions(INSTRUMENTS))):
        publisher.define(DEFAULT_INSTRUMENTS)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    feed = SyntheticFeed(DEFAULT_INSTRUMENTS, seed=seed, interval_ns=tick_ms * 1_000_000)
    out.print(
        f"synthetic market: {', '.join(i.instrument_id for i in DEFAULT_INSTRUMENTS)} every {tick_ms} ms"
    )
    try:
        publish_live(feed, publisher, stop)
    finally:
        app.close()
