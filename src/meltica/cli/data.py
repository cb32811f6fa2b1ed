"""`meltica data`: import recorded market data into the log, archive it as Parquet."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from meltica.bootstrap import build
from meltica.config import Settings
from meltica.marketdata.formats import TOPIC_OF, DataFormat, read
from meltica.marketdata.mapped import ColumnMapping, Kind, parse_columns
from meltica.processors.bars import parse_width

data_app = typer.Typer(
    help="Recorded market data: import into the log, archive as Parquet.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


@data_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    file_format: Annotated[
        DataFormat, typer.Option("--format", help="What the file holds (CSV, or a zip of one).")
    ],
    instrument: Annotated[str, typer.Option(help="Instrument id to give the data, SYMBOL.VENUE.")],
    kind: Annotated[Kind | None, typer.Option(help="generic: what the rows are.")] = None,
    columns: Annotated[
        str | None,
        typer.Option("--map", help="generic: field=column,... e.g. ts=time,bid=bid_px,ask=ask_px."),
    ] = None,
    time_unit: Annotated[str, typer.Option(help="generic: timestamps in s, ms, us, ns or iso.")] = "ms",
    bar_width: Annotated[str, typer.Option(help="generic bars: the width of a bar, e.g. 1m, 1h.")] = "1m",
) -> None:
    """Validate a whole file, then append its events to the market-data topics (nothing half-written).

    `--format generic` reads any CSV (with a header) or Parquet file through a column mapping:
    `--kind quotes --map ts=time,bid=bid_px,ask=ask_px --time-unit us`."""
    try:
        mapping = None
        if file_format is DataFormat.GENERIC:
            if kind is None or columns is None:
                raise ValueError("--format generic needs --kind and --map")
            label, width = parse_width(bar_width)
            mapping = ColumnMapping(kind, parse_columns(columns), time_unit, width, f"{label}-LAST")
        events = read(path, file_format, instrument, mapping)
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}; nothing was imported")
        raise typer.Exit(1) from e
    app = build(Settings())
    publisher = app.publisher
    try:
        with Progress(console=out) as progress:
            task = progress.add_task(f"importing {path.name}", total=len(events))
            for start in range(0, len(events), 5000):
                chunk = events[start : start + 5000]
                app.log.append([publisher.message(TOPIC_OF[type(e)], e) for e in chunk])
                progress.advance(task, len(chunk))
    finally:
        app.close()
    topics = sorted({TOPIC_OF[type(e)] for e in events})
    out.print(f"{len(events)} events from {path.name} into {', '.join(topics)}")


@data_app.command("archive")
def archive(root: Annotated[Path, typer.Argument(help="Folder of the archive.")]) -> None:
    """Write every market-data topic to Parquet, partitioned by instrument and day."""
    from meltica.marketdata.archive import write

    try:
        import pyarrow  # noqa: F401 - only to give a clear message when it is missing
    except ImportError as e:
        err.print("[red]error:[/red] the archive needs pyarrow: pip install 'meltica[archive]'")
        raise typer.Exit(1) from e
    app = build(Settings(), create_topics=False)
    try:
        written = write(app.log, app.codec, root)
    finally:
        app.close()
    out.print(", ".join(f"{topic}: {n} files" for topic, n in written.items()) + f" under {root}")


def _instant(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"not an ISO-8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) * 1_000


@data_app.command("replay")
def replay_range(
    source: Annotated[Path, typer.Argument(help="Data directory of the recording (its log.db).")],
    start: Annotated[str | None, typer.Option("--from", help="ISO-8601 start (event time).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO-8601 end, exclusive.")] = None,
    speed: Annotated[
        float, typer.Option(help="0: as fast as possible; 1: real time; 10: ten times faster.")
    ] = 0,
) -> None:
    """Feed a time range of recorded market data into the running stack's log, in event-time order."""
    from meltica.events.codec import Codec
    from meltica.events.mapping import from_record
    from meltica.events.registry import EmbeddedSchemaRegistry
    from meltica.log.sqlite import SqliteLog
    from meltica.topics import MARKET_DATA

    lo, hi = _instant(start), _instant(end)
    recording = source / "log.db"
    if not recording.exists():
        err.print(f"[red]error:[/red] no recording at {recording}")
        raise typer.Exit(1)
    with SqliteLog(recording) as log:
        codec = Codec(registry=EmbeddedSchemaRegistry(log))
        events = []
        for topic in MARKET_DATA:
            for p in range(log.partitions(topic) if topic in log.topics() else 0):
                offset = 0
                while records := log.read(topic, p, offset, 10_000):
                    offset = records[-1].offset + 1
                    for rec in records:
                        name, fields = codec.decode_record(rec)
                        ts = fields["meta"]["ts_event"]
                        if (lo is None or ts >= lo) and (hi is None or ts < hi):
                            events.append((ts, rec.seq, from_record(name, fields)))
    events.sort(key=lambda e: (e[0], e[1]))
    app = build(Settings())
    publisher = app.publisher
    try:
        with Progress(console=out) as progress:
            task = progress.add_task(f"replaying {len(events)} events", total=len(events))
            began, first = time.monotonic(), events[0][0] if events else 0
            for ts, _, event in events:
                if speed > 0:
                    delay = (ts - first) / 1e9 / speed - (time.monotonic() - began)
                    if delay > 0:
                        time.sleep(delay)
                publisher.publish(TOPIC_OF[type(event)], event)
                progress.advance(task)
    finally:
        app.close()
    out.print(f"replayed {len(events)} events from {source}")
