"""Trailing stops with an activation price, and the spec rules of trailing stops and icebergs."""

from __future__ import annotations

from typing import Any

import pytest

from meltica.domain.orders import decider as od
from meltica.domain.orders.commands import AmendOrder, SubmitOrder
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendAccepted,
    OrderDenied,
    OrderTriggered,
    OrderTriggerUpdated,
)
from meltica.domain.values import OrderSide, OrderType, TimeInForce, TrailingOffsetType, TriggerType
from tests.unit.domain.flow import Flow
from tests.unit.domain.support import BTC, ETH, T0, D, order, quote, trade


def run(book: od.OrderBook, inp: object) -> list[object]:
    out = od.decide(book, inp)
    for e in out:
        od.evolve(book, e)
    return out


def trailing(side: OrderSide, offset: str, kind: TrailingOffsetType, **kw: Any) -> Any:
    return order(
        OrderType.TRAILING_STOP_MARKET,
        side=side,
        price=None,
        trailing_offset=D(offset),
        trailing_offset_type=kind,
        trigger_type=TriggerType.LAST,
        **kw,
    )


def test_a_sell_trails_only_once_the_market_reaches_its_activation_price() -> None:
    spec = trailing(OrderSide.SELL, "2", TrailingOffsetType.PRICE, activation_price=D("105"))
    book = od.OrderBook()
    od.evolve(book, OrderAccepted(spec, T0))
    assert run(book, trade("100")) == []
    assert run(book, trade("99")) == [], "below the activation price: no trail, no trigger"
    [u] = run(book, trade("105"))
    assert isinstance(u, OrderTriggerUpdated)
    assert u.trigger_price == D("103")
    [u] = run(book, trade("108"))
    assert u.trigger_price == D("106")
    out = run(book, trade("104.5"))
    assert isinstance(out[0], OrderTriggered)
    assert out[2].order.order_type is OrderType.MARKET  # VenueSubmitOrder of the fired stop
    assert book.orders[spec.order_id].triggered
    assert book.orders[spec.order_id].trigger_price == D("106")


def test_a_buy_in_basis_points_activates_from_above() -> None:
    spec = trailing(OrderSide.BUY, "100", TrailingOffsetType.BASIS_POINTS, activation_price=D("90"))
    book = od.OrderBook()
    od.evolve(book, OrderAccepted(spec, T0))
    assert run(book, trade("95")) == []
    [u] = run(book, trade("90"))
    assert u.trigger_price == D("90.9")  # 90 + 1%
    [u] = run(book, trade("80"))
    assert u.trigger_price == D("80.8")
    out = run(book, trade("80.8"))
    assert isinstance(out[0], OrderTriggered)
    assert out[0].trigger_price == D("80.8")


BAD: list[tuple[str, dict[str, Any]]] = [
    (
        "trailing_offset in basis points must be below 10000",
        {
            "order_type": OrderType.TRAILING_STOP_MARKET,
            "price": None,
            "trailing_offset": D(10_000),
            "trailing_offset_type": TrailingOffsetType.BASIS_POINTS,
        },
    ),
    ("trailing_offset and limit_offset apply to trailing-stop orders", {"trailing_offset": D(1)}),
    ("activation_price applies to trailing-stop orders", {"activation_price": D(1)}),
    ("display_quantity must be positive and at most the quantity", {"qty": "2", "display_quantity": D(3)}),
    ("display_quantity must be positive and at most the quantity", {"qty": "2", "display_quantity": D(0)}),
    (
        "applies to orders with a limit price",
        {"order_type": OrderType.MARKET, "price": None, "qty": "2", "display_quantity": D(1)},
    ),
    ("cannot be IOC or FOK", {"qty": "2", "display_quantity": D(1), "time_in_force": TimeInForce.IOC}),
]


@pytest.mark.parametrize(("problem", "kw"), BAD, ids=[b[0][:40] + str(i) for i, b in enumerate(BAD)])
def test_malformed_trailing_stops_and_icebergs(problem: str, kw: dict[str, Any]) -> None:
    kind = kw.pop("order_type", OrderType.LIMIT)
    found = order(kind, **kw).problems()
    assert found is not None
    assert problem in found


def flow() -> Flow:
    f = Flow()
    f.define(BTC, ETH)
    f.deposit("ACC-1", "USDT", "1000000")
    f.deposit("ACC-1", "BTC", "10")
    f.market(quote("99.99", "100.01"))
    return f


def decision(activation: str, side: OrderSide = OrderSide.SELL) -> Any:
    spec = trailing(side, "1", TrailingOffsetType.PRICE, activation_price=D(activation))
    [d, *_] = flow().submit(SubmitOrder(spec, T0))
    return d.reason if isinstance(d, OrderDenied) else "accepted"


def test_risk_wants_the_activation_price_ahead_of_the_market_and_on_the_tick() -> None:
    assert decision("100.50") == "accepted"
    assert decision("99.50") == "activation_price_reached", "a sell's activation below the market"
    assert decision("99.50", OrderSide.BUY) == "accepted"
    assert decision("100.50", OrderSide.BUY) == "activation_price_reached"
    assert decision("100.505") == "price_precision"
    assert decision("150") == "price_band"


def test_an_activated_trailing_stop_can_still_be_amended() -> None:
    f = flow()
    spec = trailing(OrderSide.SELL, "1", TrailingOffsetType.PRICE, activation_price=D("100.50"))
    [accepted, *_] = f.submit(SubmitOrder(spec, T0))
    assert isinstance(accepted, OrderAccepted)
    [moved] = f.market(trade("100.60"))
    assert isinstance(moved, OrderTriggerUpdated)
    [decision, *_] = f.amend(AmendOrder(spec.order_id, spec.account_id, spec.instrument_id, T0 + 1, D("0.5")))
    assert isinstance(decision, OrderAmendAccepted), decision
