"""The `bars` read model: the bars processor's closed bars land as rows with exact decimals, per
instrument, width and source, and a replay of the log does not double them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from meltica.domain.marketdata import AggressorSide, Bar, QuoteTick, TradeTick
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.processors.bars import parse_width, width_text
from meltica.projections import migrations
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.topics import BARS, QUOTES, TRADES, topic_specs
from meltica.topology import Wiring, build_engine

IID = "BTCUSDT.SIM"
MIN = 60 * 10**9
T0 = 1_700_000_000 * 10**9 // MIN * MIN  # a minute boundary


class Market:
    """Ticks through the embedded engine with 1m bars; the log projected into migrated SQLite."""

    def __init__(self, tmp_path: Path) -> None:
        self.log = MemoryLog()
        for spec in topic_specs(1):
            self.log.create_topic(spec)
        self.codec = Codec()
        self.publisher = Publisher(self.log, self.codec)
        self.engine = build_engine(self.log, self.codec, Wiring(bar_widths=("1m",)))
        url = f"sqlite:///{tmp_path / 'rm.db'}"
        migrations.upgrade(url)
        self.db: Engine = create_engine(url)
        self.n = 0

    def trade(self, price: str, size: str, ts: int) -> None:
        self.n += 1
        self.publisher.publish(
            TRADES, TradeTick(IID, Decimal(price), Decimal(size), AggressorSide.BUYER, f"T{self.n}", ts)
        )
        self.engine.drain()

    def quote(self, bid: str, ask: str, ts: int) -> None:
        self.publisher.publish(QUOTES, QuoteTick(IID, Decimal(bid), Decimal(1), Decimal(ask), Decimal(1), ts))
        self.engine.drain()

    def rows(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            stmt = select(t.bars).order_by(t.bars.c.source, t.bars.c.ts_open)
            return [dict(r._mapping) for r in conn.execute(stmt)]


@pytest.fixture
def market(tmp_path: Path) -> Market:
    m = Market(tmp_path)
    m.trade("100.000000000000000001", "0.1", T0 + 1)
    m.quote("99.99", "100.01", T0 + 2)
    m.trade("101.5", "0.25", T0 + 3)
    m.trade("99.25", "0.05", T0 + 4)
    m.trade("100.10", "1", T0 + MIN + 1)  # closes the first minute's LAST bar
    m.quote("100.00", "100.03", T0 + MIN + 2)  # and its MID bar
    m.trade("100.2", "2", T0 + 2 * MIN)  # closes the second minute's LAST bar
    return m


def test_closed_bars_land_with_exact_decimals(market: Market) -> None:
    Projector(market.log, market.codec, market.db).catch_up()
    last = [r for r in market.rows() if r["source"] == "LAST"]
    assert [(r["instrument_id"], r["width"], r["ts_open"], r["ts_close"]) for r in last] == [
        (IID, "1m", T0, T0 + MIN),
        (IID, "1m", T0 + MIN, T0 + 2 * MIN),
    ]
    first = last[0]
    assert [str(first[c]) for c in ("open", "high", "low", "close", "volume")] == [
        "100.000000000000000001",
        "101.5",
        "99.25",
        "99.25",
        "0.4",
    ]
    assert all(isinstance(first[c], Decimal) for c in ("open", "high", "low", "close", "volume"))
    [mid] = [r for r in market.rows() if r["source"] == "MID"]
    assert (mid["ts_open"], str(mid["open"]), str(mid["close"]), str(mid["volume"])) == (
        T0,
        "100",
        "100",
        "0",
    )


def test_a_replay_neither_doubles_nor_changes_a_bar(market: Market) -> None:
    projector = Projector(market.log, market.codec, market.db)
    projector.catch_up()
    before = market.rows()
    assert projector.rebuild() > 0
    assert market.rows() == before
    # a second projection of the same log into the same tables (own offsets: every record again)
    Projector(market.log, market.codec, market.db, name="again").catch_up()
    assert market.rows() == before


def test_a_replayed_bar_replaces_the_row_of_its_open_time(market: Market) -> None:
    """A bar published again for the same instrument, width, source and open time is one row."""
    projector = Projector(market.log, market.codec, market.db)
    projector.catch_up()
    again = Bar(IID, "1-MINUTE-LAST", *(Decimal(x) for x in ("1", "2", "0.5", "1.5", "3")), T0, T0 + MIN)
    market.publisher.publish(BARS, again)
    projector.catch_up()
    last = [r for r in market.rows() if r["source"] == "LAST"]
    assert len(last) == 2
    assert [str(last[0][c]) for c in ("open", "high", "low", "close", "volume")] == [
        "1",
        "2",
        "0.5",
        "1.5",
        "3",
    ]


@pytest.mark.parametrize(("text", "label"), [("1m", "1-MINUTE"), ("15s", "15-SECOND"), ("4h", "4-HOUR")])
def test_width_text_inverts_parse_width(text: str, label: str) -> None:
    assert parse_width(text)[0] == label
    assert width_text(label) == text


def test_a_bar_spec_of_another_unit_is_kept_as_given() -> None:
    assert width_text("1-DAY") == "1-DAY"
