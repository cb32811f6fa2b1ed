"""`meltica backtest`: a shipped strategy on a recorded file, statistics and an HTML report."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from meltica.backtest.engine import run_backtest
from meltica.backtest.report import render, render_png
from meltica.domain.instruments import spot
from meltica.errors import MelticaError
from meltica.marketdata.formats import DataFormat, read
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.processors.bars import parse_width
from meltica.strategies.catalog import STRATEGIES, build, parameters

backtest_app = typer.Typer(
    help="Backtests on recorded data, through the same processors as live.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


@backtest_app.command("run")
def run(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    file_format: Annotated[DataFormat, typer.Option("--format", help="What the file holds.")],
    instrument: Annotated[str, typer.Option(help="Instrument id, SYMBOL.VENUE.")] = "USDJPY.SIM",
    strategy: Annotated[str, typer.Option(help=f"One of: {', '.join(STRATEGIES)}.")] = "sma-cross",
    param: Annotated[list[str] | None, typer.Option("--param", help="name=value (repeatable).")] = None,
    commission: Annotated[str, typer.Option(help="Fee as a fraction of notional, e.g. 0.001.")] = "0",
    mark_interval: Annotated[
        str, typer.Option(help="Mark positions (PnLMarked) at most this often: 30s, 1h; 0: every move.")
    ] = "1h",
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    png: Annotated[Path | None, typer.Option(help="Write the charts as a PNG here (extra 'report').")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Statistics as JSON.")] = False,
    save: Annotated[bool, typer.Option(help="Store the result in the read models (/v1/backtests).")] = False,
) -> None:
    """Backtest a shipped strategy on a recorded file."""
    try:
        fee = Decimal(commission)
        params = dict(p.split("=", 1) for p in param or [] if "=" in p)
        if len(params) != len(param or []):
            raise ValueError("--param takes name=value")
        chosen = build(strategy, instrument, params)
        marks_ns = 0 if mark_interval.strip() == "0" else parse_width(mark_interval)[1]
        data = read(path, file_format, instrument)
    except (ValueError, InvalidOperation) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
    if not data:
        err.print(f"[red]error:[/red] {path.name} holds no market data")
        raise typer.Exit(1)
    known = {i.instrument_id: i for i in DEFAULT_INSTRUMENTS}
    symbol, _, venue = instrument.rpartition(".")
    inst = known.get(instrument) or spot(
        symbol,
        venue or "SIM",
        symbol[:3],
        symbol[3:] or "USD",
        price_increment="0.00000001",
        size_increment="0.00000001",
    )
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"backtesting {path.name}", total=len(data))
        result = run_backtest(
            data,
            inst,
            chosen,
            commission=fee,
            mark_interval_ns=marks_ns,
            progress=lambda n: progress.advance(task, n),
        )
    if report is not None:
        report.write_text(render(result, data, f"{strategy} on {instrument}"))
    if png is not None:
        try:
            png.write_bytes(render_png(result, data, f"{strategy} on {instrument}"))
        except MelticaError as e:
            err.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1) from e
    summary = {**result.stats.summary(), "fills": len(result.fills)}
    if save:
        from sqlalchemy import create_engine

        from meltica.backtest.store import save as store
        from meltica.config import Settings
        from meltica.projections.migrations import upgrade

        settings = Settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.read_model_url)
        summary["backtest_id"] = store(
            create_engine(settings.read_model_url),
            result,
            strategy=strategy,
            params=params,
            instrument_id=instrument,
            source=str(path),
            commission=fee,
        )
    if as_json:
        print(json.dumps(summary))
    else:
        table = Table("statistic", "value")
        for k, v in summary.items():
            table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
        out.print(table)
        for written in (report, png):
            if written is not None:
                out.print(f"report: {written}")


@backtest_app.command("strategies")
def strategies() -> None:
    """The shipped strategies and their parameters."""
    table = Table("strategy", "parameters (default)")
    for name in STRATEGIES:
        table.add_row(name, ", ".join(f"{k}={v or '(required)'}" for k, v in parameters(name).items()))
    out.print(table)


def _space(values: list[str]) -> dict[str, list[str]]:
    space: dict[str, list[str]] = {}
    for item in values:
        name, sep, options = item.partition("=")
        if not sep or not options:
            raise typer.BadParameter(f"--space takes name=v1,v2,..., got {item!r}")
        space[name.strip()] = [o.strip() for o in options.split(",")]
    return space


@backtest_app.command("sweep")
def sweep_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    file_format: Annotated[DataFormat, typer.Option("--format")],
    space: Annotated[list[str], typer.Option("--space", help="name=v1,v2,... (repeatable).")],
    instrument: Annotated[str, typer.Option()] = "USDJPY.SIM",
    strategy: Annotated[str, typer.Option()] = "sma-cross",
    random_trials: Annotated[
        int, typer.Option("--random", help="Sample this many combinations (0: all).")
    ] = 0,
    seed: Annotated[int, typer.Option()] = 0,
    workers: Annotated[int, typer.Option(help="Processes.")] = 2,
    commission: Annotated[str, typer.Option()] = "0",
    walk_forward_windows: Annotated[
        str | None, typer.Option("--walk-forward", help="IN,OUT events per window.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Grid or random parameter sweep across processes, or a walk-forward analysis."""
    from meltica.backtest import optimize

    grid_space = _space(space)
    combos = optimize.sample(grid_space, random_trials, seed) if random_trials else optimize.grid(grid_space)
    data = read(path, file_format, instrument)
    known = {i.instrument_id: i for i in DEFAULT_INSTRUMENTS}
    inst = known.get(instrument)
    if inst is None:
        err.print(f"[red]error:[/red] sweeps run on the built-in instruments: {', '.join(known)}")
        raise typer.Exit(1)
    fee = Decimal(commission)
    if walk_forward_windows:
        ins, _, outs = walk_forward_windows.partition(",")
        steps = optimize.walk_forward(
            strategy,
            inst,
            data,
            combos,
            in_sample=int(ins),
            out_of_sample=int(outs),
            commission=fee,
            workers=workers,
        )
        doc = {
            "steps": [s.__dict__ | {"out_of_sample_pnl": str(s.out_of_sample_pnl)} for s in steps],
            **optimize.summary(steps),
        }
        if as_json:
            print(json.dumps(doc))
        else:
            out.print(optimize.summary(steps))
        return
    trials = optimize.sweep(strategy, inst, data, combos, commission=fee, workers=workers)
    if as_json:
        print(json.dumps([t.__dict__ | {"realized_pnl": str(t.realized_pnl)} for t in trials]))
        return
    table = Table("parameters", "total return", "sharpe", "max drawdown", "trades", "realized PnL")
    for t in trials:
        table.add_row(
            ", ".join(f"{k}={v}" for k, v in t.params.items()),
            f"{t.total_return:.4%}",
            f"{t.sharpe:.2f}",
            f"{t.max_drawdown:.4%}",
            str(t.trades),
            str(t.realized_pnl),
        )
    out.print(table)
