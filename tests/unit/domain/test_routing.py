"""The routing plan: fee-adjusted best prices first across venues, never past the limit, never more
than asked; and the router's bookkeeping of parents and children."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meltica.domain.instruments import Instrument, spot
from meltica.domain.marketdata import Book, QuoteTick
from meltica.domain.routing import Slice, plan, routed
from meltica.domain.values import ONE, OrderSide

D = Decimal
prices = st.integers(9_900, 10_100).map(lambda c: D(c) / 100)
sizes = st.integers(1, 5_000).map(lambda m: D(m) / 1000)
fees = st.sampled_from(["0", "0.0005", "0.001", "0.002"])


@st.composite
def listings(draw: st.DrawFn) -> list[tuple[Instrument, Book]]:
    out = []
    for venue in ("V1", "V2", "V3")[: draw(st.integers(1, 3))]:
        inst = spot(
            "XY", venue, "X", "Y", price_increment="0.01", size_increment="0.001", taker_fee=draw(fees)
        )
        book = Book(asks=draw(st.dictionaries(prices, sizes, max_size=4)))
        out.append((inst, book))
    return out


def effective(inst: Instrument, px: Decimal) -> Decimal:
    return px * (ONE + inst.taker_fee)


def consumed(book: Book, qty: Decimal) -> tuple[list[Decimal], list[Decimal]]:
    """The ask levels `qty` takes, best first, and those it leaves (with size left)."""
    taken, left = [], []
    for px, size in book.levels(OrderSide.SELL):
        if qty > 0:
            taken.append(px)
            if size > qty:
                left.append(px)
            qty -= size
        else:
            left.append(px)
    return taken, left


@given(listings(), sizes, st.one_of(st.none(), prices))
def test_a_buy_takes_the_cheapest_levels_after_fees_and_no_more_than_asked(
    venues: list[tuple[Instrument, Book]], qty: Decimal, limit: Decimal | None
) -> None:
    slices = plan(OrderSide.BUY, qty, limit, venues)
    assert sum((s.quantity for s in slices), D(0)) <= qty
    assert len({s.instrument_id for s in slices}) == len(slices)
    swept = {s.instrument_id: s for s in slices if not s.rest or limit is None}
    worst_taken, best_left = D("-Infinity"), D("Infinity")
    for inst, book in venues:
        within = Book(asks={p: q for p, q in book.asks.items() if limit is None or p <= limit})
        s = swept.get(inst.instrument_id)
        taken, left = consumed(within, s.quantity if s is not None else D(0))
        if s is not None and limit is None:
            assert s.price == taken[-1]  # an IOC child is limited to the worst level it takes
        worst_taken = max([worst_taken, *(effective(inst, p) for p in taken)])
        best_left = min([best_left, *(effective(inst, p) for p in left)])
    if limit is None:
        assert worst_taken <= best_left
    else:
        assert all(s.price == limit for s in slices)
        if sum((s.quantity for s in slices), D(0)) < qty:  # only a lot too small to place is left
            assert qty - sum((s.quantity for s in slices), D(0)) < D("0.001") * len(venues) + D("0.001")


def test_a_limit_order_rests_what_the_books_cannot_fill_at_the_lowest_maker_fee() -> None:
    cheap = spot("XY", "V1", "X", "Y", price_increment="0.01", size_increment="0.001", maker_fee="0.0001")
    dear = spot("XY", "V2", "X", "Y", price_increment="0.01", size_increment="0.001", maker_fee="0.001")
    books = [(dear, Book(asks={D(100): D(1)})), (cheap, Book(asks={D(101): D(1)}))]
    assert plan(OrderSide.BUY, D(5), D(100), books) == [
        Slice("XY.V2", D(1), D(100), True),
        Slice("XY.V1", D(4), D(100), True),
    ]


def test_a_sell_takes_the_highest_bids_after_fees() -> None:
    a = spot("XY", "V1", "X", "Y", price_increment="0.01", size_increment="0.001", taker_fee="0.01")
    b = spot("XY", "V2", "X", "Y", price_increment="0.01", size_increment="0.001")
    books = [(a, Book(bids={D(100): D(1)})), (b, Book(bids={D("99.5"): D(1)}))]
    assert plan(OrderSide.SELL, D(1), None, books) == [Slice("XY.V2", D(1), D("99.5"), False)]


def test_only_the_routing_venue_is_routed() -> None:
    assert routed("BTCUSDT.SOR")
    assert not routed("BTCUSDT.SIM")
    assert not routed("SOR.SIM")


def test_no_client_order_id_a_client_may_choose_is_a_childs() -> None:
    from pydantic import TypeAdapter, ValidationError

    from meltica.control.specs import Id
    from meltica.domain.orders.model import OrderSpec
    from meltica.domain.routing import SmartRouter
    from meltica.domain.values import OrderType

    parent = OrderSpec("P1", "c1", "ACC", "XY.SOR", OrderSide.BUY, OrderType.LIMIT, D(1), price=D(100))
    child = SmartRouter._child(parent, 1, Slice("XY.V1", D(1), D(100), True))
    assert (child.order_id, child.client_order_id, child.parent_order_id) == ("P1-r1", "P1~r1", "P1")
    try:
        TypeAdapter(Id).validate_python(child.client_order_id)
    except ValidationError:
        pass
    else:
        raise AssertionError("the API would accept a child's client order id")


def test_a_cancel_that_overtook_its_child_is_asked_again_once_the_child_rests() -> None:
    """Separate services: the router's cancel of a child can reach the order book before the
    child does (refused as unknown); the child's acknowledgement brings the cancel again."""
    from meltica.domain.orders.commands import CancelOrder
    from meltica.domain.orders.events import (
        OrderAcknowledged,
        OrderPendingCancel,
        VenueCancelOrder,
        VenueSubmitOrder,
    )
    from meltica.domain.orders.model import OrderSpec
    from meltica.domain.routing import SmartRouter
    from meltica.domain.values import OrderType

    router = SmartRouter()
    for venue in ("V1", "SOR"):
        router.on_instrument(spot("XY", venue, "X", "Y", price_increment="0.01", size_increment="0.001"))
    router.on_book(QuoteTick("XY.V1", D(99), D(1), D(101), D(1), 0))
    parent = OrderSpec("P1", "c1", "ACC", "XY.SOR", OrderSide.BUY, OrderType.LIMIT, D(1), price=D(100))
    [_ack, child] = router.on_request(VenueSubmitOrder("SOR", parent, 1))
    assert child.order.order_id == "P1-r1"
    [cancel] = router.on_request(VenueCancelOrder("SOR", "P1", "P1", "ACC", "XY.SOR", 2))
    assert isinstance(cancel, CancelOrder)
    again = router.on_child_event(OrderAcknowledged("P1-r1", "P1~r1", "ACC", "XY.V1", 3, "v-1"))
    assert again == [CancelOrder("P1-r1", "ACC", "XY.V1", 3)]
    # once the order book has taken a cancel, an acknowledgement asks nothing more
    assert router.on_child_event(OrderPendingCancel("P1-r1", "P1~r1", "ACC", "XY.V1", 4)) == []
    assert router.on_child_event(OrderAcknowledged("P1-r1", "P1~r1", "ACC", "XY.V1", 5, "v-1")) == []
