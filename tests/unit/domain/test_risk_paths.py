"""Every path to a fill passes pre-trade risk, by hypothesis.

Random sequences of submits, amends, cancels, bulk lists (some naming an id twice), brackets
and OCO pairs, price moves, venue answers and generated executions run through risk, the order
book and the portfolio. Held at every step:

- an amend risk lets through is one that the same order, submitted fresh against the same state
  (without the order itself), would be accepted as; one it refuses for a risk reason, denied;
- a fill happens only on terms risk approved (the order's quantity and prices are those of its
  last `OrderAccepted` / `OrderAmendAccepted`, or an OCO reduction of them);
- no order id is accepted twice;
- no balance goes negative (`require_balance` holds), nor does what risk holds back ever
  exceed it; the position with every open order on one side filled stays within its limit;
- once every order is over, nothing stays reserved or locked.
"""

from __future__ import annotations

import copy
import dataclasses
from decimal import ROUND_DOWN, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meltica.domain.orders.commands import AmendOrder, CancelOrder, SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendAccepted,
    OrderAmendRejected,
    OrderDenied,
    OrderFilled,
    OrderPartiallyFilled,
    OrderReplaced,
)
from meltica.domain.orders.model import OrderSpec
from meltica.domain.risk import decider as risk
from meltica.domain.risk.checks import DenyReason
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.risk.state import RiskState
from meltica.domain.values import ContingencyType, ExecType, OrderSide, OrderType
from tests.unit.domain.flow import Flow
from tests.unit.domain.support import BTC, T0, D, ack, fill, order, quote, report, trade

LIMITS = RiskLimits(
    throttle_rate=D(1000),
    throttle_burst=1000,
    price_band=D("0.05"),
    max_order_notional=D("600"),
    max_position=D("6"),
    max_gross_exposure=D("1500"),
    max_open_orders=5,
    circuit_breaker_breaches=10_000,
    circuit_breaker_window_ns=1,
)
QTY = st.sampled_from(["0.2", "0.5", "1", "1", "2", "3", "5", "0.0005", "0.05"]).map(D)
PX = st.one_of(st.integers(97, 103), st.integers(97, 103), st.integers(85, 115)).map(D)
KINDS = [
    *("submit", "submit", "submit", "market", "stop", "bulk", "dup", "bracket", "oco"),
    *("amend", "amend", "amend", "cancel", "tick", "ack", "fill", "fill", "venue", "venue"),
]
RACES = [
    "submit",
    "submit",
    "amend",
    "amend",
    "venue",
    "fill",
]  # amends racing other orders and the venue's answers


def steps(kinds: list[str]) -> st.SearchStrategy[list[tuple[str, Decimal, Decimal, int, bool]]]:
    return st.lists(
        st.tuples(st.sampled_from(kinds), QTY, PX, st.integers(0, 50), st.booleans()), min_size=4, max_size=40
    )


TIGHT = dataclasses.replace(LIMITS, max_position=D(3))  # for races: the limits bind sooner


def _flow(limits: RiskLimits, usdt: str) -> Flow:
    f = Flow(risk=RiskState(defaults=limits))
    f.define(BTC)
    f.deposit("ACC-1", "USDT", usdt)
    f.deposit("ACC-1", "BTC", "4")
    f.market(quote("99.99", "100.01"))
    return f


class Run:
    """One sequence, with what risk approved for each order."""

    def __init__(self, limits: RiskLimits = LIMITS, usdt: str = "800") -> None:
        self.limits = limits
        self.f = _flow(limits, usdt)
        self.ts = T0
        self.specs: list[OrderSpec] = []
        self.approved: dict[str, list[tuple[Decimal, Decimal | None, Decimal | None]]] = {}
        self.current: dict[str, tuple[Decimal, Decimal | None, Decimal | None]] = {}  # as replaced

    # -- inputs ----------------------------------------------------------------------------------
    def submit(self, cmd: SubmitOrder | SubmitOrderList) -> None:
        self.f.submit(cmd)
        self.specs += [cmd.order] if isinstance(cmd, SubmitOrder) else list(cmd.orders)

    def amend(self, spec: OrderSpec, qty: Decimal | None, px: Decimal | None) -> None:
        o = self.f.book.orders.get(spec.order_id)
        trigger = px if spec.order_type is OrderType.STOP_MARKET else None
        price = px if spec.order_type is OrderType.LIMIT else None
        cmd = AmendOrder(spec.order_id, spec.account_id, spec.instrument_id, self.ts, qty, price, trigger)
        before = copy.deepcopy(self.f.risk)
        [decision, *_] = self.f.amend(cmd)
        account = before.accounts.get(spec.account_id)
        held = None if account is None else account.open_orders.get(spec.order_id)
        if o is None or held is None or held.pending is not None or held.filled:
            return  # not a fresh order's question (closed, waiting, or partly traded)
        fresh = dataclasses.replace(
            risk.amended_spec(held, qty, price, trigger),
            order_id=f"{spec.order_id}-fresh",
            client_order_id=f"{spec.client_order_id}-fresh",
        )
        assert account is not None
        del account.open_orders[spec.order_id]
        [judged, *_] = risk.decide(before, SubmitOrder(fresh, self.ts))
        if isinstance(decision, OrderAmendAccepted):
            assert isinstance(judged, OrderAccepted), (decision, judged)
        elif isinstance(decision, OrderAmendRejected) and _is_risk_reason(decision.reason):
            assert isinstance(judged, OrderDenied), (decision, judged)
            assert judged.reason == decision.reason.partition(":")[0]

    def execute(self, spec: OrderSpec, qty: Decimal, edge: bool) -> None:
        """A venue execution on the order's live terms: a limit at its price (or better), one at
        market up to the price band away from the price risk judged and reserved it at."""
        o = self.f.book.orders.get(spec.order_id)
        held = self.f.risk.accounts["ACC-1"].open_orders.get(spec.order_id)
        if o is None or held is None or not o.is_open or not o.at_venue:
            return
        qty = min(qty, o.leaves_qty)
        if spec.order_type is OrderType.LIMIT:
            assert o.price is not None
            px = o.price - (D("0.5") if edge else 0) * spec.side.sign
        else:
            assert self.limits.price_band is not None
            slip = self.limits.price_band * spec.side.sign if edge else 0
            px = (held.price * (1 + slip)).quantize(D("0.01"), rounding=ROUND_DOWN)
        fee = (qty * px * BTC.taker_fee).quantize(D("0.00000001"))
        self.f.report(fill(spec, qty, px, ts=self.ts, fee=fee))

    def step(self, kind: str, qty: Decimal, px: Decimal, pick: int, flag: bool) -> None:
        self.ts += 1_000_000
        side = OrderSide.SELL if flag else OrderSide.BUY
        book = self.f.book.orders
        live = [s for s in self.specs if s.order_id in book and book[s.order_id].is_open] or [
            s for s in self.specs if s.order_id in book
        ]
        spec = live[pick % len(live)] if live else None
        if kind == "submit":
            self.submit(SubmitOrder(order(side=side, qty=qty, price=px), self.ts))
        elif kind == "market":
            self.submit(SubmitOrder(order(OrderType.MARKET, side=side, qty=qty, price=None), self.ts))
        elif kind == "stop":
            stop = order(OrderType.STOP_MARKET, side=side, qty=qty, price=None, trigger_price=px)
            self.submit(SubmitOrder(stop, self.ts))
        elif kind in ("bulk", "dup"):
            a, b = order(side=side, qty=qty, price=px), order(qty=qty, price=px - 1)
            orders = (a, b, a) if kind == "dup" else (a, b)
            self.submit(SubmitOrderList(f"L{self.ts}", "ACC-1", orders, self.ts))
        elif kind == "bracket":
            parent = order(qty=qty, price=px)
            take = order(side=OrderSide.SELL, qty=qty, price=px + 3, parent_order_id=parent.order_id)
            stop = order(
                OrderType.STOP_MARKET,
                side=OrderSide.SELL,
                qty=qty,
                price=None,
                trigger_price=px - 3,
                parent_order_id=parent.order_id,
            )
            self.submit(SubmitOrderList(f"B{self.ts}", "ACC-1", (parent, take, stop), self.ts))
        elif kind == "oco":
            a, b = order(side=side, qty=qty, price=px), order(side=side, qty=qty, price=px - 2)
            a = dataclasses.replace(a, contingency_type=ContingencyType.OCO, linked_order_ids=(b.order_id,))
            b = dataclasses.replace(b, contingency_type=ContingencyType.OCO, linked_order_ids=(a.order_id,))
            self.submit(SubmitOrderList(f"O{self.ts}", "ACC-1", (a, b), self.ts))
        elif kind == "tick":
            self.f.market(trade(px, ts=self.ts))
        elif spec is None:
            return
        elif kind == "amend":
            self.amend(spec, qty if flag else None, px if not flag or pick % 3 == 0 else None)
        elif kind == "cancel":
            self.f.order_input(CancelOrder(spec.order_id, spec.account_id, spec.instrument_id, self.ts))
        elif kind == "ack":
            self.f.report(ack(spec, ts=self.ts))
        elif kind == "fill":
            self.execute(spec, qty, flag)
        else:  # the venue answers a pending amend or cancel (first), or ends the order
            waiting = [s for s in live if book[s.order_id].status.value.startswith("PENDING_")]
            spec = waiting[pick % len(waiting)] if waiting else spec
            o = self.f.book.orders[spec.order_id]
            if o.status.value == "PENDING_REPLACE":
                pending = [e for e in self.f.venue if getattr(e, "order_id", None) == spec.order_id][-1]
                if flag:
                    terms = {"quantity": pending.quantity, "price": pending.price}
                    self.f.report(report(spec, ExecType.REPLACED, ts=self.ts, **terms))
                else:
                    self.f.report(report(spec, ExecType.REPLACE_REJECTED, ts=self.ts, reason="venue"))
            elif o.status.value == "PENDING_CANCEL" or not flag:
                self.f.report(report(spec, ExecType.CANCELED, ts=self.ts))

    # -- what must hold ----------------------------------------------------------------------------
    def check(self, seen: int) -> int:
        """Check the events since `seen`; returns how many there are now."""
        for e in self.f.events[seen:]:
            if isinstance(e, OrderAccepted):
                assert e.order.order_id not in self.approved, f"{e.order.order_id} accepted twice"
                terms = (e.order.quantity, e.order.price, e.order.trigger_price)
                self.approved[e.order.order_id], self.current[e.order.order_id] = [terms], terms
            elif isinstance(e, OrderAmendAccepted):
                quantity, price, trigger = self.current[e.order_id]
                self.approved[e.order_id].append(
                    (
                        e.quantity if e.quantity is not None else quantity,
                        e.price if e.price is not None else price,
                        e.trigger_price if e.trigger_price is not None else trigger,
                    )
                )
            elif isinstance(e, OrderReplaced):
                terms = (e.quantity, e.price, e.trigger_price)
                known = self.approved[e.order_id]
                if terms not in known and any(
                    e.quantity < q and (e.price, e.trigger_price) == (p, t) for q, p, t in known
                ):
                    known.append(terms)  # an OCO reduction after a sibling's fill
                assert terms in known, f"replaced on terms risk never approved: {terms}"
                self.current[e.order_id] = terms
            elif isinstance(e, OrderFilled | OrderPartiallyFilled):
                o = self.f.book.orders[e.order_id]
                held = {(q, p) for q, p, _ in self.approved[e.order_id]}
                assert (o.quantity, o.price) in held, "filled on terms risk never approved"
        for (account, asset), balance in self.f.portfolio.balances.items():
            assert balance.total >= 0, f"{account} {asset} went negative: {balance.total}"
        held = self.f.risk.accounts["ACC-1"]
        for asset in held.balances:
            assert held.available(asset) >= 0, f"risk holds more {asset} than the account has"
        position = self.f.portfolio.position("ACC-1", BTC.instrument_id).quantity
        cap = self.limits.max_position
        assert cap is not None
        for side in OrderSide:
            open_qty = sum((o.worst_leaves for o in held.open_orders.values() if o.side is side), D(0))
            assert abs(position + open_qty * side.sign) <= cap, "past the position limit"
        return len(self.f.events)


def _is_risk_reason(reason: str) -> bool:
    try:
        DenyReason(reason.partition(":")[0])
    except ValueError:
        return False
    return True


def _run(sequence: list[tuple[str, Decimal, Decimal, int, bool]], run: Run) -> None:
    seen = run.check(0)
    for kind, qty, px, pick, flag in sequence:
        run.step(kind, qty, px, pick, flag)
        seen = run.check(seen)
    for o in list(run.f.book.open_orders()):  # the venue ends whatever is still open
        run.f.report(report(o.spec, ExecType.CANCELED, ts=run.ts + 1))
    run.check(seen)
    account = run.f.risk.accounts["ACC-1"]
    assert account.open_orders == {}
    assert account.reserved("USDT") == account.reserved("BTC") == 0
    assert all(b.locked == 0 for b in run.f.portfolio.balances.values())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps(KINDS))
def test_no_path_reaches_a_fill_around_pre_trade_risk(
    sequence: list[tuple[str, Decimal, Decimal, int, bool]],
) -> None:
    _run(sequence, Run())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps(RACES))
def test_amends_racing_orders_and_venue_answers_hold_the_limits(
    sequence: list[tuple[str, Decimal, Decimal, int, bool]],
) -> None:
    _run(sequence, Run(TIGHT, usdt="250"))
