"""What a backtest spares itself: its market data is stepped as events, never encoded and decoded
again; its codecs are compiled once per process; the SMA strategy keeps its sums running, exactly."""

from __future__ import annotations

import functools
import itertools
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from pathlib import Path
from typing import Any

import pytest

from meltica.backtest.engine import run_backtest
from meltica.domain.marketdata import Bar
from meltica.events.codec import Codec
from meltica.events.compiled import compile_object_encoder
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.marketdata.replay import ohlc_bars
from meltica.strategies.base import StrategyContext
from meltica.strategies.sma_cross import SmaCross

DATA = Path(__file__).resolve().parents[1] / "data" / "usdjpy-m1-bid-2013.csv"
USDJPY = DEFAULT_INSTRUMENTS[2]
BARS = list(itertools.islice(ohlc_bars(DATA, USDJPY.instrument_id), 600))


def test_market_data_is_not_encoded_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[str] = []
    real = Codec.encode

    def counting(self: Codec, name: str, record: dict[str, Any]) -> bytes:
        encoded.append(name)
        return real(self, name, record)

    monkeypatch.setattr(Codec, "encode", counting)
    plain = run_backtest(BARS, USDJPY, SmaCross(USDJPY.instrument_id), commission=Decimal("0.001"))
    assert not [n for n in encoded if n.endswith("Bar")]
    decoded = run_backtest(
        BARS, USDJPY, SmaCross(USDJPY.instrument_id), commission=Decimal("0.001"), decode_data=True
    )
    assert len([n for n in encoded if n.endswith("Bar")]) == len(BARS)
    assert decoded.output == plain.output
    assert len(plain.fills) > 5


def test_backtests_compile_their_codecs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    run_backtest(BARS, USDJPY, SmaCross(USDJPY.instrument_id))
    compiled: list[Any] = []

    def counting(schema: Any) -> Any:
        compiled.append(schema)
        return compile_object_encoder(schema)

    monkeypatch.setattr("meltica.events.codec.compile_object_encoder", counting)
    again = run_backtest(BARS, USDJPY, SmaCross(USDJPY.instrument_id))
    assert again.fills
    assert compiled == []


def test_sma_sums_run_exactly_over_the_windows() -> None:
    """Prices of 30 digits (more than a default decimal context keeps): the running sums stay exact."""
    exact = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
    sma = SmaCross("X.SIM", fast=3, slow=7)
    ctx = StrategyContext(sma.strategy_id, sma.account_id)
    closes = [Decimal("1234567890.12345678901234567890") + Decimal(i % 5) / 8 for i in range(40)]
    for i, close in enumerate(closes):
        sma.on_bar(ctx, Bar("X.SIM", "1-MINUTE-LAST", close, close, close, close, Decimal(0), i, i + 1))
        window = closes[max(0, i - 6) : i + 1]
        assert sma.slow_sum == functools.reduce(exact.add, window, Decimal(0))
        assert sma.fast_sum == functools.reduce(exact.add, window[-3:], Decimal(0))
