"""Positions (average cost), balances with free/locked and PnL marks (execution analytics: their own file)."""

from __future__ import annotations

from meltica.domain.orders.commands import SubmitOrder
from meltica.domain.portfolio.events import BalanceChanged, Lot, PnLMarked, PositionChanged, PositionSide
from meltica.domain.portfolio.positions import Position, after_fill
from meltica.domain.values import ExecType
from tests.unit.domain.flow import Flow
from tests.unit.domain.support import BTC, T0, D, ack, fill, order, quote, report, trade


def test_fifo_lots_realize_oldest_first_and_flip() -> None:
    lots, _realized = after_fill((), D(2), D(100))
    lots, r = after_fill(lots, D(2), D(110))
    assert lots == (Lot(D(2), D(100)), Lot(D(2), D(110)))
    lots, r = after_fill(lots, D(-3), D(120))  # closes 2 @100 then 1 @110
    assert (lots, r) == ((Lot(D(1), D(110)),), D(2) * 20 + D(1) * 10)
    lots, r = after_fill(lots, D(-3), D(100))  # closes 1 @110, opens short 2 @100
    assert (lots, r) == ((Lot(D(-2), D(100)),), D(-10))
    lots, r = after_fill(lots, D(2), D(90))
    assert (lots, r) == ((), D(20))


def test_position_views_of_lots() -> None:
    pos = Position("A", "X", "USD", lots=(Lot(D(-1), D(100)), Lot(D(-2), D(103))), mark_px=D(95))
    assert pos.quantity == D(-3)
    assert pos.avg_px == D(102)
    assert pos.unrealized_pnl == D(5) + D(16)
    assert pos.side is PositionSide.SHORT


def funded() -> Flow:
    f = Flow()
    f.define(BTC)
    f.deposit("ACC-1", "USDT", "10000")
    f.market(quote("99.99", "100.01"))
    return f


def test_fill_moves_position_cash_base_asset_fees_and_locks() -> None:
    f = funded()
    spec = order(qty="2", price="100")
    f.submit(SubmitOrder(spec, T0))
    usdt = f.portfolio.balance("ACC-1", "USDT")
    assert (usdt.total, usdt.locked) == (D("10000"), D("200.2"))
    f.report(ack(spec))
    f.report(fill(spec, "2", "100", fee="0.2"))
    usdt, btc = f.portfolio.balance("ACC-1", "USDT"), f.portfolio.balance("ACC-1", "BTC")
    assert (usdt.total, usdt.locked, usdt.free) == (D("9799.8"), D("0"), D("9799.8"))
    assert btc.total == D("2")
    [pos] = [e for e in f.events if isinstance(e, PositionChanged)]
    assert (pos.quantity, pos.avg_px, pos.fees, pos.side) == (D("2"), D("100"), D("0.2"), PositionSide.LONG)


def test_cancel_releases_the_lock() -> None:
    f = funded()
    spec = order(qty="1", price="100")
    f.submit(SubmitOrder(spec, T0))
    f.report(report(spec, ExecType.CANCELED))
    assert f.portfolio.balance("ACC-1", "USDT").locked == 0
    assert [e.reason for e in f.events if isinstance(e, BalanceChanged)][-1] == "release"


def test_marks_emit_pnl_and_equity() -> None:
    f = funded()
    spec = order(qty="1", price="100")
    f.submit(SubmitOrder(spec, T0))
    f.report(fill(spec, "1", "100", fee="0.1"))
    f.market(trade("101"))  # inside the band; marks at 101
    marks = [e for e in f.events if isinstance(e, PnLMarked)]
    assert marks[-1].unrealized_pnl == D("1")
    assert marks[-1].equity == D("10000") - D("100") - D("0.1") + D("101")
    assert f.market(trade("101")) == []
    assert sum(isinstance(e, PnLMarked) for e in f.events) == len(marks)


def test_a_mark_interval_publishes_at_most_one_mark_per_interval_of_moved_prices() -> None:
    f = funded()
    f.portfolio.mark_interval_ns = 60 * 10**9
    spec = order(qty="1", price="100")
    f.submit(SubmitOrder(spec, T0))
    f.report(fill(spec, "1", "100"))
    second = 10**9
    for i, px in enumerate(["100.5", "101", "101.5", "101.5", "99", "99", "99"]):
        f.market(trade(px, ts=T0 + i * 30 * second))
    published = [(m.mark_px, (m.ts - T0) // second) for m in f.events if isinstance(m, PnLMarked)]
    # 30 s and 90 s fall inside an interval; 150 s and 180 s are due but the price has not
    # moved since the mark at 120 s
    assert published == [(D("100.5"), 0), (D("101.5"), 60), (D("99"), 120)]
    # between marks the state follows every tick: equity is always at the latest price
    assert f.portfolio.position("ACC-1", BTC.instrument_id).mark_px == D("99")
