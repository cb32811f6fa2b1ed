"""`meltica backtest run --strategy module:Class`: user strategies through the CLI, multi-instrument
portfolio runs, and a failing strategy named with the event it failed on."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meltica.cli.app import app
from meltica.events.codec import Codec
from meltica.log.sqlite import SqliteLog
from meltica.marketdata.formats import TOPIC_OF
from meltica.marketdata.replay import ohlc_bars
from meltica.runtime.publisher import Publisher
from meltica.strategies.catalog import StrategyNotAllowedError, build
from meltica.topics import topic_specs

DATA = Path(__file__).resolve().parents[1] / "data" / "usdjpy-m1-bid-2013.csv"
USER = "tests.backtest.user_strategies"
runner = CliRunner()


@pytest.fixture
def bars(tmp_path: Path) -> Path:
    path = tmp_path / "bars.csv"
    with DATA.open() as f:
        path.write_text("".join(itertools.islice(f, 2001)))
    return path


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["backtest", "run", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_user_strategy_loads_from_its_module(bars: Path) -> None:
    code, stdout, stderr = cli(
        str(bars), "--format", "fxcm", "--strategy", f"{USER}:Breakout", "--param", "window=30", "--json"
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["fills"] > 10
    assert summary["realized_pnl"] != "0"


def test_a_strategy_that_fails_is_named_with_the_event(bars: Path) -> None:
    code, stdout, stderr = cli(str(bars), "--format", "fxcm", "--strategy", f"{USER}:Fragile", "--json")
    assert code == 1
    [failure] = json.loads(stdout)["failures"]
    assert failure == (
        "strategy fragile failed: on_bar raised KeyError: 'no such level', "
        "on Bar USDJPY.SIM at ts 1359677100000000000"
    )
    assert "strategy fragile failed" in stderr


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (f"{USER}:NotAStrategy", "has no Strategy subclass NotAStrategy"),
        (f"{USER}:Missing", "has no Strategy subclass Missing"),
        ("tests.backtest.nowhere:Breakout", "cannot import tests.backtest.nowhere"),
        ("astrology", "unknown strategy 'astrology'"),
    ],
)
def test_a_strategy_that_cannot_load_says_why(bars: Path, name: str, why: str) -> None:
    code, _, stderr = cli(str(bars), "--format", "fxcm", "--strategy", name)
    assert code == 1
    assert why in " ".join(stderr.split())


def test_module_paths_load_only_where_allowed() -> None:
    """No module by default; any from the CLI; over the API only under the operator's prefixes."""
    with pytest.raises(StrategyNotAllowedError, match="strategy_modules"):
        build(f"{USER}:Breakout", "USDJPY.SIM", {})
    assert type(build(f"{USER}:Breakout", "USDJPY.SIM", {}, modules=True)).__name__ == "Breakout"
    assert (
        type(build(f"{USER}:Breakout", "USDJPY.SIM", {}, modules=["tests.backtest"])).__name__ == "Breakout"
    )
    for prefixes in (["tests.back"], ["tests.backtest.user_strategies.x"], []):
        with pytest.raises(StrategyNotAllowedError, match="strategy_modules"):
            build(f"{USER}:Breakout", "USDJPY.SIM", {}, modules=prefixes)
    with pytest.raises(ValueError, match=r"not module\.path:Class"):
        build(".relative:Breakout", "USDJPY.SIM", {}, modules=True)


def test_several_instruments_in_one_run_have_their_own_statistics(bars: Path, tmp_path: Path) -> None:
    """The same bars recorded as two instruments: one account, one strategy instance per instrument,
    each instrument's statistics equal to its run alone."""
    with SqliteLog(tmp_path / "data" / "log.db") as log:
        for spec in topic_specs(3):
            log.create_topic(spec)
        publisher = Publisher(log, Codec())
        for iid in ("USDJPY.SIM", "EURJPY.SIM"):
            log.append([publisher.message(TOPIC_OF[type(b)], b) for b in ohlc_bars(bars, iid)])
    source = f"log:{tmp_path / 'data'}"
    code, stdout, stderr = cli("--source", source, "--json", "--to", "2013-02-04T12:00:00Z")
    assert code == 0, stderr
    both = json.loads(stdout)
    assert sorted(both["instruments"]) == ["EURJPY.SIM", "USDJPY.SIM"]
    alone = {}
    for iid in ("USDJPY.SIM", "EURJPY.SIM"):
        code, stdout, stderr = cli(
            "--source", source, "--instrument", iid, "--json", "--to", "2013-02-04T12:00:00Z"
        )
        assert code == 0, stderr
        alone[iid] = json.loads(stdout)
    for iid, summary in alone.items():
        per = both["instruments"][iid]
        assert (per["realized_pnl"], per["trades"], per["fees"]) == (
            summary["realized_pnl"],
            summary["trades"],
            summary["fees"],
        )
    assert both["fills"] == sum(s["fills"] for s in alone.values())
    # both quoted in JPY: the account's total adds the instruments' gains, mark by mark
    total = both["total"]
    gains = sum(Decimal(s["final_equity"]) - Decimal(s["starting_equity"]) for s in alone.values())
    assert Decimal(total["final_equity"]) == Decimal(total["starting_equity"]) + gains
    assert Decimal(total["realized_pnl"]) == sum(Decimal(s["realized_pnl"]) for s in alone.values())
    assert total["trades"] == sum(s["trades"] for s in alone.values())
    assert 0 < total["max_drawdown"] < 1
    table = runner.invoke(app, ["backtest", "run", "--source", source, "--to", "2013-02-04T12:00:00Z"])
    assert table.exit_code == 0, table.stderr
    assert "EURJPY.SIM realized_pnl" in table.stdout
    assert "total sharpe" in table.stdout
