"""The simulated venue's matching engine and models."""

from __future__ import annotations

from meltica.domain.marketdata import (
    AggressorSide,
    BookAction,
    BookLevel,
    OrderBookDelta,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from meltica.domain.orders.events import VenueAmendOrder, VenueCancelOrder, VenueSubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import ExecType, LiquiditySide, OrderSide, OrderType, TimeInForce
from meltica.venues.sim import BpsFees, FixedLatency, FixedTickSlippage, RandomLatency, SimVenue
from tests.unit.domain.support import BTC, T0, D

INST = BTC.instrument_id


def venue(**kw: object) -> SimVenue:
    v = SimVenue("SIM", **kw)  # type: ignore[arg-type]
    v.on_instrument(BTC)
    v.on_market(
        OrderBookSnapshot(
            INST,
            1,
            (BookLevel(D("100.00"), D("2")), BookLevel(D("99.99"), D("5"))),
            (BookLevel(D("100.02"), D("1")), BookLevel(D("100.05"), D("3"))),
            T0,
        )
    )
    return v


def spec(
    side: OrderSide = OrderSide.BUY, qty: str = "1", price: str | None = None, **kw: object
) -> OrderSpec:
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    return OrderSpec("O1", "O1", "A", INST, side, kind, D(qty), None if price is None else D(price), **kw)  # type: ignore[arg-type]


def submit(v: SimVenue, s: OrderSpec, ts: int = T0) -> list:  # type: ignore[type-arg]
    return v.on_request(VenueSubmitOrder("SIM", s, ts))


def kinds(reports: list) -> list[str]:  # type: ignore[type-arg]
    return [r.exec_type.value for r in reports]


def test_market_order_fills_across_levels() -> None:
    reports = submit(venue(), spec(qty="3"))
    assert kinds(reports) == ["NEW", "TRADE", "TRADE"]
    assert [(r.fill.last_qty, r.fill.last_px) for r in reports[1:]] == [
        (D("1"), D("100.02")),
        (D("2"), D("100.05")),
    ]
    assert reports[-1].avg_px == (D("100.02") + 2 * D("100.05")) / 3
    assert all(r.fill.liquidity_side is LiquiditySide.TAKER for r in reports[1:])


def test_taken_liquidity_is_gone_until_the_market_updates() -> None:
    v = venue()
    submit(v, spec(qty="1"))
    again = v.on_request(
        VenueSubmitOrder("SIM", OrderSpec("O2", "O2", "A", INST, OrderSide.BUY, OrderType.MARKET, D(1)), T0)
    )
    assert again[1].fill.last_px == D("100.05")


def test_market_order_without_enough_liquidity_cancels_the_rest() -> None:
    reports = submit(venue(), spec(qty="10"))
    assert kinds(reports) == ["NEW", "TRADE", "TRADE", "CANCELED"]


def test_fees_slippage_and_latency_models() -> None:
    v = venue(
        fees=BpsFees(maker_bps=D(1), taker_bps=D(10)),
        slippage=FixedTickSlippage(2),
        latency=FixedLatency(5_000),
    )
    [new, trade] = submit(v, spec(qty="1"))
    assert trade.fill.last_px == D("100.04")
    assert trade.fill.fee == D("100.04") * D("0.001")
    assert new.ts == T0 + 5_000


def test_random_latency_is_deterministic_per_seed_and_order() -> None:
    a, b = RandomLatency(1_000, 9_000, seed=1), RandomLatency(1_000, 9_000, seed=1)
    assert [a.delay_ns(f"O{i}", "submit") for i in range(20)] == [
        b.delay_ns(f"O{i}", "submit") for i in range(20)
    ]
    assert len({a.delay_ns(f"O{i}", "submit") for i in range(20)}) > 5
    assert all(1_000 <= a.delay_ns(f"O{i}", "x") <= 9_000 for i in range(50))


def test_ioc_fok_post_only() -> None:
    assert kinds(submit(venue(), spec(qty="2", price="100.02", time_in_force=TimeInForce.IOC))) == [
        "NEW",
        "TRADE",
        "CANCELED",
    ]
    assert kinds(submit(venue(), spec(qty="5", price="100.02", time_in_force=TimeInForce.FOK))) == [
        "NEW",
        "CANCELED",
    ]
    assert kinds(submit(venue(), spec(qty="4", price="100.05", time_in_force=TimeInForce.FOK)))[-1] == "TRADE"
    [rejected] = submit(venue(), spec(qty="1", price="100.02", post_only=True))
    assert rejected.exec_type is ExecType.REJECTED


def test_resting_order_queue_position() -> None:
    v = venue()
    assert kinds(submit(v, spec(qty="1", price="100.00"))) == ["NEW"]  # 2 ahead at 100.00
    assert v.on_market(TradeTick(INST, D("100.00"), D("1.5"), AggressorSide.SELLER, "t1", T0)) == []
    [fill] = v.on_market(TradeTick(INST, D("100.00"), D("1"), AggressorSide.SELLER, "t2", T0))
    assert (fill.fill.last_qty, fill.fill.liquidity_side) == (D("0.5"), LiquiditySide.MAKER)
    [rest] = v.on_market(
        TradeTick(INST, D("99.98"), D("7"), AggressorSide.SELLER, "t3", T0)
    )  # through our price
    assert rest.fill.last_qty == D("0.5")
    assert rest.fill.last_px == D("100.00")
    assert v.resting == {}


def test_book_moving_through_a_resting_order_fills_it() -> None:
    v = venue()
    submit(v, spec(side=OrderSide.SELL, qty="1", price="100.03"))
    [fill] = v.on_market(QuoteTick(INST, D("100.04"), D("3"), D("100.06"), D("3"), T0 + 1))
    assert (fill.fill.last_px, fill.fill.liquidity_side) == (D("100.03"), LiquiditySide.MAKER)


def test_deltas_update_the_book() -> None:
    v = venue()
    v.on_market(OrderBookDelta(INST, BookAction.DELETE, OrderSide.SELL, D("100.02"), D(0), 2, T0))
    [_, trade] = submit(v, spec(qty="1"))
    assert trade.fill.last_px == D("100.05")


def test_cancel_amend_and_expiry() -> None:
    v = venue()
    submit(v, spec(qty="1", price="99.00"))
    [replaced] = v.on_request(
        VenueAmendOrder("SIM", "O1", None, "A", INST, T0, quantity=D("2"), price=D("99.50"))
    )
    assert (replaced.exec_type, replaced.quantity, replaced.price) == (ExecType.REPLACED, D("2"), D("99.50"))
    [canceled] = v.on_request(VenueCancelOrder("SIM", "O1", None, "A", INST, T0))
    assert canceled.exec_type is ExecType.CANCELED
    [again] = v.on_request(VenueCancelOrder("SIM", "O1", None, "A", INST, T0))
    assert again.exec_type is ExecType.CANCEL_REJECTED
    submit(
        v,
        OrderSpec(
            "G",
            "G",
            "A",
            INST,
            OrderSide.BUY,
            OrderType.LIMIT,
            D(1),
            D("99.00"),
            time_in_force=TimeInForce.GTD,
            expire_time_ns=T0 + 10,
        ),
    )
    [expired] = v.on_market(QuoteTick(INST, D("99.90"), D(1), D("100.00"), D(1), T0 + 10))
    assert (expired.order_id, expired.exec_type) == ("G", ExecType.EXPIRED)


def test_market_order_without_market_is_rejected() -> None:
    v = SimVenue("SIM")
    v.on_instrument(BTC)
    [r] = submit(v, spec(qty="1"))
    assert r.exec_type is ExecType.REJECTED
