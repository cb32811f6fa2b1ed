"""Invariants of the deciders, by hypothesis (500 examples each in CI).

- orders: filled <= quantity; a terminal order never changes; replaying the events
  rebuilds the same book; a cancel the status table refuses is rejected, never dropped;
- risk: reservations and open orders return to zero when every order is terminal;
- portfolio: position = signed sum of fills; realized + unrealized - fees equals the
  change in equity at the marks.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from meltica.domain.orders import decider as od
from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendAccepted,
    OrderCancelRejected,
    OrderFilled,
    OrderTransitionRejected,
)
from meltica.domain.orders.model import OrderStatus
from meltica.domain.orders.transitions import can_transition
from meltica.domain.portfolio import decider as pd
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.risk.state import RiskState
from meltica.domain.values import ZERO, ExecType, OrderSide, OrderType
from tests.unit.domain.flow import Flow
from tests.unit.domain.support import BTC, T0, D, ack, fill, order, quote, report, trade

S = OrderStatus
QTY = st.integers(1, 50).map(lambda n: Decimal(n) / 10)
PX = st.integers(9_500, 10_500).map(lambda n: Decimal(n) / 100)


class OrderMachine(RuleBasedStateMachine):
    """Random venue reports and client requests against an order book."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.book = od.OrderBook()
        self.events: list[Any] = []
        self.terminal: dict[str, Any] = {}
        self.ts = T0
        self.trade_ids: list[str] = ["T-dup"]

    def feed(self, inp: Any) -> list[Any]:
        self.ts += 1
        out = od.decide(self.book, inp)
        if isinstance(inp, OrderAccepted):
            out = [inp, *out]
        for e in out:
            od.evolve(self.book, e)
        self.events += out
        return out

    @rule(target=orders, qty=QTY, market=st.booleans())
    def accept(self, qty: Decimal, market: bool) -> str:
        spec = order(
            OrderType.MARKET if market else OrderType.LIMIT, qty=qty, price=None if market else "100"
        )
        self.feed(OrderAccepted(spec, self.ts))
        return spec.order_id

    @rule(oid=orders)
    def acknowledge(self, oid: str) -> None:
        self.feed(ack(self.book.orders[oid].spec, ts=self.ts))

    @rule(oid=orders, qty=QTY, px=PX, reuse=st.booleans())
    def venue_fill(self, oid: str, qty: Decimal, px: Decimal, reuse: bool) -> None:
        trade_id = self.trade_ids[-1] if reuse else f"T-{len(self.trade_ids)}"
        self.trade_ids.append(trade_id)
        self.feed(fill(self.book.orders[oid].spec, qty, px, trade_id=trade_id, ts=self.ts))

    @rule(oid=orders)
    def request_cancel(self, oid: str) -> None:
        """Every cancel is answered: it starts (or ends) the order's cancel when the status table
        allows that, else it is rejected and changes nothing."""
        o = self.book.orders[oid]
        before, target = o.status, S.PENDING_CANCEL if o.at_venue else S.CANCELED
        out = self.feed(CancelOrder(oid, o.spec.account_id, o.spec.instrument_id, self.ts))
        if before is not S.PENDING_CANCEL and can_transition(before, target):
            assert self.book.orders[oid].status is target
        else:
            [rejection] = out
            assert isinstance(rejection, OrderCancelRejected | OrderTransitionRejected)
            assert self.book.orders[oid].status is before

    @rule(oid=orders)
    def venue_triggers(self, oid: str) -> None:
        """The venue says the order went live (a stop it holds), so its status is TRIGGERED."""
        self.feed(report(self.book.orders[oid].spec, ExecType.TRIGGERED, ts=self.ts))

    @rule(
        oid=orders,
        kind=st.sampled_from(
            [
                ExecType.CANCELED,
                ExecType.CANCEL_REJECTED,
                ExecType.EXPIRED,
                ExecType.REJECTED,
                ExecType.REPLACE_REJECTED,
            ]
        ),
    )
    def venue_says(self, oid: str, kind: ExecType) -> None:
        self.feed(report(self.book.orders[oid].spec, kind, ts=self.ts, reason="venue"))

    @rule(oid=orders, qty=QTY)
    def request_amend(self, oid: str, qty: Decimal) -> None:
        """An amend risk let through (the book acts on nothing else)."""
        s = self.book.orders[oid].spec
        self.feed(OrderAmendAccepted(oid, s.client_order_id, s.account_id, s.instrument_id, self.ts, qty))

    @rule(oid=orders)
    def venue_replaces(self, oid: str) -> None:
        o = self.book.orders[oid]
        self.feed(report(o.spec, ExecType.REPLACED, ts=self.ts, quantity=o.quantity + 1))

    @rule(oid=consumes(orders))
    def forget(self, oid: str) -> None:
        """Stop picking this order (keeps the bundle small)."""

    @invariant()
    def filled_never_exceeds_quantity(self) -> None:
        for o in self.book.orders.values():
            assert ZERO <= o.filled_qty <= o.quantity
            if o.status is OrderStatus.FILLED:
                assert o.filled_qty == o.quantity
            if o.is_open:
                assert o.filled_qty < o.quantity

    @invariant()
    def terminal_absorbs(self) -> None:
        for oid, o in self.book.orders.items():
            if oid in self.terminal:
                assert (o.status, o.filled_qty, o.quantity) == self.terminal[oid]
            elif o.is_terminal:
                self.terminal[oid] = (o.status, o.filled_qty, o.quantity)

    @invariant()
    def replay_rebuilds_the_book(self) -> None:
        assert od.replay(self.events) == self.book


TestOrderMachine = OrderMachine.TestCase


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["submit", "ack", "fill", "cancel", "reject", "tick"]),
        QTY,
        PX,
        st.integers(0, 20),
        st.booleans(),
    ),
    min_size=1,
    max_size=40,
)


@given(ACTIONS)
def test_reservations_return_to_zero_when_all_orders_are_terminal(actions: list[tuple[Any, ...]]) -> None:
    f = Flow(
        risk=RiskState(defaults=RiskLimits(price_band=D("0.2"), throttle_rate=D(1000), throttle_burst=1000))
    )
    f.define(BTC)
    f.deposit("ACC-1", "USDT", "100000")
    f.deposit("ACC-1", "BTC", "100")
    f.market(quote("99.99", "100.01"))
    ts = T0
    submitted: list[Any] = []
    for kind, qty, px, pick, sell in actions:
        ts += 1_000_000
        if kind == "submit":
            spec = order(side=OrderSide.SELL if sell else OrderSide.BUY, qty=qty, price=px)
            f.submit(SubmitOrder(spec, ts))
            submitted.append(spec)
        elif kind == "tick":
            f.market(trade(px, ts=ts))
        elif submitted:
            spec = submitted[pick % len(submitted)]
            if kind == "ack":
                f.report(ack(spec, ts=ts))
            elif kind == "fill":
                f.report(fill(spec, qty, px, ts=ts))
            elif kind == "cancel":
                f.order_input(CancelOrder(spec.order_id, spec.account_id, spec.instrument_id, ts))
            else:
                f.report(report(spec, ExecType.REJECTED, ts=ts, reason="venue"))
    for o in list(f.book.open_orders()):  # the venue ends whatever is still open
        f.report(report(o.spec, ExecType.CANCELED, ts=ts + 1))
    account = f.risk.accounts["ACC-1"]
    assert account.open_orders == {}
    assert account.reserved("USDT") == 0
    assert account.reserved("BTC") == 0
    assert all(b.locked == 0 for b in f.portfolio.balances.values())
    assert f.portfolio.locks == {}


FILLS = st.lists(
    st.tuples(st.booleans(), QTY, PX, st.integers(0, 30).map(lambda n: Decimal(n) / 100), PX),
    min_size=1,
    max_size=30,
)


@given(FILLS)
def test_position_and_pnl_identities(fills: list[tuple[bool, Decimal, Decimal, Decimal, Decimal]]) -> None:
    state = pd.PortfolioState()
    pd.evolve(state, BTC)

    def apply(inp: Any) -> None:
        for e in pd.decide(state, inp):
            pd.evolve(state, e)
        pd.evolve(state, inp)

    apply(AdjustBalance("A", "USDT", D("1000000"), "deposit", T0))
    apply(quote("99.99", "100.01"))
    start = state.equity("A", "USDT")
    signed_sum = ZERO
    cum: dict[str, Decimal] = {}
    for i, (buy, qty, px, fee, mark) in enumerate(fills):
        spec = order(side=OrderSide.BUY if buy else OrderSide.SELL, qty=qty, price=px, account="A")
        apply(OrderAccepted(spec, T0 + i))
        rep = fill(spec, qty, px, fee=fee)
        f = OrderFilled(
            spec.order_id,
            spec.client_order_id,
            "A",
            spec.instrument_id,
            T0 + i,
            rep.fill,  # type: ignore[arg-type]
            qty,
            ZERO,
            px,
        )
        apply(f)
        signed_sum += qty if buy else -qty
        cum[spec.order_id] = qty
        apply(trade(mark, ts=T0 + i))
        pos = state.positions[("A", BTC.instrument_id)]
        assert pos.quantity == signed_sum
        assert state.balance("A", "BTC").total == signed_sum
        change = state.equity("A", "USDT") - start
        assert change == pos.realized_pnl + pos.unrealized_pnl - pos.fees
