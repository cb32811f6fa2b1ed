"""`meltica data`: import recorded market data into the log, archive it as Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from meltica.bootstrap import build
from meltica.config import Settings
from meltica.marketdata.formats import TOPIC_OF, DataFormat, read
from meltica.runtime.publisher import Publisher

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
) -> None:
    """Validate a whole file, then append its events to the market-data topics (nothing half-written)."""
    try:
        events = read(path, file_format, instrument)
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}; nothing was imported")
        raise typer.Exit(1) from e
    app = build(Settings())
    publisher = Publisher(app.log, app.codec)
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
