"""Pre-trade risk on every path to a live order: amends are judged as the order they make, and
no order id is ever accepted twice."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from meltica.domain.orders.commands import AmendOrder, SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendAccepted,
    OrderAmendRejected,
    OrderDenied,
    OrderReplaced,
    OrderTransitionRejected,
)
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.risk.events import SetRiskLimits, SetTradingState, TripKillSwitch
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import (
    NS_PER_SECOND,
    ContingencyType,
    ExecType,
    OrderSide,
    OrderType,
    RiskScope,
    TradingState,
)
from tests.unit.domain.flow import Flow
from tests.unit.domain.support import BTC, T0, D, ack, fill, order, quote, report

SEC = NS_PER_SECOND


def am1(usdt: Any = "1000", *, limits: RiskLimits | None = None) -> Flow:
    """The issue's account: 1000 USDT, BTC at 42,700."""
    f = Flow()
    f.define(BTC)
    f.deposit("AM1", "USDT", usdt)
    f.market(quote("42699.99", "42700.01"))
    if limits is not None:
        f.risk_command(SetRiskLimits(RiskScope.GLOBAL, "", limits, "ops", T0))
    return f


def resting(f: Flow, qty: str = "0.01", price: str = "42700", ts: int = T0, **kw: Any) -> OrderSpec:
    spec = order(qty=qty, price=price, account="AM1", **kw)
    [accepted] = f.submit(SubmitOrder(spec, ts))
    assert isinstance(accepted, OrderAccepted)
    f.report(ack(spec, ts=ts))
    return spec


def amend(f: Flow, spec: OrderSpec, ts: int, **terms: str) -> list[Any]:
    values = {k: D(v) for k, v in terms.items()}
    return f.amend(AmendOrder(spec.order_id, spec.account_id, spec.instrument_id, ts, **values))


def reason(out: list[Any]) -> str:
    [rejected, *_] = out
    assert isinstance(rejected, OrderAmendRejected), out
    return rejected.reason


# Each case: the amend of a resting 0.01 @ 42,700 (1000 USDT), and risk's reason to refuse it.
AMENDS: list[tuple[str, dict[str, str], RiskLimits | None]] = [
    ("price_band", {"quantity": "5", "price": "43500"}, None),  # the amend
    ("notional_below_min", {"price": "1"}, None),  # the other amend (0.01 USDT)
    ("price_band", {"price": "42000"}, None),
    ("quantity_precision", {"quantity": "0.00001"}, None),
    ("price_precision", {"price": "42700.001"}, None),
    ("max_order_notional", {"quantity": "5"}, None),
    ("quantity_above_max", {"quantity": "2"}, RiskLimits(max_quantity=D("1"))),
    ("max_position", {"quantity": "1"}, RiskLimits(max_position=D("0.5"))),
    ("max_gross_exposure", {"quantity": "0.02"}, RiskLimits(max_gross_exposure=D("500"))),
    ("insufficient_balance", {"quantity": "0.05"}, None),
]


@pytest.mark.parametrize(("expected", "terms", "limits"), AMENDS, ids=[f"{c[0]}-{c[1]}" for c in AMENDS])
def test_an_amend_is_judged_as_the_order_it_makes(
    expected: str, terms: dict[str, str], limits: RiskLimits | None
) -> None:
    f = am1(limits=limits)
    spec = resting(f)
    fresh = order(qty=terms.get("quantity", "0.01"), price=terms.get("price", "42700"), account="AM1")
    out = amend(f, spec, T0 + SEC, **terms)
    assert reason(out) == expected
    o = f.book.orders[spec.order_id]
    assert (o.status, o.quantity, o.price) == (OrderStatus.NEW, D("0.01"), D("42700")), "nothing changed"
    assert not f.venue[1:], "nothing went to the venue"
    assert f.risk.accounts["AM1"].reserved("USDT") == D("427.427")
    # the same order submitted fresh (without the resting one) is denied for the same reason
    g = am1(limits=limits)
    [decision] = g.submit(SubmitOrder(fresh, T0 + SEC))
    assert isinstance(decision, OrderDenied)
    assert decision.reason == expected


def test_an_amend_releases_its_own_hold_before_reserving_the_new_one() -> None:
    f = am1()
    spec = resting(f)
    # 0.023 @ 42,700 needs 982.1 of the 1000: only possible once the 427.4 held is released
    [ok, *_] = amend(f, spec, T0 + SEC, quantity="0.023")
    assert isinstance(ok, OrderAmendAccepted)
    account = f.risk.accounts["AM1"]
    assert account.reserved("USDT") == D("0.023") * D("42700") * D("1.001"), "held while pending"
    f.report(report(spec, ExecType.REPLACED, quantity=D("0.023"), price=D("42700")))
    assert f.book.orders[spec.order_id].quantity == D("0.023")
    assert account.reserved("USDT") == D("0.023") * D("42700") * D("1.001")
    assert f.portfolio.balance("AM1", "USDT").locked == account.reserved("USDT"), "portfolio agrees"


def test_a_pending_amend_holds_the_larger_of_its_old_and_new_terms() -> None:
    f = am1()
    spec = resting(f, qty="0.02")
    account = f.risk.accounts["AM1"]
    old = account.reserved("USDT")
    [ok, *_] = amend(f, spec, T0 + SEC, quantity="0.01")
    assert isinstance(ok, OrderAmendAccepted)
    assert account.reserved("USDT") == old, "the old terms may still fill until the venue answers"
    f.report(report(spec, ExecType.REPLACE_REJECTED, reason="no"))
    assert account.open_orders[spec.order_id].pending is None
    assert account.reserved("USDT") == old
    amend(f, spec, T0 + 2 * SEC, quantity="0.01")
    f.report(report(spec, ExecType.REPLACED, quantity=D("0.01"), price=D("42700")))
    assert account.reserved("USDT") == old / 2


def test_a_second_amend_waits_for_the_first() -> None:
    f = am1()
    spec = resting(f)
    amend(f, spec, T0 + SEC, price="42690")
    [second] = amend(f, spec, T0 + 2 * SEC, price="42680")
    assert isinstance(second, OrderTransitionRejected)
    assert second.reason == "an amend is pending"
    assert f.book.orders[spec.order_id].status is OrderStatus.PENDING_REPLACE


def test_an_amend_after_a_partial_fill_is_judged_on_what_it_leaves() -> None:
    f = am1(usdt="2000", limits=RiskLimits(max_position=D("0.04")))
    spec = resting(f, qty="0.03")
    f.report(fill(spec, "0.02", "42700"))
    # position 0.02 + leaves 0.03 = 0.05 > 0.04
    assert reason(amend(f, spec, T0 + SEC, quantity="0.05")) == "max_position"
    # position 0.02 + leaves 0.02 = 0.04
    [ok, *_] = amend(f, spec, T0 + 2 * SEC, quantity="0.04")
    assert isinstance(ok, OrderAmendAccepted)


def test_a_trading_halt_or_kill_switch_refuses_amends_too() -> None:
    f = am1()
    spec = resting(f)
    f.risk_command(SetTradingState(RiskScope.ACCOUNT, "AM1", TradingState.HALTED, "ops", T0))
    assert reason(amend(f, spec, T0 + SEC, price="42690")) == "trading_halted"
    g = am1()
    spec = resting(g)
    g.risk_command(TripKillSwitch(RiskScope.INSTRUMENT, BTC.instrument_id, "manual", "ops", T0))
    assert reason(amend(g, spec, T0 + SEC, price="42690")) == "kill_switch"


def test_amends_spend_throttle_tokens_and_count_as_breaches() -> None:
    f = am1()  # 5/s, burst 3; three breaches in a minute trip the account's kill switch
    spec = resting(f)
    out = [amend(f, spec, T0 + 1 + i, price="50000") for i in range(3)]
    assert [reason(o) for o in out] == ["price_band"] * 3
    assert type(out[2][1]).__name__ == "KillSwitchTripped"
    g = am1(usdt="100000")
    spec = resting(g, qty="0.001")
    for i, px in enumerate(("42701", "42702")):
        assert isinstance(amend(g, spec, T0 + 1 + i, price=px)[0], OrderAmendAccepted)
        g.report(report(spec, ExecType.REPLACED, quantity=D("0.001"), price=D(px)))
    assert reason(amend(g, spec, T0 + 3, price="42703")) == "throttled"


def test_amends_of_unknown_foreign_closed_or_meaningless_orders() -> None:
    f = am1()
    spec = resting(f)
    assert (
        reason(f.amend(AmendOrder("nope", "AM1", BTC.instrument_id, T0, price=D("42690")))) == "unknown order"
    )
    foreign = AmendOrder(spec.order_id, "OTHER", BTC.instrument_id, T0, price=D("42690"))
    assert reason(f.amend(foreign)) == "unknown order"
    assert reason(amend(f, spec, T0 + SEC)) == "nothing to amend"
    assert "filled" in reason(amend(f, spec, T0 + SEC, quantity="0"))
    f.report(fill(spec, "0.01", "42700"))
    assert reason(amend(f, spec, T0 + 2 * SEC, price="42690")) == "order is not open"


def test_a_held_stop_amended_out_of_the_band_is_refused() -> None:
    f = am1()
    stop = order(OrderType.STOP_MARKET, qty="0.01", price=None, trigger_price=D("42800"), account="AM1")
    assert isinstance(f.submit(SubmitOrder(stop, T0))[0], OrderAccepted)
    assert reason(amend(f, stop, T0 + SEC, trigger_price="45000")) == "price_band"
    [ok] = amend(f, stop, T0 + 2 * SEC, trigger_price="42750")
    assert isinstance(ok, OrderAmendAccepted)
    assert isinstance(f.events[-2], OrderReplaced), "a held stop is amended where it is held"
    assert f.risk.accounts["AM1"].open_orders[stop.order_id].spec.trigger_price == D("42750")  # type: ignore[union-attr]


# -- duplicate order ids ----------------------------------------------------------------------
def test_a_list_naming_one_order_id_twice_is_denied_whole() -> None:
    f = am1()
    a = order(qty="0.01", price="42700", account="AM1", order_id="DUP", client_order_id="DUP")
    b = order(qty="0.01", price="42690", account="AM1")
    out = f.submit(SubmitOrderList("L1", "AM1", (a, b, a), T0))
    assert [(type(e).__name__, e.order_id, e.reason) for e in out] == [
        ("OrderDenied", "DUP", "duplicate_order_id"),
        ("OrderDenied", b.order_id, "list_denied"),
    ]
    assert "DUP" in out[0].message
    assert f.risk.accounts["AM1"].open_orders == {}
    assert f.risk.accounts["AM1"].reserved("USDT") == 0
    assert f.portfolio.balance("AM1", "USDT").locked == 0
    assert f.venue == []


def test_a_list_naming_one_client_order_id_twice_is_denied_whole() -> None:
    f = am1()
    a = order(qty="0.01", price="42700", account="AM1", client_order_id="C-DUP")
    b = order(qty="0.01", price="42700", account="AM1", client_order_id="C-DUP")
    out = f.submit(SubmitOrderList("L1", "AM1", (a, b), T0))
    assert [e.reason for e in out] == ["duplicate_order_id", "duplicate_order_id"]
    assert not [e for e in f.events if isinstance(e, OrderAccepted)]


def test_an_accepted_order_id_is_never_accepted_again() -> None:
    f = am1()
    spec = resting(f)
    held = f.risk.accounts["AM1"].reserved("USDT")
    bigger = dataclasses.replace(spec, quantity=D("0.02"))
    assert f.submit(SubmitOrder(bigger, T0 + SEC)) == []
    assert f.submit(SubmitOrderList("L2", "AM1", (bigger,), T0 + SEC)) == []
    other = order(qty="0.001", price="42700", account="AM1")
    out = f.submit(SubmitOrderList("L3", "AM1", (bigger, other), T0 + 2 * SEC))
    assert [(type(e).__name__, e.order_id) for e in out] == [("OrderAccepted", other.order_id)]
    oco = dataclasses.replace(
        other, order_id="NEW", client_order_id="NEW", contingency_type=ContingencyType.OCO
    )
    out = f.submit(SubmitOrderList("L4", "AM1", (bigger, oco), T0 + 3 * SEC))
    assert [(type(e).__name__, e.order_id, e.reason) for e in out] == [("OrderDenied", "NEW", "list_denied")]
    accepted = [e.order_id for e in f.events if isinstance(e, OrderAccepted)]
    assert accepted.count(spec.order_id) == 1
    assert f.risk.accounts["AM1"].reserved("USDT") == held + D("0.001") * D("42700") * D("1.001")


def test_a_sell_amend_needs_the_base_asset() -> None:
    f = am1()
    f.deposit("AM1", "BTC", "0.05")
    spec = resting(f, qty="0.02", side=OrderSide.SELL, price="42710")
    assert reason(amend(f, spec, T0 + SEC, quantity="0.06")) == "insufficient_balance"
    assert isinstance(amend(f, spec, T0 + 2 * SEC, quantity="0.05")[0], OrderAmendAccepted)


def test_an_oco_reduction_in_flight_is_a_pending_amend_too() -> None:
    f = am1(usdt="2000")
    a = order(qty="0.02", price="42700", account="AM1", order_id="A", client_order_id="A")
    b = order(qty="0.02", price="42690", account="AM1", order_id="B", client_order_id="B")
    a = dataclasses.replace(a, contingency_type=ContingencyType.OCO, linked_order_ids=("B",))
    b = dataclasses.replace(b, contingency_type=ContingencyType.OCO, linked_order_ids=("A",))
    f.submit(SubmitOrderList("OCO", "AM1", (a, b), T0))
    f.report(ack(a))
    f.report(ack(b))
    f.report(fill(a, "0.01", "42700"))  # B is reduced to 0.01 at the venue
    assert f.book.orders["B"].status is OrderStatus.PENDING_REPLACE
    assert f.risk.accounts["AM1"].open_orders["B"].pending is not None
    [refused] = amend(f, b, T0 + SEC, price="42680")
    assert isinstance(refused, OrderTransitionRejected)
    f.report(report(b, ExecType.REPLACED, quantity=D("0.01"), price=D("42690")))
    held = f.risk.accounts["AM1"].open_orders["B"]
    assert (held.pending, held.quantity) == (None, D("0.01"))
