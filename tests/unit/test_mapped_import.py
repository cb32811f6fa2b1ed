"""Generic CSV/Parquet import through a column mapping, and Binance trades (CSV and REST JSON)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from meltica.domain.marketdata import AggressorSide, Bar, QuoteTick, TradeTick
from meltica.marketdata.formats import DataFormat, read
from meltica.marketdata.mapped import ColumnMapping, Kind, parse_columns

DATA = Path(__file__).parents[1] / "data"
MS = 1_000_000


def mapping(kind: Kind, text: str, unit: str = "ms") -> ColumnMapping:
    return ColumnMapping(kind, parse_columns(text), unit)


def test_generic_csv_quotes(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("time,b,a,bs,as\n1700000000000,1.10,1.11,5,7\n1700000000500,1.11,1.12,5,7\n")
    events = read(
        path,
        DataFormat.GENERIC,
        "EURUSD.FX",
        mapping(Kind.QUOTES, "ts=time,bid=b,ask=a,bid_size=bs,ask_size=as"),
    )
    assert events == [
        QuoteTick("EURUSD.FX", Decimal("1.10"), Decimal(5), Decimal("1.11"), Decimal(7), 1700000000000 * MS),
        QuoteTick("EURUSD.FX", Decimal("1.11"), Decimal(5), Decimal("1.12"), Decimal(7), 1700000000500 * MS),
    ]


def test_generic_parquet_trades(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    table = pa.table(
        {"us": [10, 20], "px": ["100.5", "100.6"], "qty": ["1", "2"], "dir": ["buy", "SELL"], "id": [7, 8]}
    )
    pq.write_table(table, path)
    m = mapping(Kind.TRADES, "ts=us,price=px,size=qty,side=dir,trade_id=id", "us")
    [a, b] = read(path, DataFormat.GENERIC, "X.V", m)
    assert a == TradeTick("X.V", Decimal("100.5"), Decimal(1), AggressorSide.BUYER, "7", 10_000)
    assert (b.aggressor_side, b.trade_id, b.ts) == (AggressorSide.SELLER, "8", 20_000)


def test_generic_bars_with_iso_times(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("when,o,h,l,c\n2024-01-02T00:00:00Z,1,3,1,2\n")
    m = ColumnMapping(
        Kind.BARS, parse_columns("ts=when,open=o,high=h,low=l,close=c"), "iso", 3600 * 10**9, "1-HOUR-LAST"
    )
    [bar] = read(path, DataFormat.GENERIC, "X.V", m)
    assert isinstance(bar, Bar)
    assert (bar.spec, bar.ts - bar.ts_open, bar.volume) == ("1-HOUR-LAST", 3600 * 10**9, 0)


def test_generic_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quotes have no field 'price'"):
        mapping(Kind.QUOTES, "ts=t,bid=b,ask=a,price=p")
    with pytest.raises(ValueError, match="map a column to ask"):
        mapping(Kind.QUOTES, "ts=t,bid=b")
    with pytest.raises(ValueError, match="expected field=column"):
        parse_columns("ts")
    path = tmp_path / "q.csv"
    path.write_text("t,b,a\n1,1,2\n2,1,oops\n")
    with pytest.raises(ValueError, match="no column 'ask'; it has t, b, a"):
        read(path, DataFormat.GENERIC, "X.V", mapping(Kind.QUOTES, "ts=t,bid=b,ask=ask"))
    with pytest.raises(ValueError, match=r"q.csv:3: a value is not a decimal number"):
        read(path, DataFormat.GENERIC, "X.V", mapping(Kind.QUOTES, "ts=t,bid=b,ask=a"))
    bars = tmp_path / "b.csv"
    bars.write_text("t,o,h,l,c\n1,5,4,1,2\n")
    with pytest.raises(ValueError, match=r"b\.csv:2: high 4 and low 1 do not bound open 5"):
        read(bars, DataFormat.GENERIC, "X.V", mapping(Kind.BARS, "ts=t,open=o,high=h,low=l,close=c"))
    with pytest.raises(ValueError, match="needs a column mapping"):
        read(path, DataFormat.GENERIC, "X.V")


def test_binance_trades_rest_json() -> None:
    [trade] = read(DATA / "binance-trades-response.json", DataFormat.BINANCE_TRADES, "BNBBTC.BINANCE")
    assert trade == TradeTick(
        "BNBBTC.BINANCE",
        Decimal("4.00000100"),
        Decimal("12.00000000"),
        AggressorSide.SELLER,
        "28457",
        1499865549590 * MS,
    )


def test_binance_trades_csv_with_and_without_header(tmp_path: Path) -> None:
    rows = (
        "28457,4.00000100,12.00000000,48.000012,1499865549590,True,True\n"
        "28458,4.1,1,4.1,1735689600000123,false,true\n"
    )
    for name, text in (
        ("plain.csv", rows),
        ("header.csv", "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n" + rows),
    ):
        path = tmp_path / name
        path.write_text(text)
        a, b = read(path, DataFormat.BINANCE_TRADES, "BNBBTC.BINANCE")
        assert (a.aggressor_side, a.ts) == (AggressorSide.SELLER, 1499865549590 * MS)
        assert (b.aggressor_side, b.ts) == (AggressorSide.BUYER, 1735689600000123 * 1000)  # microseconds
    bad = tmp_path / "bad.csv"
    bad.write_text("1,4.1,1,4.1,1499865549590,maybe,true\n")
    with pytest.raises(ValueError, match=r"bad\.csv:1: is_buyer_maker must be true or false"):
        read(bad, DataFormat.BINANCE_TRADES, "X.V")
