"""The bar builder: time bars from trades and quote mids, written when the interval is over."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meltica.clock import SimulatedClock
from meltica.domain.marketdata import OUT_OF_ORDER, AggressorSide, Bar, QuoteTick, TradeTick
from meltica.processors.bars import BarBuilder, parse_width
from meltica.venues.sim.matching import SimVenue

S = 1_000_000_000
CLOCK = SimulatedClock(0)


def trade(ts: int, price: str, size: str = "1", flags: int = 0) -> TradeTick:
    return TradeTick("X.SIM", Decimal(price), Decimal(size), AggressorSide.BUYER, f"t{ts}", ts, flags)


def bars(builder: BarBuilder, *ticks: object) -> list[Bar]:
    return [o.event for t in ticks for o in builder.handle("marketdata.trades", t, CLOCK)]


def test_trades_make_ohlcv_bars_closed_by_the_next_interval() -> None:
    b = BarBuilder(["1m"])
    out = bars(b, trade(60 * S + 1, "10"), trade(70 * S, "12", "2"), trade(80 * S, "9"), trade(119 * S, "11"))
    assert out == []
    [bar] = bars(b, trade(185 * S, "13"))  # the next tick (two intervals on) closes the open bar
    assert bar == Bar(
        "X.SIM",
        "1-MINUTE-LAST",
        Decimal(10),
        Decimal(12),
        Decimal(9),
        Decimal(11),
        Decimal(5),
        60 * S,
        120 * S,
    )


def test_quotes_make_mid_bars_and_widths_are_independent() -> None:
    b = BarBuilder(["15s", "1m"])
    q = [
        QuoteTick("X.SIM", Decimal(p), Decimal(1), Decimal(p) + 2, Decimal(1), ts)
        for p, ts in (("10", 1 * S), ("20", 16 * S))
    ]
    [closed] = [o.event for t in q for o in b.handle("marketdata.quotes", t, CLOCK)]
    assert (closed.spec, closed.open, closed.close, closed.volume, closed.ts) == (
        "15-SECOND-MID",
        11,
        11,
        0,
        15 * S,
    )


def test_out_of_order_ticks_are_left_out() -> None:
    b = BarBuilder(["1m"])
    bars(b, trade(60 * S, "10"), trade(50 * S, "99", flags=OUT_OF_ORDER))
    [bar] = bars(b, trade(121 * S, "11"))
    assert bar.high == 10


def test_width_parsing() -> None:
    assert parse_width("5m") == ("5-MINUTE", 300 * S)
    assert parse_width("4h") == ("4-HOUR", 4 * 3600 * S)
    for bad in ("0m", "1d", "m", "1.5m"):
        with pytest.raises(ValueError, match="expected a number and s, m or h"):
            parse_width(bad)


def test_the_sim_venue_ignores_bars_of_instruments_it_sees_ticks_of() -> None:
    venue = SimVenue("SIM")
    bar = Bar("X.SIM", "1-MINUTE-LAST", Decimal(1), Decimal(2), Decimal(1), Decimal(2), Decimal(5), 0, 60 * S)
    venue.on_market(trade(1, "1"))
    assert venue.on_market(bar) == []
    assert "X.SIM" not in venue.bar_driven
    venue.on_market(Bar("Y.SIM", *list(vars_of(bar))[1:]))
    assert "Y.SIM" in venue.bar_driven


def vars_of(bar: Bar) -> tuple[object, ...]:
    return (
        bar.instrument_id,
        bar.spec,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bar.ts_open,
        bar.ts,
    )
