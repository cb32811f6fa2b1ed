"""Market data: synthetic feed determinism and recorded-file readers."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from meltica.marketdata import replay
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.marketdata.synthetic import SyntheticFeed

DATA = Path(__file__).resolve().parents[1] / "data"


def test_synthetic_feed_is_deterministic_for_a_seed() -> None:
    a = list(itertools.islice(SyntheticFeed(DEFAULT_INSTRUMENTS, seed=3).ticks(0), 200))
    b = list(itertools.islice(SyntheticFeed(DEFAULT_INSTRUMENTS, seed=3).ticks(0), 200))
    c = list(itertools.islice(SyntheticFeed(DEFAULT_INSTRUMENTS, seed=4).ticks(0), 200))
    assert a == b
    assert a != c
    quotes = [t for t in a if type(t).__name__ == "QuoteTick"]
    assert all(q.bid_px < q.ask_px for q in quotes)
    inc = {i.instrument_id: i.price_increment for i in DEFAULT_INSTRUMENTS}
    assert all(q.bid_px % inc[q.instrument_id] == 0 for q in quotes)


def test_binance_klines() -> None:
    bars = list(replay.binance_klines(DATA / "ADABTC-1m-2021-11-27.csv", "ADABTC.BINANCE"))
    assert len(bars) == 10
    assert bars[0].open == Decimal("0.00002853")
    assert bars[0].ts_open == 1637971200000 * 1_000_000
    assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in bars)


def test_truefx_quotes() -> None:
    quotes = list(replay.truefx_quotes(DATA / "usdjpy-ticks.csv", "USDJPY.SIM"))
    assert len(quotes) == 1000
    assert (quotes[0].bid_px, quotes[0].ask_px) == (Decimal("86.655"), Decimal("86.728"))
    assert quotes[0].ts == 1357077600295000000
    assert [q.ts for q in quotes] == sorted(q.ts for q in quotes)


def test_tardis_trades() -> None:
    trades = list(replay.tardis_trades(DATA / "bitmex_trades_XBTUSD.csv", "XBTUSD.BITMEX"))
    assert len(trades) == 10
    assert (trades[0].price, trades[0].size, trades[0].aggressor_side.value) == (
        Decimal("8531.5"),
        Decimal("2152"),
        "SELLER",
    )


def test_bad_rows_name_their_line(tmp_path: Path) -> None:
    bad = tmp_path / "q.csv"
    bad.write_text("timestamp,bid,ask\n2013-01-01 22:00:00,86.6,86.7\n2013-01-01 22:00:01,86.6,oops\n")
    with pytest.raises(ValueError, match=r"q.csv:3: a value is not a decimal number"):
        list(replay.truefx_quotes(bad, "USDJPY.SIM"))


def test_a_synthetic_feed_for_another_venue_quotes_its_instruments_at_the_usual_prices() -> None:
    from meltica.marketdata.adapters import SyntheticAdapter
    from meltica.marketdata.synthetic import SyntheticFeed

    adapter = SyntheticAdapter({"venue": "SIMA", "instruments": "BTCUSDT"})
    assert [i.instrument_id for i in adapter.instruments] == ["BTCUSDT.SIMA"]
    first = next(SyntheticFeed(adapter.instruments, seed=1, interval_ns=1).ticks(0))
    assert first.instrument_id == "BTCUSDT.SIMA"
    assert 40_000 < first.bid_px < 46_000  # the walk starts where BTCUSDT does at SIM, not at 100
