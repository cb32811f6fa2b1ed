"""Issue 13, defects 1 and 6 through the embedded engine and the projector: an amend passes
pre-trade risk like a new order, and a bulk list naming one order id twice accepts nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from meltica.domain.orders.commands import AmendOrder, SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendRejected,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPendingCancel,
    OrderSubmitted,
)
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import AdjustBalance, BalanceChanged
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import OrderSide, OrderType, RiskScope
from meltica.projections import migrations
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.topics import ORDER_EVENTS, PORTFOLIO_COMMANDS, RISK_COMMANDS
from tests.e2e.stack import BTC, Stack

D = Decimal


@pytest.fixture
def stack() -> Stack:
    """The issue's account AM1 with 1000 USDT; BTC at 42,700 with 10 on each side."""
    s = Stack()
    s.publisher.define([BTC])
    s.publisher.publish(PORTFOLIO_COMMANDS, AdjustBalance("AM1", "USDT", D(1000), "deposit", s.tick()))
    s.quote("42699.99", "42700.01")
    return s


def rest(s: Stack, order_id: str = "AMEND-1") -> OrderSpec:
    spec = OrderSpec(
        order_id, order_id, "AM1", BTC.instrument_id, OrderSide.BUY, OrderType.LIMIT, D("0.01"), D("42700")
    )
    s.command(SubmitOrder(spec, s.tick()))
    return spec


def amend(s: Stack, spec: OrderSpec, **terms: str) -> None:
    values = {k: D(v) for k, v in terms.items()}
    s.command(AmendOrder(spec.order_id, "AM1", BTC.instrument_id, s.tick(), **values))


def usdt_totals(s: Stack) -> list[Decimal]:
    return [
        e.total
        for e in s.events("portfolio.events")
        if isinstance(e, BalanceChanged) and (e.account_id, e.asset) == ("AM1", "USDT")
    ]


def fills(s: Stack) -> list[Any]:
    return [e for e in s.events("orders.events") if isinstance(e, OrderFilled | OrderPartiallyFilled)]


def test_the_issues_amend_is_denied_and_nothing_fills(stack: Stack, tmp_path: Path) -> None:
    # no order-notional cap to speak of; the circuit breaker would end the order at 3 breaches
    limits = RiskLimits(max_order_notional=D(10**7), circuit_breaker_breaches=10)
    stack.command(SetRiskLimits(RiskScope.GLOBAL, "", limits, "ops", stack.tick()), RISK_COMMANDS)
    spec = rest(stack)
    assert stack.order_events(spec.order_id)[-1] == "OrderAcknowledged"
    amend(stack, spec, quantity="5", price="43500")  # crossed the ask: filled 4.78 BTC before
    amend(stack, spec, quantity="0.00001")
    amend(stack, spec, price="1")
    rejected = [e for e in stack.events("orders.events") if isinstance(e, OrderAmendRejected)]
    assert [e.reason for e in rejected] == ["price_band", "quantity_precision", "price_band"]
    assert fills(stack) == []
    assert min(usdt_totals(stack)) == D(1000)
    # with the order-notional cap raised, the 5 BTC amend is refused for the balance it lacks
    amend(stack, spec, quantity="5")
    assert [e for e in stack.events("orders.events") if isinstance(e, OrderAmendRejected)][-1].reason == (
        "insufficient_balance"
    )
    # an amend within the limits goes through: risk accepts, then the venue replaces
    amend(stack, spec, price="42690")
    assert stack.order_events(spec.order_id)[-3:] == [
        "OrderAmendAccepted",
        "OrderPendingReplace",
        "OrderReplaced",
    ]
    stack.trade("42689", size="20")  # trades through the amended price: the order fills
    [filled] = fills(stack)
    assert (filled.fill.last_qty, filled.fill.last_px) == (D("0.01"), D("42690"))
    assert min(usdt_totals(stack)) >= 0
    # the trail and the read models show it
    url = f"sqlite:///{tmp_path / 'read.db'}"
    migrations.upgrade(url)
    db = create_engine(url)
    projector = Projector(stack.log, stack.codec, db)
    while projector.poll_once():
        pass
    with db.connect() as conn:
        trail = conn.execute(
            select(t.order_events.c.type, t.order_events.c.payload)
            .where(t.order_events.c.order_id == spec.order_id)
            .order_by(t.order_events.c.ts_event, t.order_events.c.offset)
        ).all()
        row = conn.execute(select(t.orders).where(t.orders.c.order_id == spec.order_id)).one()
        [balance] = conn.execute(
            select(t.balances).where(t.balances.c.account_id == "AM1", t.balances.c.asset == "USDT")
        ).all()
    kinds = [k for k, _ in trail]
    assert kinds.count("OrderAmendRejected") == 4
    assert any("price_band" in p for k, p in trail if k == "OrderAmendRejected")
    assert "OrderAmendAccepted" in kinds
    assert (row.status, row.quantity, row.price, row.filled_qty) == (
        "FILLED",
        D("0.01"),
        D("42690"),
        D("0.01"),
    )
    assert balance.total == D(1000) - D("0.01") * D("42690") - filled.fill.fee
    assert balance.locked == 0


def test_a_bulk_list_naming_one_order_id_twice_accepts_nothing(stack: Stack) -> None:
    spec = OrderSpec(
        "DUP", "DUP", "AM1", BTC.instrument_id, OrderSide.BUY, OrderType.LIMIT, D("0.01"), D("42700")
    )
    stack.command(SubmitOrderList("BULK-1", "AM1", (spec, spec), stack.tick()))
    assert stack.order_events("DUP") == ["OrderDenied"]
    assert not [e for e in stack.events("orders.events") if isinstance(e, OrderAccepted)]
    locked = [
        e.locked
        for e in stack.events("portfolio.events")
        if isinstance(e, BalanceChanged) and e.account_id == "AM1"
    ]
    assert set(locked) == {D(0)}
    # and an order id risk accepted before is not accepted again by a later list
    first = rest(stack, "ONCE")
    stack.command(SubmitOrderList("BULK-2", "AM1", (first,), stack.tick()))
    stack.command(SubmitOrder(first, stack.tick()))
    assert stack.order_events("ONCE").count("OrderAccepted") == 1


def test_a_refused_amend_leaves_a_pending_cancel_pending_in_the_read_model(tmp_path: Path) -> None:
    s = Stack()
    spec = OrderSpec("PC", "PC", "AM1", BTC.instrument_id, OrderSide.BUY, OrderType.LIMIT, D("1"), D("100"))
    ids = ("PC", "PC", "AM1", BTC.instrument_id)
    for event in (
        OrderAccepted(spec, s.tick()),
        OrderSubmitted(*ids, s.tick(), "SIM"),
        OrderPendingCancel(*ids, s.tick()),
        OrderAmendRejected(*ids, s.tick(), "price_band"),  # risk's answer to an amend meanwhile
    ):
        s.publisher.publish(ORDER_EVENTS, event)
    url = f"sqlite:///{tmp_path / 'read.db'}"
    migrations.upgrade(url)
    db = create_engine(url)
    projector = Projector(s.log, s.codec, db)
    while projector.poll_once():
        pass
    with db.connect() as conn:
        row = conn.execute(select(t.orders).where(t.orders.c.order_id == "PC")).one()
    assert row.status == "PENDING_CANCEL"
