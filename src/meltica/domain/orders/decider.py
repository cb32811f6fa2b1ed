"""The order-book decider: every order of an account, from acceptance to a terminal state.

Inputs: `OrderAccepted`/`OrderDenied`/`OrderAmendAccepted` (from risk), `ExecutionReport` (from
venues), cancel and cancel-all commands, market data (stop and trailing triggers), `ClockTick`
(expiry) and `KillSwitchTripped`. An `AmendOrder` is risk's to decide: the book acts only on
the `OrderAmendAccepted` risk answers it with. Outputs: order events and venue requests.
`decide` never mutates; `evolve` applies one event to the book in place and returns it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypedDict, cast

from meltica.domain.marketdata import ClockTick, MarketData, QuoteTick, TradeTick
from meltica.domain.orders.commands import CancelAllOrders, CancelOrder
from meltica.domain.orders.events import (
    ExecutionReport,
    Fill,
    OrderAccepted,
    OrderAcknowledged,
    OrderAmendAccepted,
    OrderAmendRejected,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderOutput,
    OrderPartiallyFilled,
    OrderPendingCancel,
    OrderPendingReplace,
    OrderRejected,
    OrderReplaced,
    OrderSubmitted,
    OrderTransitionRejected,
    OrderTriggered,
    OrderTriggerUpdated,
    VenueAmendOrder,
    VenueCancelOrder,
    VenueSubmitOrder,
)
from meltica.domain.orders.model import Order, OrderSpec, OrderStatus, amend_problem
from meltica.domain.orders.transitions import can_transition
from meltica.domain.orders.triggers import (
    is_activated,
    is_triggered,
    reference_price,
    trailed_trigger,
    triggered_limit_price,
)
from meltica.domain.risk.events import KillSwitchTripped
from meltica.domain.values import (
    ROUTER_VENUE,
    ZERO,
    ContingencyType,
    ExecType,
    RiskScope,
    TimeInForce,
    next_utc_midnight,
)

S = OrderStatus
Event = OrderOutput  # an order event or a venue request
OrderInput = (
    OrderAccepted
    | OrderDenied
    | OrderAmendAccepted
    | ExecutionReport
    | CancelOrder
    | CancelAllOrders
    | KillSwitchTripped
    | MarketData
    | ClockTick
)
"""What the order decider decides on (anything else it is given needs no follow-up)."""


@dataclass(slots=True)
class OrderBook:
    """All orders one order processor knows, by id, with indexes kept by `evolve`."""

    orders: dict[str, Order] = field(default_factory=dict)
    denied: dict[str, str] = field(default_factory=dict)  # order id -> why risk denied it
    open_ids: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    children: dict[str, list[str]] = field(default_factory=dict)  # OTO parent -> children
    held: dict[str, dict[str, None]] = field(default_factory=dict)  # instrument -> orders not at a venue

    def open_orders(self) -> Iterator[Order]:
        return (self.orders[oid] for oid in list(self.open_ids))

    def children_of(self, order_id: str) -> Iterator[Order]:
        return (self.orders[c] for c in self.children.get(order_id, ()))

    def held_on(self, instrument_id: str) -> Iterator[Order]:
        return (self.orders[oid] for oid in list(self.held.get(instrument_id, ())))

    def _index(self, order: Order) -> None:
        oid, inst = order.order_id, order.spec.instrument_id
        terminal = order.is_terminal
        if terminal:
            self.open_ids.pop(oid, None)
        if terminal or order.routed:
            held = self.held.get(inst)
            if held is not None:
                held.pop(oid, None)


class _Ids(TypedDict):
    order_id: str
    client_order_id: str
    account_id: str
    instrument_id: str


class _IdsAt(_Ids):
    ts: int


def _ids(order: Order) -> _Ids:
    s = order.spec
    return {
        "order_id": s.order_id,
        "client_order_id": s.client_order_id,
        "account_id": s.account_id,
        "instrument_id": s.instrument_id,
    }


def _refused(order: Order, target: OrderStatus) -> str:
    """Why the status table refuses `order` the move to `target`."""
    return f"{order.status} cannot become {target}"


def _rejected(order: Order, attempted: str, reason: str, ts: int) -> OrderTransitionRejected:
    return OrderTransitionRejected(
        **_ids(order), ts=ts, from_status=order.status, attempted=attempted, reason=reason
    )


# -- decide -----------------------------------------------------------------------------------
def decide(book: OrderBook, inp: OrderInput) -> list[Event]:
    """What follows from `inp` given the book. Pure."""
    t = type(inp)
    if t is OrderAccepted:  # the hot path: exact type checks before the isinstance chain
        return _on_accepted(book, cast(OrderAccepted, inp))
    if t is ExecutionReport:
        return _on_report(book, cast(ExecutionReport, inp))
    if isinstance(inp, CancelOrder):
        return _on_cancel(book, inp)
    if isinstance(inp, OrderAmendAccepted):
        return _on_amend(book, inp)
    if isinstance(inp, CancelAllOrders):
        return [
            e
            for o in book.open_orders()
            if o.spec.account_id == inp.account_id
            and (inp.instrument_id is None or o.spec.instrument_id == inp.instrument_id)
            and (inp.side is None or o.spec.side is inp.side)
            for e in _cancel(o, inp.ts, "cancel all")
        ]
    if isinstance(inp, KillSwitchTripped):
        return [e for o in book.open_orders() if _in_scope(o, inp) for e in _cancel(o, inp.ts, "kill switch")]
    if isinstance(inp, QuoteTick | TradeTick):
        return _on_market(book, inp)
    if isinstance(inp, ClockTick):
        return [
            OrderExpired(**_ids(o), ts=inp.ts)
            for o in book.open_orders()
            if not o.at_venue and o.expire_time_ns is not None and o.expire_time_ns <= inp.ts
        ]
    return []  # OrderDenied and anything else need no follow-up


def _in_scope(order: Order, trip: KillSwitchTripped) -> bool:
    if trip.scope is RiskScope.GLOBAL:
        return True
    if trip.scope is RiskScope.ACCOUNT:
        return order.spec.account_id == trip.scope_id
    if trip.scope is RiskScope.INSTRUMENT:
        return order.spec.instrument_id == trip.scope_id
    return False


def _released(book: OrderBook, spec: OrderSpec) -> bool:
    """An OTO child waits until its parent is filled (a routed parent's children are its fills)."""
    if spec.parent_order_id is None:
        return True
    parent = book.orders.get(spec.parent_order_id)
    return parent is not None and (parent.status is S.FILLED or parent.spec.venue == ROUTER_VENUE)


def _route(order: Order, ts: int, spec: OrderSpec | None = None) -> list[Event]:
    """Send an order (or its triggered form `spec`) to its venue."""
    if spec is None:
        spec = order.spec
        if (order.quantity, order.price, order.trigger_price) != (
            spec.quantity,
            spec.price,
            spec.trigger_price,
        ):
            spec = dataclasses.replace(
                spec, quantity=order.quantity, price=order.price, trigger_price=order.trigger_price
            )
    return [OrderSubmitted(**_ids(order), ts=ts, venue=spec.venue), VenueSubmitOrder(spec.venue, spec, ts)]


def _on_accepted(book: OrderBook, accepted: OrderAccepted) -> list[Event]:
    spec = accepted.order
    if spec.order_id in book.orders or spec.order_id in book.denied:
        return []  # redelivered
    if spec.order_type.has_trigger or not _released(book, spec):
        return []  # held here until its trigger fires or its parent fills
    venue, ts = spec.venue, accepted.ts
    return [
        OrderSubmitted(spec.order_id, spec.client_order_id, spec.account_id, spec.instrument_id, ts, venue),
        VenueSubmitOrder(venue, spec, ts),
    ]


def _fill_event(order: Order, fill: Fill, ts: int) -> Event:
    cum = order.filled_qty + fill.last_qty
    prev_value = (order.avg_px or ZERO) * order.filled_qty
    avg = (prev_value + fill.last_px * fill.last_qty) / cum
    kind = OrderFilled if cum == order.quantity else OrderPartiallyFilled
    s = order.spec
    return kind(
        s.order_id, s.client_order_id, s.account_id, s.instrument_id, ts, fill, cum, order.quantity - cum, avg
    )


def _on_report(book: OrderBook, rep: ExecutionReport) -> list[Event]:
    order = book.orders.get(rep.order_id)
    if order is None:
        ids: _Ids = {
            "order_id": rep.order_id,
            "client_order_id": "",
            "account_id": rep.account_id,
            "instrument_id": rep.instrument_id,
        }
        return [
            OrderTransitionRejected(
                **ids,
                ts=rep.ts,
                from_status=S.PENDING_NEW,
                attempted=f"ExecutionReport {rep.exec_type}",
                reason="unknown order",
            )
        ]
    ts, et = rep.ts, rep.exec_type
    if et is ExecType.TRADE:
        return _on_trade(book, order, rep)
    if et is ExecType.NEW:
        if order.status in (S.SUBMITTED, S.TRIGGERED):
            s = order.spec
            return [
                OrderAcknowledged(
                    s.order_id, s.client_order_id, s.account_id, s.instrument_id, ts, rep.venue_order_id or ""
                )
            ]
        if order.venue_order_id is None and order.is_open and order.at_venue:
            # a late acknowledgement after fills: keep the venue id, the status stays
            return [OrderAcknowledged(**_ids(order), ts=ts, venue_order_id=rep.venue_order_id or "")]
        return []  # duplicate acknowledgement
    if et is ExecType.CANCEL_REJECTED:
        if order.status is S.PENDING_CANCEL:
            return [OrderCancelRejected(**_ids(order), ts=ts, reason=rep.reason or "rejected by venue")]
        return []
    if et is ExecType.REPLACE_REJECTED:
        if order.status is S.PENDING_REPLACE:
            return [OrderAmendRejected(**_ids(order), ts=ts, reason=rep.reason or "rejected by venue")]
        return []
    found = _STATUS_REPORTS.get(et)
    if found is None:
        return [_rejected(order, f"ExecutionReport {et}", "unsupported exec type", ts)]
    target, build = found
    if not can_transition(order.status, target):
        if order.is_terminal and target is order.status:
            return []  # a duplicate terminal report
        return [_rejected(order, f"ExecutionReport {et}", f"{order.status} cannot become {target}", ts)]
    out: list[Event] = [build(order, rep)]
    if target in (S.REJECTED, S.CANCELED, S.EXPIRED):
        out += _cancel_children(book, order, ts)
    return out


# Venue reports that move an order to a status: the target and the event that says so.
_STATUS_REPORTS: dict[ExecType, tuple[OrderStatus, Callable[[Order, ExecutionReport], Event]]] = {
    ExecType.REJECTED: (S.REJECTED, lambda o, r: OrderRejected(**_ids(o), ts=r.ts, reason=r.reason)),
    ExecType.CANCELED: (S.CANCELED, lambda o, r: OrderCanceled(**_ids(o), ts=r.ts, reason=r.reason)),
    ExecType.EXPIRED: (S.EXPIRED, lambda o, r: OrderExpired(**_ids(o), ts=r.ts)),
    ExecType.TRIGGERED: (
        S.TRIGGERED,
        lambda o, r: OrderTriggered(**_ids(o), ts=r.ts, trigger_price=r.trigger_price),
    ),
    ExecType.REPLACED: (
        S.REPLACED,
        lambda o, r: OrderReplaced(
            **_ids(o),
            ts=r.ts,
            quantity=r.quantity or o.quantity,
            price=r.price,
            trigger_price=r.trigger_price,
        ),
    ),
}


def _on_trade(book: OrderBook, order: Order, rep: ExecutionReport) -> list[Event]:
    fill, ts = rep.fill, rep.ts
    if fill is None:
        return [_rejected(order, "ExecutionReport TRADE", "trade report without a fill", ts)]
    if fill.trade_id in order.trade_ids:
        return []  # duplicate fill
    if fill.last_qty <= ZERO:
        return [_rejected(order, "ExecutionReport TRADE", "fill quantity must be positive", ts)]
    if order.filled_qty + fill.last_qty > order.quantity:
        return [_rejected(order, "ExecutionReport TRADE", "fill would exceed the order quantity", ts)]
    event = _fill_event(order, fill, ts)
    target = S.FILLED if isinstance(event, OrderFilled) else S.PARTIALLY_FILLED
    if not can_transition(order.status, target):
        return [_rejected(order, "ExecutionReport TRADE", f"{order.status} cannot become {target}", ts)]
    out: list[Event] = [event]
    out += _contingencies_after_fill(book, order, fill.last_qty, target is S.FILLED, ts)
    return out


def _contingencies_after_fill(
    book: OrderBook, order: Order, qty: Decimal, full: bool, ts: int
) -> list[Event]:
    out: list[Event] = []
    spec = order.spec
    if spec.contingency_type is ContingencyType.OCO:
        for sibling_id in spec.linked_order_ids:
            sibling = book.orders.get(sibling_id)
            if sibling is None or not sibling.is_open:
                continue
            if full:
                out += _cancel(sibling, ts, f"OCO: {spec.order_id} filled")
            else:
                reduced = sibling.quantity - qty
                if reduced <= sibling.filled_qty:
                    out += _cancel(sibling, ts, f"OCO: {spec.order_id} filled")
                else:
                    out += _amend(sibling, ts, reduced, sibling.price, sibling.trigger_price)
    if full:  # OTO: release the children
        for child in book.children_of(spec.order_id):
            if child.is_open and not child.at_venue and not child.spec.order_type.has_trigger:
                out += _route(child, ts)
    return out


def _cancel_children(book: OrderBook, order: Order, ts: int) -> list[Event]:
    """A parent that ends without filling takes its waiting OTO children with it."""
    return [
        e
        for child in book.children_of(order.order_id)
        if child.is_open and not child.at_venue
        for e in _cancel(child, ts, f"OTO parent {order.order_id} {order.status.lower()}")
    ]


def _cancel(order: Order, ts: int, reason: str) -> list[Event]:
    """Cancel an open order for `reason`: here when it never left, else through its venue. A
    cancel already pending asks nothing more; one the status table refuses (a venue-side
    trigger, a pending amend) is recorded as rejected, never dropped silently."""
    if not order.at_venue:
        return [OrderCanceled(**_ids(order), ts=ts, reason=reason)]
    if order.status is S.PENDING_CANCEL:
        return []
    if not can_transition(order.status, S.PENDING_CANCEL):
        return [_rejected(order, f"cancel ({reason})", _refused(order, S.PENDING_CANCEL), ts)]
    s = order.spec
    return [
        OrderPendingCancel(**_ids(order), ts=ts),
        VenueCancelOrder(s.venue, s.order_id, order.venue_order_id, s.account_id, s.instrument_id, ts),
    ]


def _amend(
    order: Order, ts: int, qty: Decimal, price: Decimal | None, trigger: Decimal | None
) -> list[Event]:
    if not order.at_venue:
        return [OrderReplaced(**_ids(order), ts=ts, quantity=qty, price=price, trigger_price=trigger)]
    s = order.spec
    return [
        OrderPendingReplace(**_ids(order), ts=ts, quantity=qty, price=price, trigger_price=trigger),
        VenueAmendOrder(
            s.venue, s.order_id, order.venue_order_id, s.account_id, s.instrument_id, ts, qty, price, trigger
        ),
    ]


def _unknown(cmd: CancelOrder | OrderAmendAccepted) -> _IdsAt:
    return {
        "order_id": cmd.order_id,
        "client_order_id": "",
        "account_id": cmd.account_id,
        "instrument_id": cmd.instrument_id,
        "ts": cmd.ts,
    }


def _on_cancel(book: OrderBook, cmd: CancelOrder) -> list[Event]:
    order = book.orders.get(cmd.order_id)
    if order is None or order.spec.account_id != cmd.account_id:
        return [OrderCancelRejected(**_unknown(cmd), reason="unknown order")]
    if order.is_terminal:
        return [OrderCancelRejected(**_ids(order), ts=cmd.ts, reason=f"order is {order.status}")]
    if order.status is S.PENDING_CANCEL:
        # not an OrderCancelRejected: that one ends the pending cancel, and this one is not it
        return [_rejected(order, type(cmd).__name__, "a cancel is already pending", cmd.ts)]
    if order.status is S.PENDING_REPLACE:
        return [OrderCancelRejected(**_ids(order), ts=cmd.ts, reason="an amend is pending")]
    if order.at_venue and not can_transition(order.status, S.PENDING_CANCEL):
        return [OrderCancelRejected(**_ids(order), ts=cmd.ts, reason=_refused(order, S.PENDING_CANCEL))]
    return _cancel(order, cmd.ts, "canceled by client")


def _on_amend(book: OrderBook, cmd: OrderAmendAccepted) -> list[Event]:
    """An amend risk let through; the order's status may still refuse it."""
    order = book.orders.get(cmd.order_id)
    if order is None or order.spec.account_id != cmd.account_id:
        return [OrderAmendRejected(**_unknown(cmd), reason="unknown order")]
    if order.status in (S.PENDING_CANCEL, S.PENDING_REPLACE):
        # not an OrderAmendRejected: that one ends a pending replace, and this one is not it
        return [_rejected(order, type(cmd).__name__, f"order is {order.status}", cmd.ts)]
    qty = cmd.quantity if cmd.quantity is not None else order.quantity
    reject = (
        f"order is {order.status}"
        if order.is_terminal
        else amend_problem(
            order.spec.order_type, order.filled_qty, qty, cmd.quantity, cmd.price, cmd.trigger_price
        )
    )
    if reject is not None:
        return [OrderAmendRejected(**_ids(order), ts=cmd.ts, reason=reject)]
    price = cmd.price if cmd.price is not None else order.price
    trigger = cmd.trigger_price if cmd.trigger_price is not None else order.trigger_price
    return _amend(order, cmd.ts, qty, price, trigger)


def _on_market(book: OrderBook, tick: MarketData) -> list[Event]:
    out: list[Event] = []
    for order in book.held_on(tick.instrument_id):
        s = order.spec
        if (
            not s.order_type.has_trigger
            or order.triggered
            or order.at_venue
            or not order.is_open
            or not _released(book, s)
        ):
            continue
        price = reference_price(order, tick)
        if price is None:
            continue
        trigger = order.trigger_price
        if s.order_type.is_trailing:
            if not is_activated(order, price):
                continue
            moved = trailed_trigger(order, price)
            if moved != trigger:
                trigger = moved
                if not is_triggered(s.side, trigger, price):
                    out.append(OrderTriggerUpdated(**_ids(order), ts=tick.ts, trigger_price=trigger))
        if trigger is None or not is_triggered(s.side, trigger, price):
            continue
        live = dataclasses.replace(
            s,
            order_type=s.order_type.when_triggered,
            quantity=order.quantity,
            price=triggered_limit_price(order, trigger),
            trigger_price=None,
        )
        out.append(OrderTriggered(**_ids(order), ts=tick.ts, trigger_price=trigger))
        out += _route(order, tick.ts, live)
    return out


# -- evolve -----------------------------------------------------------------------------------
def _new_order(spec: OrderSpec, ts: int) -> Order:
    expire = spec.expire_time_ns if spec.time_in_force is TimeInForce.GTD else None
    if spec.time_in_force is TimeInForce.DAY:
        expire = next_utc_midnight(ts)
    return Order(
        spec=spec,
        status=S.ACCEPTED,
        quantity=spec.quantity,
        price=spec.price,
        trigger_price=spec.trigger_price,
        expire_time_ns=expire,
        ts_accepted=ts,
    )


def evolve(book: OrderBook, event: Event) -> OrderBook:
    """Apply one event to the book (in place) and return it. Venue requests change nothing."""
    t = type(event)
    apply = _APPLY.get(t)
    if apply is not None:  # only order events have a handler: they all carry an order id
        order = book.orders.get(cast(Any, event).order_id)
        if order is not None:
            apply(order, event)
            order.version += 1
            book._index(order)
        return book
    if t in _VENUE_REQUESTS:
        return book
    if isinstance(event, OrderAccepted):
        spec = event.order
        if spec.order_id not in book.orders:
            book.orders[spec.order_id] = _new_order(spec, event.ts)
            book.open_ids[spec.order_id] = None
            book.held.setdefault(spec.instrument_id, {})[spec.order_id] = None
            if spec.parent_order_id is not None:
                book.children.setdefault(spec.parent_order_id, []).append(spec.order_id)
        return book
    if isinstance(event, OrderDenied):
        book.denied[event.order_id] = event.reason
        return book
    order = book.orders.get(getattr(event, "order_id", ""))  # other facts pass unchanged
    if order is None:
        return book
    _APPLY.get(type(event), _ignore)(order, event)
    order.version += 1
    book._index(order)
    return book


_Apply = Callable[[Order, OrderEvent], None]
_VENUE_REQUESTS = frozenset({VenueSubmitOrder, VenueCancelOrder, VenueAmendOrder})


def _ignore(order: Order, event: OrderEvent) -> None:
    """Events that record something without changing the order (transition rejections)."""


def _submitted(o: Order, e: OrderSubmitted) -> None:
    o.status, o.routed = S.SUBMITTED, True


def _acknowledged(o: Order, e: OrderAcknowledged) -> None:
    o.venue_order_id = e.venue_order_id
    o.ts_acknowledged = o.ts_acknowledged or e.ts
    if o.status in (S.SUBMITTED, S.TRIGGERED):
        o.status = S.NEW


def _filled(o: Order, e: OrderFilled | OrderPartiallyFilled) -> None:
    o.trade_ids.add(e.fill.trade_id)
    o.filled_qty, o.avg_px, o.ts_last_fill = e.cum_qty, e.avg_px, e.ts
    o.status = S.FILLED if isinstance(e, OrderFilled) else S.PARTIALLY_FILLED


def _pending(status: OrderStatus) -> _Apply:
    def apply(o: Order, e: OrderEvent) -> None:
        o.previous_status, o.status = o.status, status

    return apply


def _revert(pending: OrderStatus) -> _Apply:
    """A rejection ends the request of its own kind only (an amend's, not a pending cancel)."""

    def apply(o: Order, e: OrderEvent) -> None:
        if o.status is pending and o.previous_status is not None:
            o.status, o.previous_status = o.previous_status, None

    return apply


def _replaced(o: Order, e: OrderReplaced) -> None:
    o.quantity, o.price, o.trigger_price = e.quantity, e.price, e.trigger_price
    if o.at_venue:
        o.status = S.FILLED if o.filled_qty >= o.quantity else S.REPLACED
    o.previous_status = None


def _triggered(o: Order, e: OrderTriggered) -> None:
    o.triggered, o.status = True, S.TRIGGERED
    if e.trigger_price is not None:
        o.trigger_price = e.trigger_price


def _trigger_moved(o: Order, e: OrderTriggerUpdated) -> None:
    o.trigger_price = e.trigger_price


def _status(status: OrderStatus) -> _Apply:
    def apply(o: Order, e: OrderEvent) -> None:
        o.status = status

    return apply


# Each handler takes the event type it is filed under (a dict: one lookup per event).
_APPLY: dict[type, Callable[[Order, Any], None]] = {
    OrderSubmitted: _submitted,
    OrderAcknowledged: _acknowledged,
    OrderRejected: _status(S.REJECTED),
    OrderPartiallyFilled: _filled,
    OrderFilled: _filled,
    OrderPendingCancel: _pending(S.PENDING_CANCEL),
    OrderCanceled: _status(S.CANCELED),
    OrderCancelRejected: _revert(S.PENDING_CANCEL),
    OrderPendingReplace: _pending(S.PENDING_REPLACE),
    OrderReplaced: _replaced,
    OrderAmendRejected: _revert(S.PENDING_REPLACE),
    OrderTriggered: _triggered,
    OrderTriggerUpdated: _trigger_moved,
    OrderExpired: _status(S.EXPIRED),
}


STATUS_SET_BY: dict[type, OrderStatus] = {
    OrderAccepted: S.ACCEPTED,
    OrderDenied: S.DENIED,
    OrderSubmitted: S.SUBMITTED,
    OrderRejected: S.REJECTED,
    OrderPartiallyFilled: S.PARTIALLY_FILLED,
    OrderFilled: S.FILLED,
    OrderPendingCancel: S.PENDING_CANCEL,
    OrderCanceled: S.CANCELED,
    OrderPendingReplace: S.PENDING_REPLACE,
    OrderTriggered: S.TRIGGERED,
    OrderExpired: S.EXPIRED,
}
"""The status each of these order events leaves its order in, whatever the order's state (an
acknowledgement, a replacement or a rejected cancel or amend depends on the state: not here)."""


def replay(events: list[Event]) -> OrderBook:
    """A book rebuilt from its events."""
    book = OrderBook()
    for e in events:
        evolve(book, e)
    return book
