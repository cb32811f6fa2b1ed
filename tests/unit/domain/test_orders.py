"""The order decider, example by example."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meltica.domain.marketdata import ClockTick
from meltica.domain.orders import decider as od
from meltica.domain.orders.commands import AmendOrder, CancelAllOrders, CancelOrder
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAcknowledged,
    OrderAmendAccepted,
    OrderAmendRejected,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPendingCancel,
    OrderPendingReplace,
    OrderReplaced,
    OrderSubmitted,
    OrderTransitionRejected,
    OrderTriggered,
    OrderTriggerUpdated,
    VenueAmendOrder,
    VenueCancelOrder,
    VenueSubmitOrder,
)
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.orders.transitions import TRANSITIONS, can_transition
from meltica.domain.risk.events import KillSwitchTripped
from meltica.domain.values import (
    NS_PER_DAY,
    ContingencyType,
    ExecType,
    OrderSide,
    OrderType,
    RiskScope,
    TimeInForce,
    TrailingOffsetType,
    TriggerType,
)
from tests.unit.domain.support import BTC, T0, D, ack, fill, order, quote, report, trade

S = OrderStatus


def run(book: od.OrderBook, inp: object) -> list[object]:
    out = od.decide(book, inp)
    if isinstance(inp, OrderAccepted):
        od.evolve(book, inp)
    for e in out:
        od.evolve(book, e)
    return out


def approved(spec: OrderSpec, ts: int, **terms: Decimal) -> OrderAmendAccepted:
    """An amend as risk lets it through (the order decider acts on nothing else)."""
    return OrderAmendAccepted(
        spec.order_id, spec.client_order_id, spec.account_id, spec.instrument_id, ts, **terms
    )


def types(events: list[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def live(spec: OrderSpec, book: od.OrderBook | None = None) -> od.OrderBook:
    book = book or od.OrderBook()
    run(book, OrderAccepted(spec, T0))
    return book


def status(book: od.OrderBook, spec: OrderSpec) -> OrderStatus:
    return book.orders[spec.order_id].status


# -- the table ----------------------------------------------------------------------------------
def test_terminal_states_allow_nothing() -> None:
    for terminal in (S.DENIED, S.REJECTED, S.FILLED, S.CANCELED, S.EXPIRED):
        assert TRANSITIONS[terminal] == frozenset()
        assert not any(can_transition(terminal, s) for s in S)


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(
    ("current", "target", "legal"),
    [
        (S.PENDING_NEW, S.ACCEPTED, True),
        (S.PENDING_NEW, S.FILLED, False),
        (S.ACCEPTED, S.SUBMITTED, True),
        (S.SUBMITTED, S.FILLED, True),  # a fill may beat the acknowledgement
        (S.NEW, S.PARTIALLY_FILLED, True),
        (S.PENDING_CANCEL, S.FILLED, True),  # the fill raced the cancel
        (S.PENDING_REPLACE, S.REPLACED, True),
        (S.ACCEPTED, S.NEW, False),
        (S.NEW, S.SUBMITTED, False),
    ],
)
def test_transition_table(current: OrderStatus, target: OrderStatus, legal: bool) -> None:
    assert can_transition(current, target) is legal


# -- lifecycle ----------------------------------------------------------------------------------
def test_limit_order_lifecycle() -> None:
    spec = order(qty="2", price="100")
    book = od.OrderBook()
    assert types(run(book, OrderAccepted(spec, T0))) == ["OrderSubmitted", "VenueSubmitOrder"]
    assert status(book, spec) is S.SUBMITTED
    assert types(run(book, ack(spec))) == ["OrderAcknowledged"]
    assert status(book, spec) is S.NEW
    [partial] = run(book, fill(spec, "0.5", "100"))
    assert isinstance(partial, OrderPartiallyFilled)
    assert (partial.cum_qty, partial.leaves_qty) == (D("0.5"), D("1.5"))
    [full] = run(book, fill(spec, "1.5", "99"))
    assert isinstance(full, OrderFilled)
    assert full.avg_px == (D("0.5") * 100 + D("1.5") * 99) / 2
    assert status(book, spec) is S.FILLED


def test_redelivered_acceptance_is_ignored() -> None:
    spec = order()
    book = live(spec)
    assert od.decide(book, OrderAccepted(spec, T0)) == []


def test_fill_before_ack_and_late_ack_keeps_status() -> None:
    spec = order(qty="2")
    book = live(spec)
    run(book, fill(spec, "1", "100"))
    assert status(book, spec) is S.PARTIALLY_FILLED
    [late] = run(book, ack(spec))
    assert isinstance(late, OrderAcknowledged)
    assert status(book, spec) is S.PARTIALLY_FILLED
    assert book.orders[spec.order_id].venue_order_id == f"V-{spec.order_id}"
    assert run(book, ack(spec)) == []  # and a duplicate one is dropped


def test_duplicate_fill_is_ignored_and_overfill_is_an_error_event() -> None:
    spec = order(qty="1")
    book = live(spec)
    first = fill(spec, "0.4", "100", trade_id="T-1")
    run(book, first)
    assert run(book, first) == []
    [err] = run(book, fill(spec, "0.7", "100"))
    assert isinstance(err, OrderTransitionRejected)
    assert "exceed" in err.reason
    assert book.orders[spec.order_id].filled_qty == D("0.4")


def test_reports_on_terminal_orders_are_rejected_not_applied() -> None:
    spec = order(qty="1")
    book = live(spec)
    run(book, fill(spec, "1", "100"))
    [err] = run(book, report(spec, ExecType.CANCELED))
    assert isinstance(err, OrderTransitionRejected)
    assert err.from_status is S.FILLED
    assert status(book, spec) is S.FILLED


def test_report_for_unknown_order() -> None:
    [err] = od.decide(od.OrderBook(), ack(order()))
    assert isinstance(err, OrderTransitionRejected)
    assert err.reason == "unknown order"


def test_venue_reject_and_expiry() -> None:
    a, b = order(), order()
    book = live(b, live(a))
    run(book, report(a, ExecType.REJECTED, reason="insufficient margin"))
    run(book, report(b, ExecType.EXPIRED))
    assert (status(book, a), status(book, b)) == (S.REJECTED, S.EXPIRED)


# -- cancel and amend ---------------------------------------------------------------------------
def test_cancel_at_venue_goes_through_pending_cancel() -> None:
    spec = order()
    book = live(spec)
    run(book, ack(spec))
    out = run(book, CancelOrder(spec.order_id, spec.account_id, spec.instrument_id, T0))
    assert types(out) == ["OrderPendingCancel", "VenueCancelOrder"]
    assert out[1].venue_order_id == f"V-{spec.order_id}"
    assert status(book, spec) is S.PENDING_CANCEL
    [again] = run(book, CancelOrder(spec.order_id, spec.account_id, spec.instrument_id, T0))
    assert isinstance(again, OrderTransitionRejected)  # refused, and the first cancel still pending
    assert (again.reason, status(book, spec)) == ("a cancel is already pending", S.PENDING_CANCEL)
    run(book, report(spec, ExecType.CANCELED))
    assert status(book, spec) is S.CANCELED


def test_cancel_rejected_by_venue_returns_to_previous_status() -> None:
    spec = order(qty="2")
    book = live(spec)
    run(book, ack(spec))
    run(book, fill(spec, "1", "100"))
    run(book, CancelOrder(spec.order_id, spec.account_id, spec.instrument_id, T0))
    run(book, report(spec, ExecType.CANCEL_REJECTED, reason="too late"))
    assert status(book, spec) is S.PARTIALLY_FILLED


def test_fill_racing_a_cancel_fills_the_order() -> None:
    spec = order(qty="1")
    book = live(spec)
    run(book, ack(spec))
    run(book, CancelOrder(spec.order_id, spec.account_id, spec.instrument_id, T0))
    run(book, fill(spec, "1", "100"))
    assert status(book, spec) is S.FILLED


def test_cancel_unknown_foreign_and_terminal_orders() -> None:
    spec = order()
    book = live(spec)
    [unknown] = od.decide(book, CancelOrder("nope", "ACC-1", BTC.instrument_id, T0))
    [foreign] = od.decide(book, CancelOrder(spec.order_id, "ACC-2", BTC.instrument_id, T0))
    assert unknown.reason == foreign.reason == "unknown order"
    run(book, fill(spec, "1", "100"))
    [done] = od.decide(book, CancelOrder(spec.order_id, "ACC-1", BTC.instrument_id, T0))
    assert isinstance(done, OrderCancelRejected)
    assert "FILLED" in done.reason


def test_a_cancel_the_status_table_refuses_is_rejected_not_dropped() -> None:
    """An order the venue reports triggered may not go to PENDING_CANCEL: the client hears why, and a
    bulk cancel records the refusal for operators."""
    spec = order()
    book = live(spec)
    run(book, ack(spec))
    run(book, report(spec, ExecType.TRIGGERED))  # the venue says its order went live
    assert status(book, spec) is S.TRIGGERED
    assert not can_transition(S.TRIGGERED, S.PENDING_CANCEL)
    [client] = run(book, CancelOrder(spec.order_id, spec.account_id, spec.instrument_id, T0))
    assert isinstance(client, OrderCancelRejected)
    assert client.reason == "TRIGGERED cannot become PENDING_CANCEL"
    [bulk] = run(book, CancelAllOrders("ACC-1", T0))
    assert isinstance(bulk, OrderTransitionRejected)
    assert (bulk.from_status, bulk.attempted) == (S.TRIGGERED, "cancel (cancel all)")
    assert status(book, spec) is S.TRIGGERED, "a refusal changes nothing"


def test_amend_at_venue_and_below_filled_quantity() -> None:
    spec = order(qty="3", price="100")
    book = live(spec)
    run(book, ack(spec))
    run(book, fill(spec, "1", "100"))
    [low] = run(book, approved(spec, T0, quantity=D("1")))
    assert isinstance(low, OrderAmendRejected)
    assert "filled" in low.reason
    out = run(book, approved(spec, T0, quantity=D("2"), price=D("101")))
    assert isinstance(out[0], OrderPendingReplace)
    assert isinstance(out[1], VenueAmendOrder)
    assert status(book, spec) is S.PENDING_REPLACE
    run(book, report(spec, ExecType.REPLACED, quantity=D("2"), price=D("101")))
    o = book.orders[spec.order_id]
    assert (o.status, o.quantity, o.price, o.leaves_qty) == (S.REPLACED, D("2"), D("101"), D("1"))
    run(book, fill(spec, "1", "101"))
    assert status(book, spec) is S.FILLED


def test_the_book_acts_on_no_amend_risk_has_not_let_through() -> None:
    spec = order(qty="1", price="100")
    book = live(spec)
    run(book, ack(spec))
    raw = AmendOrder(spec.order_id, "ACC-1", spec.instrument_id, T0, quantity=D("500"), price=D("1"))
    assert od.decide(book, raw) == []
    assert (status(book, spec), book.orders[spec.order_id].quantity) == (S.NEW, D("1"))


def test_an_amend_refused_while_another_request_is_pending_does_not_end_it() -> None:
    spec = order(qty="3")
    book = live(spec)
    run(book, ack(spec))
    run(book, approved(spec, T0, price=D("99")))
    [second] = run(book, approved(spec, T0, price=D("98")))
    assert isinstance(second, OrderTransitionRejected)
    assert status(book, spec) is S.PENDING_REPLACE, "still waiting for the venue's answer"
    run(book, report(spec, ExecType.REPLACED, quantity=D("3"), price=D("99")))
    assert (status(book, spec), book.orders[spec.order_id].price) == (S.REPLACED, D("99"))
    run(book, CancelOrder(spec.order_id, spec.account_id, spec.instrument_id, T0))
    [third] = run(book, approved(spec, T0, price=D("97")))
    assert isinstance(third, OrderTransitionRejected)
    run(book, report(spec, ExecType.REPLACE_REJECTED, reason="stray"))
    assert status(book, spec) is S.PENDING_CANCEL, "an amend's rejection leaves a pending cancel alone"


def test_amend_rejected_by_venue_restores_status() -> None:
    spec = order(qty="3")
    book = live(spec)
    run(book, ack(spec))
    run(book, approved(spec, T0, price=D("99")))
    run(book, report(spec, ExecType.REPLACE_REJECTED, reason="no"))
    assert status(book, spec) is S.NEW
    assert book.orders[spec.order_id].price == D("100")


def test_amend_needs_something_meaningful() -> None:
    market = order(OrderType.MARKET, price=None)
    book = live(market)
    [r] = od.decide(book, approved(market, T0, price=D("1")))
    assert isinstance(r, OrderAmendRejected)
    [r] = od.decide(book, approved(market, T0))
    assert r.reason == "nothing to amend"


def test_cancel_all_by_instrument_and_side() -> None:
    a = order(side=OrderSide.BUY)
    b = order(side=OrderSide.SELL)
    c = order(instrument="ETHUSDT.SIM")
    book = live(c, live(b, live(a)))
    out = run(book, CancelAllOrders("ACC-1", T0, instrument_id=BTC.instrument_id, side=OrderSide.SELL))
    assert [e.order_id for e in out if isinstance(e, OrderPendingCancel)] == [b.order_id]
    out = run(book, CancelAllOrders("ACC-1", T0))
    assert {e.order_id for e in out if isinstance(e, VenueCancelOrder)} == {a.order_id, c.order_id}


def test_kill_switch_cancels_open_orders_in_scope() -> None:
    a, b = order(account="ACC-1"), order(account="ACC-2")
    book = live(b, live(a))
    out = run(book, KillSwitchTripped(RiskScope.ACCOUNT, "ACC-1", "ops", "alice", T0))
    assert {e.order_id for e in out} == {a.order_id}
    out = run(book, KillSwitchTripped(RiskScope.GLOBAL, "", "ops", "alice", T0))
    assert {e.order_id for e in out} == {b.order_id}


# -- triggers -----------------------------------------------------------------------------------
def test_stop_market_waits_for_its_trigger() -> None:
    spec = order(
        OrderType.STOP_MARKET,
        side=OrderSide.SELL,
        price=None,
        trigger_price=D("95"),
        trigger_type=TriggerType.LAST,
    )
    book = od.OrderBook()
    assert run(book, OrderAccepted(spec, T0)) == []
    assert status(book, spec) is S.ACCEPTED
    assert run(book, trade("96")) == []
    assert run(book, quote("94", "94.1")) == []  # LAST ignores quotes
    out = run(book, trade("95"))
    assert types(out) == ["OrderTriggered", "OrderSubmitted", "VenueSubmitOrder"]
    sent = out[2].order
    assert (sent.order_type, sent.price, sent.trigger_price) == (OrderType.MARKET, None, None)
    assert status(book, spec) is S.SUBMITTED
    assert run(book, trade("90")) == []


def test_stop_limit_buy_on_ask() -> None:
    spec = order(OrderType.STOP_LIMIT, price="106", trigger_price=D("105"), trigger_type=TriggerType.ASK)
    book = live(spec)
    assert run(book, quote("104", "104.5")) == []
    out = run(book, quote("104.9", "105.2"))
    assert isinstance(out[0], OrderTriggered)
    assert out[2].order.order_type is OrderType.LIMIT
    assert out[2].order.price == D("106")


def test_trailing_stop_follows_the_market_then_fires() -> None:
    spec = order(
        OrderType.TRAILING_STOP_MARKET,
        side=OrderSide.SELL,
        price=None,
        trailing_offset=D("2"),
        trailing_offset_type=TrailingOffsetType.PRICE,
        trigger_type=TriggerType.LAST,
    )
    book = live(spec)
    [u] = run(book, trade("100"))
    assert isinstance(u, OrderTriggerUpdated)
    assert u.trigger_price == D("98")
    [u] = run(book, trade("104"))
    assert u.trigger_price == D("102")
    assert run(book, trade("103")) == []  # never moves against the order
    out = run(book, trade("101.5"))
    assert isinstance(out[0], OrderTriggered)
    assert out[0].trigger_price == D("102")


def test_trailing_stop_limit_in_basis_points() -> None:
    spec = order(
        OrderType.TRAILING_STOP_LIMIT,
        side=OrderSide.BUY,
        price=None,
        trailing_offset=D("100"),
        trailing_offset_type=TrailingOffsetType.BASIS_POINTS,
        limit_offset=D("0.5"),
        trigger_type=TriggerType.LAST,
    )
    book = live(spec)
    run(book, trade("200"))
    assert book.orders[spec.order_id].trigger_price == D("202.00")
    out = run(book, trade("202"))
    assert out[2].order.price == D("202.50")


def test_canceling_a_held_stop_needs_no_venue() -> None:
    spec = order(OrderType.STOP_MARKET, price=None, trigger_price=D("105"))
    book = live(spec)
    out = run(book, CancelOrder(spec.order_id, "ACC-1", spec.instrument_id, T0))
    assert types(out) == ["OrderCanceled"]
    [out] = run(book, approved(spec, T0, trigger_price=D("106")))
    assert isinstance(out, OrderAmendRejected)
    assert "CANCELED" in out.reason


def test_amend_of_held_stop_changes_trigger_locally() -> None:
    spec = order(OrderType.STOP_MARKET, price=None, trigger_price=D("105"))
    book = live(spec)
    [r] = run(book, approved(spec, T0, trigger_price=D("106")))
    assert isinstance(r, OrderReplaced)
    assert status(book, spec) is S.ACCEPTED
    assert run(book, trade("105.5")) == []
    assert isinstance(run(book, trade("106"))[0], OrderTriggered)


# -- time in force ------------------------------------------------------------------------------
def test_gtd_and_day_orders_expire_while_held() -> None:
    gtd = order(
        OrderType.STOP_MARKET,
        price=None,
        trigger_price=D("150"),
        time_in_force=TimeInForce.GTD,
        expire_time_ns=T0 + 10,
    )
    day = order(OrderType.STOP_MARKET, price=None, trigger_price=D("150"), time_in_force=TimeInForce.DAY)
    book = live(day, live(gtd))
    assert run(book, ClockTick(T0 + 9)) == []
    [e] = run(book, ClockTick(T0 + 10))
    assert isinstance(e, OrderExpired)
    assert e.order_id == gtd.order_id
    midnight = (T0 // NS_PER_DAY + 1) * NS_PER_DAY
    assert run(book, ClockTick(midnight - 1)) == []
    [e] = run(book, ClockTick(midnight))
    assert e.order_id == day.order_id


# -- contingent orders --------------------------------------------------------------------------
def oco_pair() -> tuple[OrderSpec, OrderSpec]:
    a = order(
        order_id="TP",
        side=OrderSide.SELL,
        qty="2",
        price="110",
        contingency_type=ContingencyType.OCO,
        linked_order_ids=("SL",),
        order_list_id="L1",
    )
    b = order(
        OrderType.STOP_MARKET,
        order_id="SL",
        side=OrderSide.SELL,
        qty="2",
        price=None,
        trigger_price=D("90"),
        contingency_type=ContingencyType.OCO,
        linked_order_ids=("TP",),
        order_list_id="L1",
    )
    return a, b


def test_oco_fill_cancels_the_sibling() -> None:
    a, b = oco_pair()
    book = live(b, live(a))
    out = run(book, fill(a, "2", "110"))
    assert types(out) == ["OrderFilled", "OrderCanceled"]
    assert out[1].order_id == "SL"


def test_oco_partial_fill_reduces_the_sibling() -> None:
    a, b = oco_pair()
    book = live(b, live(a))
    out = run(book, fill(a, "0.5", "110"))
    assert types(out) == ["OrderPartiallyFilled", "OrderReplaced"]
    assert book.orders["SL"].quantity == D("1.5")


def test_oco_sibling_at_venue_is_canceled_through_the_venue() -> None:
    a = order(order_id="A", qty="1", contingency_type=ContingencyType.OCO, linked_order_ids=("B",))
    b = order(
        order_id="B", qty="1", price="90", contingency_type=ContingencyType.OCO, linked_order_ids=("A",)
    )
    book = live(b, live(a))
    run(book, ack(b))
    out = run(book, fill(a, "1", "100"))
    assert types(out) == ["OrderFilled", "OrderPendingCancel", "VenueCancelOrder"]


def bracket() -> tuple[OrderSpec, OrderSpec, OrderSpec]:
    entry = order(
        order_id="E", qty="1", price="100", contingency_type=ContingencyType.OTO, order_list_id="B1"
    )
    tp = order(
        order_id="E-TP",
        side=OrderSide.SELL,
        qty="1",
        price="110",
        parent_order_id="E",
        contingency_type=ContingencyType.OCO,
        linked_order_ids=("E-SL",),
        order_list_id="B1",
    )
    sl = order(
        OrderType.STOP_MARKET,
        order_id="E-SL",
        side=OrderSide.SELL,
        qty="1",
        price=None,
        trigger_price=D("95"),
        trigger_type=TriggerType.LAST,
        parent_order_id="E",
        contingency_type=ContingencyType.OCO,
        linked_order_ids=("E-TP",),
        order_list_id="B1",
    )
    return entry, tp, sl


def test_bracket_children_wait_for_the_entry_fill() -> None:
    entry, tp, sl = bracket()
    book = od.OrderBook()
    assert types(run(book, OrderAccepted(entry, T0))) == ["OrderSubmitted", "VenueSubmitOrder"]
    assert run(book, OrderAccepted(tp, T0)) == []
    assert run(book, OrderAccepted(sl, T0)) == []
    assert run(book, trade("90")) == []  # the stop-loss is not armed before the entry fills
    out = run(book, fill(entry, "1", "100"))
    assert types(out) == ["OrderFilled", "OrderSubmitted", "VenueSubmitOrder"]
    assert out[2].order.order_id == "E-TP"
    out = run(book, trade("94"))
    assert isinstance(out[0], OrderTriggered)
    assert out[0].order_id == "E-SL"
    run(book, ack(sl))
    out = run(book, fill(sl, "1", "94"))
    assert types(out) == ["OrderFilled", "OrderPendingCancel", "VenueCancelOrder"]
    assert out[2].order_id == "E-TP"


def test_bracket_children_are_canceled_when_the_entry_is_canceled() -> None:
    entry, tp, sl = bracket()
    book = live(sl, live(tp, live(entry)))
    out = run(book, report(entry, ExecType.CANCELED))
    assert types(out) == ["OrderCanceled", "OrderCanceled", "OrderCanceled"]
    assert all(not o.is_open for o in book.orders.values())


def test_venue_gets_the_current_quantity_and_price() -> None:
    spec = order(qty="1", price="100")
    out = od.decide(od.OrderBook(), OrderAccepted(spec, T0))
    assert isinstance(out[0], OrderSubmitted)
    assert isinstance(out[1], VenueSubmitOrder)
    assert out[1].order.quantity == Decimal("1")
    assert out[1].venue == "SIM"
