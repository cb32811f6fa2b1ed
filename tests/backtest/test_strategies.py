"""The shipped strategies trade through the full pipeline, keep their positions in bounds and
agree with the portfolio; bad parameters are refused."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from meltica.backtest.engine import run_backtest
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.marketdata.replay import ohlc_bars, truefx_quotes
from meltica.strategies.grid import Grid
from meltica.strategies.market_making import MarketMaking
from meltica.strategies.mean_reversion import MeanReversion
from meltica.strategies.momentum import Momentum
from meltica.strategies.sma_cross import SmaCross

DATA = Path(__file__).resolve().parents[1] / "data"
USDJPY = DEFAULT_INSTRUMENTS[2]
BARS = list(itertools.islice(ohlc_bars(DATA / "usdjpy-m1-bid-2013.csv", USDJPY.instrument_id), 6000))
QUOTES = list(truefx_quotes(DATA / "usdjpy-ticks.csv", USDJPY.instrument_id, size=Decimal(10_000)))


@pytest.mark.parametrize(
    "strategy",
    [
        Momentum(USDJPY.instrument_id, lookback=15, threshold="0.0005"),
        MeanReversion(USDJPY.instrument_id, window=30, entry="2", exit="0.5"),
    ],
    ids=["momentum", "mean-reversion"],
)
def test_bar_strategies_trade_and_agree_with_the_portfolio(strategy: Momentum | MeanReversion) -> None:
    result = run_backtest(BARS, USDJPY, strategy, commission=Decimal("0.0001"))
    assert len(result.fills) > 20
    assert result.open_position in (Decimal(-1000), 0, Decimal(1000))  # move_to from what is held
    assert result.stats.fees > 0


def test_grid_buys_dips_and_sells_rips() -> None:
    grid = Grid(USDJPY.instrument_id, step="0.05", levels=3)
    result = run_backtest(BARS, USDJPY, grid)
    sides = {f.side.value for _, f in result.fills}
    assert sides == {"BUY", "SELL"}
    assert abs(result.open_position) <= Decimal(3000)


def test_market_making_keeps_inventory_within_its_limit() -> None:
    mm = MarketMaking(
        USDJPY.instrument_id, tick="0.001", spread_ticks=2, requote_ticks=2, max_inventory="3000"
    )
    result = run_backtest(QUOTES, USDJPY, mm)
    assert len(result.fills) > 3
    assert {f.side.value for _, f in result.fills} == {"BUY", "SELL"}
    assert abs(result.open_position) <= Decimal(3000) + Decimal(1000)
    assert result.open_position == mm.inventory


@pytest.mark.parametrize(
    "make",
    [
        lambda: SmaCross("X", fast=30, slow=10),
        lambda: Momentum("X", lookback=0),
        lambda: MeanReversion("X", entry="1", exit="2"),
        lambda: Grid("X", step="0"),
        lambda: MarketMaking("X", tick="-1"),
    ],
)
def test_bad_parameters_are_refused(make: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each strategy words its own reason
        make()  # type: ignore[operator]
