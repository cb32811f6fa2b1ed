"""`meltica backtest run`: a shipped strategy on a recorded file, statistics and an HTML report."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from meltica.backtest.engine import run_backtest
from meltica.backtest.report import render
from meltica.domain.instruments import spot
from meltica.marketdata import replay
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.strategies.sma_cross import SmaCross

backtest_app = typer.Typer(
    help="Backtests on recorded data, through the same processors as live.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


class BarFormat(StrEnum):
    FXCM = "fxcm"
    BINANCE_KLINES = "binance-klines"


@backtest_app.command("run")
def run(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    file_format: Annotated[BarFormat, typer.Option("--format", help="What the file holds.")],
    instrument: Annotated[str, typer.Option(help="Instrument id, SYMBOL.VENUE.")] = "USDJPY.SIM",
    fast: Annotated[int, typer.Option(help="SMA crossover: fast window.")] = 10,
    slow: Annotated[int, typer.Option(help="SMA crossover: slow window.")] = 30,
    quantity: Annotated[str, typer.Option(help="Position size.")] = "1000",
    commission: Annotated[str, typer.Option(help="Fee as a fraction of notional, e.g. 0.001.")] = "0",
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Statistics as JSON.")] = False,
) -> None:
    """Backtest the SMA crossover strategy on a file of bars."""
    try:
        fee = Decimal(commission)
        bars = list(
            replay.ohlc_bars(path, instrument)
            if file_format is BarFormat.FXCM
            else replay.binance_klines(path, instrument)
        )
        strategy = SmaCross(instrument, fast=fast, slow=slow, quantity=quantity)
    except (ValueError, InvalidOperation) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
    if not bars:
        err.print(f"[red]error:[/red] {path.name} holds no bars")
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
        task = progress.add_task(f"backtesting {path.name}", total=len(bars))
        result = run_backtest(
            bars, inst, strategy, commission=fee, progress=lambda n: progress.advance(task, n)
        )
    if report is not None:
        report.write_text(render(result, bars, f"SMA({fast}/{slow}) on {instrument}"))
    summary = {**result.stats.summary(), "fills": len(result.fills)}
    if as_json:
        print(json.dumps(summary))
    else:
        table = Table("statistic", "value")
        for k, v in summary.items():
            table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
        out.print(table)
        if report is not None:
            out.print(f"report: {report}")
