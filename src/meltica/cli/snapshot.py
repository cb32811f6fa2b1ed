"""`meltica snapshot`: save and restore processor state and read models at a log position."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine

from meltica.bootstrap import build
from meltica.cli.up import embedded_engine
from meltica.config import load_settings
from meltica.control import snapshots
from meltica.errors import MelticaError
from meltica.log.single_writer import WriterLock
from meltica.projections import migrations
from meltica.runtime.snapshot_keys import load_key

snapshot_app = typer.Typer(help="Snapshots: start or add a replica without replaying the whole log.")
out = Console()
err = Console(stderr=True, soft_wrap=True)
Demo = Annotated[bool, typer.Option(help="The stack runs the demo strategy (as `meltica up` does).")]


@snapshot_app.command("create")
def create(
    output: Annotated[
        Path | None, typer.Option("--out", help="File (default: <data_dir>/snapshots/).")
    ] = None,
    demo: Demo = True,
) -> None:
    """Rebuild the embedded stack's state up to the last committed step (from the newest snapshot
    and the tail) and save it, with the read models, as a snapshot."""
    settings = load_settings()
    app = build(settings, create_topics=False)
    try:
        engine = embedded_engine(app, demo)
        directory = settings.data_dir / "snapshots"
        started = time.monotonic()
        key = load_key(settings.snapshot_key_path)
        base = snapshots.latest(directory, engine.processors, key)
        replayed = engine.recover(None if base is None else (base[1].processors, base[1].positions))
        db = app.read_models(settings.read_model_url)
        snapshot = snapshots.capture(engine, db)
        db.dispose()
        path = snapshots.save(snapshot, output or directory / snapshots.name_for(snapshot), key)
    except MelticaError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        app.close()
    source = f"from {base[0].name} + {replayed} steps" if base else f"replaying {replayed} steps"
    rows = sum(len(r) for r in snapshot.read_models.values())
    out.print(
        f"snapshot {path} at position {snapshot.steps} ({source} in {time.monotonic() - started:.1f}s; "
        f"{rows} read-model rows)"
    )


@snapshot_app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="A snapshot file (from `meltica snapshot create`).")],
    read_models: Annotated[
        bool, typer.Option(help="Also replace the read models with the snapshot's.")
    ] = True,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Snapshot key of the installation that made it (default: this one's)."),
    ] = None,
) -> None:
    """Make `path` the state the next `meltica up` starts from (it replays only the log after it) and
    replace the read models with the snapshot's (the projector continues from its offsets). The
    snapshot must carry a valid MAC under this installation's snapshot key, or `--key-file`'s (it is
    then signed again with this one's). Refused while `meltica up` runs on the data directory."""
    settings = load_settings()
    try:
        with WriterLock(settings.data_dir, "snapshot restore"):
            key = load_key(settings.snapshot_key_path)
            snapshot = snapshots.load(path, key if key_file is None else load_key(key_file))
            directory = settings.data_dir / "snapshots"
            directory.mkdir(parents=True, exist_ok=True)
            target = directory / path.name
            if key_file is not None:
                snapshots.save(snapshot, target, key)
            elif path.resolve() != target.resolve():
                shutil.copyfile(path, target)
            target.touch()  # the newest snapshot is the one `meltica up` starts from
            rows = 0
            if read_models:
                migrations.upgrade(settings.read_model_url)
                db = create_engine(settings.read_model_url)
                rows = snapshots.restore_read_models(snapshot, db)
                db.dispose()
    except MelticaError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    out.print(
        f"restored {path.name}: position {snapshot.steps}, {rows} read-model rows; "
        "`meltica up` starts from it"
    )


@snapshot_app.command("list")
def list_snapshots() -> None:
    """The snapshots in the data directory, newest first."""
    settings = load_settings()
    directory = settings.data_dir / "snapshots"
    table = Table("file", "position", "created", "processors")
    try:
        key = load_key(settings.snapshot_key_path)
    except MelticaError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    for path in sorted(directory.glob(f"*{snapshots.SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            s = snapshots.load(path, key)
        except snapshots.SnapshotError as error:
            table.add_row(path.name, "-", "-", f"unreadable: {error}")
            continue
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.created_ns / 1e9))
        table.add_row(path.name, str(s.steps), created, ", ".join(s.processor_names))
    out.print(table)
