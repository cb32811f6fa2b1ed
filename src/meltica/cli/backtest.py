"""`meltica backtest`: a shipped strategy on a recorded file, statistics and an HTML report."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from meltica.backtest.engine import run_backtest
from meltica.backtest.jobs import instrument_of
from meltica.backtest.report import render, render_png
from meltica.backtest.sources import Selection, Source, instant_ns, open_source
from meltica.backtest.stats import portfolio
from meltica.domain.marketdata import OrderBookDelta, OrderBookSnapshot
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


def _source(spec: str, file_format: DataFormat | None, instruments: list[str]) -> Source:
    kafka: dict[str, Any] = {}
    if spec.startswith("kafka:"):
        from meltica.config import Settings
        from meltica.log.kafka_security import client_security

        settings = Settings()
        kafka = {
            "kafka_bootstrap": settings.kafka_bootstrap,
            "namespace": settings.namespace,
            "kafka_security": client_security(settings),
        }
    file_instrument = instruments[0] if len(instruments) == 1 else None
    return open_source(spec, file_format=file_format, instrument_id=file_instrument, **kafka)


@backtest_app.command("run")
def run(
    path: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, readable=True, help="A recorded file.")
    ] = None,
    source_spec: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="log:DIR (a data directory's embedded log), kafka: or kafka:HOST:PORT?namespace=NS, "
            "archive:DIR (the Parquet archive) or a file path.",
        ),
    ] = None,
    file_format: Annotated[DataFormat | None, typer.Option("--format", help="What the file holds.")] = None,
    instrument: Annotated[
        list[str] | None,
        typer.Option(
            help="Instrument id, SYMBOL.VENUE (repeatable; default: a file's USDJPY.SIM, "
            "or every instrument recorded)."
        ),
    ] = None,
    venue: Annotated[
        list[str] | None, typer.Option(help="Only instruments of this venue (repeatable).")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="ISO-8601 start (event time).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO-8601 end, exclusive.")] = None,
    strategy: Annotated[
        str, typer.Option(help=f"One of: {', '.join(STRATEGIES)}; or module:Class (a Strategy subclass).")
    ] = "sma-cross",
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
    """Backtest a strategy on recorded market data: a file, a data directory's log, Kafka or the archive."""
    if (path is None) == (source_spec is None):
        err.print("[red]error:[/red] give a file or --source (log:DIR, kafka:, archive:DIR or a path)")
        raise typer.Exit(1)
    spec = str(path) if path is not None else str(source_spec)
    recorded = source_spec is not None and source_spec.partition(":")[0] in ("log", "kafka", "archive")
    wanted = list(instrument or ([] if recorded else ["USDJPY.SIM"]))
    try:
        fee = Decimal(commission)
        params = dict(p.split("=", 1) for p in param or [] if "=" in p)
        if len(params) != len(param or []):
            raise ValueError("--param takes name=value")
        marks_ns = 0 if mark_interval.strip() == "0" else parse_width(mark_interval)[1]
        selection = Selection(instant_ns(start), instant_ns(end), tuple(wanted), tuple(venue or ()))
        data = _source(spec, file_format, wanted).events(selection)
        ids = wanted or list(dict.fromkeys(e.instrument_id for e in data))
        chosen = [build(strategy, iid, params, modules=True) for iid in ids]
        if len(chosen) > 1:  # one instance per instrument, on one account: ids tell them apart
            chosen = [
                build(strategy, iid, params, strategy_id=f"{s.strategy_id}.{iid}", modules=True)
                for s, iid in zip(chosen, ids, strict=True)
            ]
    except (ValueError, InvalidOperation, MelticaError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
    if not data:
        err.print(f"[red]error:[/red] {spec} holds no market data for this selection")
        raise typer.Exit(1)
    insts = [instrument_of(iid) for iid in ids]
    title = f"{strategy} on {', '.join(ids)}"
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"backtesting {Path(spec).name}", total=len(data))
        result = run_backtest(
            data,
            insts,
            chosen,
            commission=fee,
            mark_interval_ns=marks_ns,
            progress=lambda n: progress.advance(task, n),
        )
    charted = [
        e for e in data if e.instrument_id == ids[0] and not isinstance(e, OrderBookDelta | OrderBookSnapshot)
    ]
    if report is not None:
        report.write_text(render(result, charted, title))
    if png is not None:
        try:
            png.write_bytes(render_png(result, charted, title))
        except MelticaError as e:
            err.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1) from e
    summary: dict[str, Any] = {**result.stats.summary(), "fills": len(result.fills)}
    if result.by_instrument:
        summary = {
            "fills": len(result.fills),
            "realized_pnl": str(result.realized_pnl),
            "instruments": {iid: stats.summary() for iid, stats in result.by_instrument.items()},
        }
        if len({i.quote_currency for i in insts}) == 1:  # one currency: the account's total
            summary["total"] = portfolio(result.by_instrument, result.stats.starting_equity)
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
            instrument_id=",".join(ids),
            source=spec,
            commission=fee,
            report=render(result, charted, title),
        )
    for failure in result.failures:
        err.print(f"[red]error:[/red] {failure}")
    if as_json:
        print(json.dumps(summary | ({"failures": result.failures} if result.failures else {})))
    else:
        table = Table("statistic", "value")
        rows = {k: v for k, v in summary.items() if k not in ("instruments", "total")}
        for iid, stats in summary.get("instruments", {}).items():
            rows |= {f"{iid} {name}": value for name, value in stats.items()}
        rows |= {f"total {name}": value for name, value in summary.get("total", {}).items()}
        for k, v in rows.items():
            table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
        out.print(table)
        for written in (report, png):
            if written is not None:
                out.print(f"report: {written}")
    if result.failures:
        raise typer.Exit(1)


@backtest_app.command("submit")
def submit(
    source_spec: Annotated[
        str,
        typer.Option(
            "--source",
            help="log:DIR, archive:DIR or a file path, inside the server's replay folders "
            "(MELTICA_REPLAY_DIRS); the path as the server sees it.",
        ),
    ],
    file_format: Annotated[DataFormat | None, typer.Option("--format", help="What the file holds.")] = None,
    instrument: Annotated[list[str] | None, typer.Option(help="Instrument id (repeatable).")] = None,
    venue: Annotated[list[str] | None, typer.Option(help="Only this venue (repeatable).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="ISO-8601 start (event time).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO-8601 end, exclusive.")] = None,
    strategy: Annotated[
        str,
        typer.Option(
            help=f"One of: {', '.join(STRATEGIES)}; or module:Class under the server's strategy_modules."
        ),
    ] = "sma-cross",
    param: Annotated[list[str] | None, typer.Option("--param", help="name=value (repeatable).")] = None,
    commission: Annotated[str, typer.Option(help="Fee as a fraction of notional, e.g. 0.001.")] = "0",
    cash: Annotated[str, typer.Option(help="Starting balance.")] = "10000000",
    mark_interval: Annotated[
        str, typer.Option(help="Mark positions at most this often; 0: every move.")
    ] = "1h",
    follow: Annotated[bool, typer.Option("--follow", help="Show the progress until the job ends.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="The job (with --follow: its end) as JSON.")
    ] = False,
) -> None:
    """Run a backtest as a job on a running stack (MELTICA_API_URL, MELTICA_API_KEY); prints its id."""
    from meltica.cli.rest import call

    params = dict(p.split("=", 1) for p in param or [] if "=" in p)
    if len(params) != len(param or []):
        err.print("[red]error:[/red] --param takes name=value")
        raise typer.Exit(1)
    body: dict[str, Any] = {
        "source": source_spec,
        "format": None if file_format is None else file_format.value,
        "strategy": strategy,
        "params": params,
        "instruments": instrument or [],
        "venues": venue or [],
        "start": start,
        "end": end,
        "commission": commission,
        "cash": cash,
        "mark_interval": mark_interval,
    }
    job = call("POST", "/v1/backtests", body={k: v for k, v in body.items() if v is not None})
    if not follow:
        print(json.dumps(job) if as_json else job["job_id"])
        return
    err.print(f"job {job['job_id']}")
    final = _follow(job["job_id"])
    if as_json:
        print(json.dumps(final))
    else:
        reason = f" ({final['reason']})" if final.get("reason") else ""
        print(f"{final['status']}: backtest {final.get('backtest_id') or '-'}{reason}")
    if final["status"] != "done":
        raise typer.Exit(1)


def _follow(job_id: str) -> dict[str, Any]:
    """The job's progress events (SSE) shown as a bar until the last one, which is returned."""
    import httpx

    from meltica.config import Settings

    settings = Settings()
    final: dict[str, Any] = {}
    event = ""
    try:
        with (
            httpx.stream(
                "GET",
                f"{settings.api_url}/v1/backtests/jobs/{job_id}/events",
                headers={"X-API-Key": settings.api_key or ""},
                timeout=httpx.Timeout(15, read=60),
            ) as r,
            Progress(console=err, transient=True) as progress,
        ):
            if r.status_code >= 400:
                r.read()
                err.print(f"[red]error {r.status_code}:[/red] {r.text}")
                raise typer.Exit(1)
            task = progress.add_task("backtesting", total=None)
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    final = json.loads(line[len("data: ") :])
                    progress.update(task, completed=final["processed"], total=final["total"] or None)
    except httpx.HTTPError as e:
        err.print(f"[red]error:[/red] lost the job's progress stream ({e})")
        raise typer.Exit(1) from e
    if event in ("progress", ""):
        err.print("[red]error:[/red] the progress stream ended before the job did")
        raise typer.Exit(1)
    return final


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
