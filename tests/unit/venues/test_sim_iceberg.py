"""Icebergs at the simulated venue: one shown slice at a time, refreshed at the back of its level."""

from __future__ import annotations

from meltica.domain.marketdata import AggressorSide, BookLevel, OrderBookSnapshot, QuoteTick, TradeTick
from meltica.domain.orders.events import ExecutionReport, VenueAmendOrder, VenueCancelOrder, VenueSubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import ExecType, LiquiditySide, OrderSide, OrderType
from meltica.venues.sim import SimVenue
from tests.unit.domain.support import BTC, T0, D

INST = BTC.instrument_id
BID = D("99.00")  # the level our buys rest at: empty in the market, so only our orders queue there


def venue() -> SimVenue:
    v = SimVenue("SIM")
    v.on_instrument(BTC)
    v.on_market(
        OrderBookSnapshot(INST, 1, (BookLevel(D("98.00"), D("5")),), (BookLevel(D("100.00"), D("5")),), T0)
    )
    return v


def buy(order_id: str, qty: str, display: str | None = None, price: str = "99.00") -> OrderSpec:
    return OrderSpec(
        order_id,
        order_id,
        "A",
        INST,
        OrderSide.BUY,
        OrderType.LIMIT,
        D(qty),
        D(price),
        display_quantity=None if display is None else D(display),
    )


def submit(v: SimVenue, s: OrderSpec) -> list[ExecutionReport]:
    return v.on_request(VenueSubmitOrder("SIM", s, T0))


def sell_print(v: SimVenue, qty: str, price: str = "99.00", n: int = 0) -> list[ExecutionReport]:
    return v.on_market(TradeTick(INST, D(price), D(qty), AggressorSide.SELLER, f"t{n}", T0 + n))


def fills(reports: list[ExecutionReport]) -> list[tuple[str, str]]:
    return [(r.order_id, str(r.fill.last_qty)) for r in reports if r.fill is not None]


def test_an_iceberg_shows_only_its_slice() -> None:
    v = venue()
    [new] = submit(v, buy("ICE", "5", display="1"))
    assert (new.exec_type, new.leaves_qty) == (ExecType.NEW, D(5)), "the whole order is acknowledged"
    assert v.depth(INST, OrderSide.BUY) == [(BID, D(1)), (D("98.00"), D(5))]
    [fill] = sell_print(v, "3", n=1)  # a print at its price fills the shown slice only
    assert (fill.fill.last_qty, fill.cum_qty, fill.leaves_qty) == (D(1), D(1), D(4))
    assert fill.fill.liquidity_side is LiquiditySide.MAKER
    assert v.depth(INST, OrderSide.BUY)[0] == (BID, D(1)), "the next slice is shown"


def test_a_refreshed_slice_goes_to_the_back_of_its_level() -> None:
    v = venue()
    submit(v, buy("ICE", "3", display="1"))
    submit(v, buy("LATE", "1"))  # behind the iceberg's first slice, ahead of its refresh
    assert v.depth(INST, OrderSide.BUY)[0] == (BID, D(2))
    assert fills(sell_print(v, "1", n=1)) == [("ICE", "1")], "the first slice was first in the queue"
    assert fills(sell_print(v, "1", n=2)) == [("LATE", "1")], "then the order placed before the refresh"
    assert fills(sell_print(v, "1", n=3)) == [("ICE", "1")]


def test_an_iceberg_fills_completely_over_several_slices() -> None:
    v = venue()
    submit(v, buy("ICE", "2.5", display="1"))
    reports = [r for n in range(1, 4) for r in sell_print(v, "5", n=n)]
    assert fills(reports) == [("ICE", "1"), ("ICE", "1"), ("ICE", "0.5")]
    assert [(r.cum_qty, r.leaves_qty) for r in reports] == [
        (D(1), D("1.5")),
        (D(2), D("0.5")),
        (D("2.5"), D(0)),
    ]
    assert reports[-1].order_status.value == "FILLED"
    assert reports[-1].avg_px == BID
    assert v.resting == {}
    assert v.depth(INST, OrderSide.BUY) == [(D("98.00"), D(5))]


def test_a_print_or_a_book_through_its_price_fills_slice_after_slice() -> None:
    v = venue()
    submit(v, buy("ICE", "3", display="1"))
    assert fills(sell_print(v, "2", price="98.50", n=1)) == [("ICE", "1"), ("ICE", "1")]
    w = venue()
    submit(w, buy("ICE", "3", display="1"))
    crossed = w.on_market(QuoteTick(INST, D("97.00"), D(1), D("98.90"), D(5), T0 + 1))
    assert fills(crossed) == [("ICE", "1"), ("ICE", "1"), ("ICE", "1")]
    assert crossed[-1].order_status.value == "FILLED"


def test_a_marketable_iceberg_takes_with_its_whole_quantity_then_rests_a_slice() -> None:
    v = venue()
    reports = submit(v, buy("ICE", "7", display="1", price="100.00"))
    assert [r.exec_type for r in reports] == [ExecType.NEW, ExecType.TRADE]
    assert reports[1].fill.last_qty == D(5)
    assert v.depth(INST, OrderSide.BUY)[0] == (D("100.00"), D(1))


def test_an_order_leaving_the_queue_moves_those_behind_it_up() -> None:
    v = venue()
    submit(v, buy("FIRST", "2"))
    submit(v, buy("SECOND", "1"))
    assert fills(sell_print(v, "1", n=1)) == [("FIRST", "1")]
    v.on_request(VenueCancelOrder("SIM", "FIRST", None, "A", INST, T0))
    assert fills(sell_print(v, "1", n=2)) == [("SECOND", "1")]


def test_an_amended_iceberg_shows_a_fresh_slice_at_the_back_of_its_new_level() -> None:
    v = venue()
    submit(v, buy("ICE", "3", display="1"))
    submit(v, buy("OTHER", "1", price="98.50"))
    sell_print(v, "0.5", n=1)  # the iceberg's slice is half filled
    [replaced] = v.on_request(VenueAmendOrder("SIM", "ICE", None, "A", INST, T0, price=D("98.50")))
    assert (replaced.exec_type, replaced.cum_qty, replaced.leaves_qty) == (
        ExecType.REPLACED,
        D("0.5"),
        D("2.5"),
    )
    assert v.depth(INST, OrderSide.BUY)[0] == (D("98.50"), D(2)), "a whole slice, behind OTHER"
    assert fills(sell_print(v, "1", price="98.50", n=2)) == [("OTHER", "1")]
    assert fills(sell_print(v, "1", price="98.50", n=3)) == [("ICE", "1")]
