"""Smart order routing through the embedded engine: an order at venue SOR is worked as child orders
at two simulated venues with different books and fees; risk checks each child at its venue; the
portfolio counts the children's fills once; a venue that goes down mid-order loses nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from meltica.domain.control import VenueState, VenueStateChanged
from meltica.domain.instruments import spot
from meltica.domain.marketdata import BookLevel, OrderBookSnapshot
from meltica.domain.orders.commands import AmendOrder, CancelOrder
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendRejected,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderPartiallyFilled,
)
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import PositionChanged
from meltica.domain.risk.events import SetTradingState
from meltica.domain.values import OrderSide, OrderType, RiskScope, TimeInForce, TradingState
from meltica.topics import BOOK, RISK_COMMANDS, VENUE_EVENTS
from meltica.topology import Wiring, build_engine
from meltica.venues.sim.matching import SimVenue
from tests.e2e.stack import Stack


def _pair(venue: str, taker: str, maker: str) -> Any:
    return spot(
        "BTCUSDT",
        venue,
        "BTC",
        "USDT",
        price_increment="0.01",
        size_increment="0.001",
        taker_fee=taker,
        maker_fee=maker,
    )


A = _pair("SIMA", "0.001", "0.0002")  # the lowest raw prices, a taker fee of 10 bps
B = _pair("SIMB", "0", "0")  # no fees
SOR = _pair("SOR", "0", "0")
D = Decimal


@pytest.fixture
def stack() -> Stack:
    s = Stack()
    s.engine = build_engine(
        s.log, s.codec, Wiring(venues=(SimVenue("SIMA"), SimVenue("SIMB"))), clock=s.clock
    )
    s.setup(A, B, SOR)
    return s


def book(stack: Stack, inst: Any, asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> None:
    def levels(xs: list[tuple[str, str]]) -> tuple[BookLevel, ...]:
        return tuple(BookLevel(D(p), D(q)) for p, q in xs)

    ts = stack.tick()
    stack.publisher.publish(BOOK, OrderBookSnapshot(inst.instrument_id, ts, levels(bids), levels(asks), ts))
    stack.run()


def routed(stack: Stack, qty: str, price: str | None, **kw: Any) -> OrderSpec:
    order_type = OrderType.MARKET if price is None else OrderType.LIMIT
    return stack.submit(
        OrderSide.BUY, qty=qty, price=price, order_type=order_type, instrument_id=SOR.instrument_id, **kw
    )


def children(stack: Stack, parent: OrderSpec) -> list[OrderSpec]:
    return [
        e.order
        for e in stack.events("orders.events")
        if isinstance(e, OrderAccepted) and e.order.parent_order_id == parent.order_id
    ]


def fills(stack: Stack, order_id: str) -> list[tuple[Decimal, Decimal]]:
    return [
        (e.fill.last_qty, e.fill.last_px)
        for e in stack.events("orders.events")
        if isinstance(e, OrderFilled | OrderPartiallyFilled) and e.order_id == order_id
    ]


def last(stack: Stack, order_id: str) -> Any:
    return [e for e in stack.events("orders.events") if getattr(e, "order_id", None) == order_id][-1]


def positions(stack: Stack) -> dict[str, Decimal]:
    out = {}
    for e in stack.events("portfolio.events"):
        if isinstance(e, PositionChanged):
            out[e.instrument_id] = e.quantity
    return out


def feed(stack: Stack, venue: str, state: VenueState) -> None:
    """The registry says the market-data connection of `venue` is in `state`."""
    event = VenueStateChanged(
        f"feed-{venue.lower()}", "synthetic", {"venue": venue}, state, "test", 0, 0, 0, 0, 0, 0, stack.tick()
    )
    stack.publisher.publish(VENUE_EVENTS, event)
    stack.run()


def fresh_books(stack: Stack) -> None:
    # raw prices favour SIMA; after its taker fee SIMB's 100.05 beats SIMA's 100.00 (100.10)
    book(stack, A, asks=[("100.00", "1"), ("100.20", "5")], bids=[("99.90", "5")])
    book(stack, B, asks=[("100.05", "1"), ("100.25", "1")], bids=[("99.80", "5")])


def test_a_routed_order_fills_across_two_venues_at_the_best_prices_after_fees(stack: Stack) -> None:
    fresh_books(stack)
    parent = routed(stack, "3", "100.60")
    kids = children(stack, parent)
    assert [(c.instrument_id, c.quantity) for c in kids] == [(A.instrument_id, D(1)), (B.instrument_id, D(2))]
    assert all(c.price == D("100.60") and c.time_in_force is TimeInForce.GTC for c in kids)
    assert fills(stack, kids[0].order_id) == [(D(1), D("100.00"))]
    assert fills(stack, kids[1].order_id) == [(D(1), D("100.05")), (D(1), D("100.25"))]
    done = last(stack, parent.order_id)
    assert isinstance(done, OrderFilled)
    assert (done.cum_qty, done.avg_px) == (D(3), (D("100.00") + D("100.05") + D("100.25")) / 3)
    # positions are the children's, counted once; the routed order holds none
    assert positions(stack) == {A.instrument_id: D(1), B.instrument_id: D(2)}


def test_a_venue_going_down_mid_order_moves_its_part_to_the_other(stack: Stack) -> None:
    book(stack, A, asks=[("100.00", "1")], bids=[("99.90", "5")])
    book(stack, B, asks=[("100.05", "1")], bids=[("99.80", "5")])
    parent = routed(stack, "4", "100.10")  # 2 take now; 2 rest at SIMB (the lower maker fee)
    kids = children(stack, parent)
    assert [(c.instrument_id, c.quantity) for c in kids] == [(A.instrument_id, D(1)), (B.instrument_id, D(3))]
    assert isinstance(last(stack, parent.order_id), OrderPartiallyFilled)
    book(stack, A, asks=[("100.08", "5")], bids=[("99.90", "5")])
    feed(stack, "SIMB", VenueState.FAILED)  # SIMB cancels what rests there; its 2 go to SIMA
    assert last(stack, kids[1].order_id).reason.startswith("venue down: feed-simb failed")
    [moved] = children(stack, parent)[2:]
    assert (moved.instrument_id, moved.quantity) == (A.instrument_id, D(2))
    assert fills(stack, moved.order_id) == [(D(2), D("100.08"))]
    done = last(stack, parent.order_id)
    assert isinstance(done, OrderFilled)
    assert done.cum_qty == 4
    assert positions(stack) == {A.instrument_id: D(3), B.instrument_id: D(1)}
    # while SIMB is down the router sends it nothing, though its book is the better one
    book(stack, B, asks=[("99.00", "5")], bids=[("98.00", "5")])
    again = routed(stack, "1", "100.10")
    assert [c.instrument_id for c in children(stack, again)] == [A.instrument_id]
    feed(stack, "SIMB", VenueState.LIVE)
    book(stack, B, asks=[("99.00", "5")], bids=[("98.00", "5")])
    back = routed(stack, "1", "100.10")
    assert [c.instrument_id for c in children(stack, back)] == [B.instrument_id]


def test_a_child_risk_denies_at_its_venue_goes_to_the_other(stack: Stack) -> None:
    fresh_books(stack)
    halt = SetTradingState(RiskScope.INSTRUMENT, B.instrument_id, TradingState.HALTED, "ops", stack.tick())
    stack.command(halt, RISK_COMMANDS)
    parent = routed(stack, "3", "100.60")
    [denied] = [e for e in stack.events("orders.events") if isinstance(e, OrderDenied)]
    assert (denied.order_id, denied.instrument_id) == (f"{parent.order_id}-r2", B.instrument_id)
    kids = children(stack, parent)  # the SIMA child, then SIMB's 2 at SIMA
    assert [(c.instrument_id, c.quantity) for c in kids] == [(A.instrument_id, D(1)), (A.instrument_id, D(2))]
    done = last(stack, parent.order_id)
    assert isinstance(done, OrderFilled)
    assert positions(stack) == {A.instrument_id: D(3)}


def test_cancelling_the_parent_cancels_its_children(stack: Stack) -> None:
    fresh_books(stack)
    parent = routed(stack, "5", "99.95")  # nothing within the limit: rests at SIMB
    [kid] = children(stack, parent)
    stack.command(CancelOrder(parent.order_id, "ACC-1", SOR.instrument_id, stack.tick()))
    assert isinstance(last(stack, kid.order_id), OrderCanceled)
    assert stack.order_events(parent.order_id)[-2:] == ["OrderPendingCancel", "OrderCanceled"]


def test_an_amend_of_a_routed_order_is_rejected_and_it_keeps_working(stack: Stack) -> None:
    fresh_books(stack)
    parent = routed(stack, "5", "99.95")
    stack.command(AmendOrder(parent.order_id, "ACC-1", SOR.instrument_id, stack.tick(), quantity=D(6)))
    rejected = last(stack, parent.order_id)
    assert isinstance(rejected, OrderAmendRejected)
    assert "cannot be amended" in rejected.reason
    [kid] = children(stack, parent)
    assert stack.order_events(kid.order_id)[-1] == "OrderAcknowledged"  # still resting at SIMB


def test_a_market_order_takes_what_the_books_hold_and_cancels_the_rest(stack: Stack) -> None:
    book(stack, A, asks=[("100.00", "1")], bids=[("99.90", "5")])
    book(stack, B, asks=[("100.05", "0.5")], bids=[("99.80", "5")])
    parent = routed(stack, "2", None)
    kids = children(stack, parent)
    assert all(c.time_in_force is TimeInForce.IOC for c in kids)
    assert sorted((c.instrument_id, c.price) for c in kids) == [
        (A.instrument_id, D("100.00")),
        (B.instrument_id, D("100.05")),
    ]
    done = last(stack, parent.order_id)
    assert isinstance(done, OrderCanceled)
    assert "no venue has liquidity" in done.reason
    assert sum(q for q, _ in fills(stack, parent.order_id)) == D("1.5")


def test_an_order_the_router_cannot_work_is_denied_with_the_reason(stack: Stack) -> None:
    fresh_books(stack)
    stop = stack.submit(
        qty="1",
        price=None,
        order_type=OrderType.STOP_MARKET,
        instrument_id=SOR.instrument_id,
        trigger_price=D("101"),
    )
    [denied] = [e for e in stack.events("orders.events") if isinstance(e, OrderDenied)]
    assert denied.order_id == stop.order_id
    assert "MARKET or LIMIT" in denied.message


def test_children_spend_no_throttle_tokens_and_cannot_be_amended(stack: Stack) -> None:
    for _ in range(3):  # the default burst is 3 orders: three parents of two children each pass
        fresh_books(stack)
        routed(stack, "2", "100.60")
    assert [e for e in stack.events("orders.events") if isinstance(e, OrderDenied)] == []
    fresh_books(stack)
    parent = routed(stack, "5", "99.95")
    [kid] = children(stack, parent)
    stack.command(AmendOrder(kid.order_id, "ACC-1", kid.instrument_id, stack.tick(), quantity=D(1)))
    refused = last(stack, kid.order_id)
    assert isinstance(refused, OrderAmendRejected)
    assert "cannot be amended" in refused.reason


def test_an_ioc_parent_is_not_placed_again_and_a_day_parent_expires(stack: Stack) -> None:
    fresh_books(stack)
    ioc = routed(stack, "5", "100.05", time_in_force=TimeInForce.IOC)
    assert len(children(stack, ioc)) == 2  # 1 at each venue's 100.00 / 100.05 level, 3 left: IOC
    done = last(stack, ioc.order_id)
    assert isinstance(done, OrderCanceled)
    assert done.reason.startswith("child")
    day = routed(stack, "1", "99.95", time_in_force=TimeInForce.DAY)
    [kid] = children(stack, day)
    stack.ts += 86_400 * 1_000_000_000  # the next UTC day: the venue expires the child
    fresh_books(stack)
    assert stack.order_events(kid.order_id)[-1] == "OrderExpired"
    assert stack.order_events(day.order_id)[-1] == "OrderExpired"
    assert len(children(stack, day)) == 1


def test_a_venue_that_never_brought_market_data_gets_no_child(stack: Stack) -> None:
    silent = _pair("SIMC", "0", "-0.0001")  # a maker rebate, but no book ever: nothing to match there
    stack.publisher.define([silent])
    fresh_books(stack)
    parent = routed(stack, "8", "100.00")  # more than the books hold: the rest rests
    assert {c.instrument_id for c in children(stack, parent)} <= {A.instrument_id, B.instrument_id}


def test_a_venue_stays_up_while_one_of_its_feeds_is_live(stack: Stack) -> None:
    fresh_books(stack)
    parent = routed(stack, "5", "99.95")  # rests at SIMB
    [kid] = children(stack, parent)
    feed(stack, "SIMB", VenueState.LIVE)
    spare = VenueStateChanged(
        "spare-simb",
        "replay",
        {"venue": "SIMB"},
        VenueState.FAILED,
        "bad file",
        0,
        0,
        0,
        0,
        0,
        0,
        stack.tick(),
    )
    stack.publisher.publish(VENUE_EVENTS, spare)
    stack.run()
    assert stack.order_events(kid.order_id)[-1] == "OrderAcknowledged"  # still resting: feed-simb is live
    feed(stack, "SIMB", VenueState.FAILED)  # now every feed of SIMB has failed
    assert stack.order_events(kid.order_id)[-1] == "OrderCanceled"
