"""Smart order routing: an order at the routing venue `SOR` is worked as child orders at the venues
that list its symbol.

A routed order (instrument `SYMBOL.SOR`) is an ordinary order to everyone but its venue: the router
is that venue. It acknowledges the parent, splits it across the levels of every healthy listing's
book, best fee-adjusted price first, and submits one child order per venue as an ordinary order
command (risk checks each child at its venue; the child carries `parent_order_id`). The parent's
execution reports mirror its children: each child fill is a fill of the parent, so the parent's
status, filled quantity and average price are derived from its children. Positions and balances
count the children's fills only (`routed` tells the portfolio and risk to skip the parent's).

- A LIMIT parent's children are limits at the parent's price with its time in force; what the books
  cannot fill now rests at the listing with the lowest maker fee.
- A MARKET parent's children are IOC limits at the worst level they were planned to take; what
  they leave is planned again on the books as they then stand, until nothing is left to take.
- A child that risk denies or its venue rejects takes its venue out of the parent's routing; its
  quantity goes to the other venues. A venue that never brought market data, or whose every
  connection is degraded, failed, stopped or removed (`VenueStateChanged`), gets no new children.
- Cancelling the parent cancels its children; the parent is canceled once they have ended. A child
  canceled by someone else (a client, a kill switch) is not replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from meltica.domain.control import venue_down
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Book, OrderBookDelta, OrderBookSnapshot, QuoteTick
from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.orders.events import (
    ExecutionReport,
    Fill,
    OrderAcknowledged,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPendingCancel,
    OrderRejected,
    VenueAmendOrder,
    VenueCancelOrder,
    VenueSubmitOrder,
)
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import ONE, ROUTER_VENUE, ZERO, ExecType, OrderSide, OrderType, TimeInForce

ROUTER = ROUTER_VENUE
"""The venue code of routed orders: `BTCUSDT.SOR` is BTCUSDT at the best venue that lists it."""
NOT_AMENDABLE = "a routed order (or its child) cannot be amended: cancel it and submit a new one"
MAX_CHILDREN = 64
"""Children one parent may have in all: a bound on planning again after IOC remainders."""

S = OrderStatus


def routed(instrument_id: str) -> bool:
    """Whether `instrument_id` is at the routing venue (its fills mirror its children's)."""
    return instrument_id.rpartition(".")[2] == ROUTER


@dataclass(frozen=True, slots=True)
class Slice:
    """One child order to send: `quantity` at `instrument_id`, limited to `price`."""

    instrument_id: str
    quantity: Decimal
    price: Decimal
    rest: bool  # keeps the parent's time in force (a LIMIT parent's child); else IOC


def _far(side: OrderSide) -> OrderSide:
    """The side of the book an order of `side` takes from."""
    return OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY


def _within(side: OrderSide, limit: Decimal | None, price: Decimal) -> bool:
    return limit is None or (price <= limit if side is OrderSide.BUY else price >= limit)


def _effective(side: OrderSide, price: Decimal, fee: Decimal) -> Decimal:
    """What a unit costs (BUY) or yields (SELL) at `price` after the taker fee."""
    return price * (ONE + fee) if side is OrderSide.BUY else price * (ONE - fee)


def _lot(inst: Instrument, quantity: Decimal, price: Decimal) -> Decimal:
    """`quantity` rounded down to the instrument's size increment; zero below its minimums."""
    inc = inst.size_increment
    q = (quantity / inc).to_integral_value(rounding=ROUND_DOWN) * inc if inc > ZERO else quantity
    if q <= ZERO or (inst.min_quantity is not None and q < inst.min_quantity):
        return ZERO
    if inst.min_notional is not None and inst.notional(q, price) < inst.min_notional:
        return ZERO
    return q


def plan(
    side: OrderSide,
    quantity: Decimal,
    limit: Decimal | None,
    listings: Sequence[tuple[Instrument, Book]],
) -> list[Slice]:
    """Children for `quantity` across `listings` (in preference order on ties): the books' levels
    within `limit`, best price after the taker fee first, one child per listing at the worst level
    it takes; with a `limit`, the rest at the listing with the lowest maker fee."""
    far = _far(side)
    levels = [
        (_effective(side, px, inst.taker_fee), i, px, size)
        for i, (inst, book) in enumerate(listings)
        for px, size in book.levels(far)
        if size > ZERO and _within(side, limit, px)
    ]
    levels.sort(key=lambda lv: (lv[0] if side is OrderSide.BUY else -lv[0], lv[1]))
    wanted: dict[int, list[Decimal]] = {}  # listing -> [quantity, worst price]
    left = quantity
    for _, i, px, size in levels:
        if left <= ZERO:
            break
        take = min(size, left)
        got = wanted.setdefault(i, [ZERO, px])
        got[0] += take
        got[1] = px  # levels come best first per listing, so the last taken is the worst
        left -= take
    out: list[Slice] = []
    for i, (q, px) in sorted(wanted.items()):
        inst = listings[i][0]
        lot = _lot(inst, q, px)
        if lot > ZERO:
            out.append(Slice(inst.instrument_id, lot, limit if limit is not None else px, limit is not None))
    rest = quantity - sum((s.quantity for s in out), ZERO)
    if limit is not None and rest > ZERO and listings:
        cheapest = min(range(len(listings)), key=lambda i: (listings[i][0].maker_fee, i))
        inst = listings[cheapest][0]
        lot = _lot(inst, rest, limit)
        if lot > ZERO:
            out = _merge(out, Slice(inst.instrument_id, lot, limit, True))
    return out


def _nothing_left(spec: OrderSpec, listed: bool) -> str:
    """Why the rest of `spec` cannot be placed anywhere."""
    if not listed:
        return "no venue to route to: none lists the symbol with market data and a live feed"
    if spec.price is None:
        return "no venue has liquidity left for the rest of this market order"
    return "no venue has liquidity within the limit"


def _merge(slices: list[Slice], extra: Slice) -> list[Slice]:
    """`extra` added to the slice at its listing, if there is one (both rest at the parent's limit)."""
    for i, s in enumerate(slices):
        if s.instrument_id == extra.instrument_id:
            slices[i] = Slice(s.instrument_id, s.quantity + extra.quantity, s.price, True)
            return slices
    return [*slices, extra]


@dataclass(slots=True)
class Child:
    """A child order as its parent's route knows it."""

    instrument_id: str
    quantity: Decimal
    filled: Decimal = ZERO
    open: bool = True
    cancel_sent: bool = False  # the router asked for its cancel
    withdrawn: bool = False  # someone else asked for its cancel: its rest is not replaced
    cancel_seen: bool = False  # the order book took a cancel of it (pending cancel)

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled


@dataclass(slots=True)
class Route:
    """A parent order being worked: its children, the venues it avoids and why it may end early."""

    spec: OrderSpec
    children: dict[str, Child] = field(default_factory=dict)
    avoid: set[str] = field(default_factory=set)  # listings that denied or rejected a child
    filled: Decimal = ZERO
    made: int = 0  # children made so far (their ids count up)
    canceling: bool = False
    expired: bool = False  # a child expired (DAY, GTD): so does the parent
    dropped: Decimal = ZERO  # quantity no longer worked: withdrawn, or nowhere left to go
    why: str = ""  # the last reason a child failed

    @property
    def open_children(self) -> list[tuple[str, Child]]:
        return [(cid, c) for cid, c in self.children.items() if c.open]

    @property
    def unworked(self) -> Decimal:
        """Quantity neither filled, nor at a venue, nor given up."""
        working = sum((c.leaves for c in self.children.values() if c.open), ZERO)
        return self.spec.quantity - self.filled - working - self.dropped


RouterOutput = SubmitOrder | CancelOrder | ExecutionReport


@dataclass(slots=True)
class SmartRouter:
    """The routing venue: parents' venue requests and their children's events in, child order
    commands and the parents' execution reports out."""

    instruments: dict[str, Instrument] = field(default_factory=dict)
    listings: dict[str, list[str]] = field(default_factory=dict)  # symbol -> instruments at venues
    books: dict[str, Book] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # venue code -> why it gets no children
    feeds: dict[str, dict[str, str | None]] = field(default_factory=dict)  # venue -> connection -> why down
    routes: dict[str, Route] = field(default_factory=dict)  # open parents
    parent_of: dict[str, str] = field(default_factory=dict)  # open child -> parent

    # -- what it knows of the venues ---------------------------------------------------------
    def on_instrument(self, inst: Instrument) -> None:
        self.instruments[inst.instrument_id] = inst
        if inst.venue != ROUTER:
            ids = self.listings.setdefault(inst.symbol, [])
            if inst.instrument_id not in ids:
                ids.append(inst.instrument_id)
                ids.sort()

    def on_book(self, tick: QuoteTick | OrderBookSnapshot | OrderBookDelta) -> None:
        inst = self.instruments.get(tick.instrument_id)
        if inst is not None and f"{inst.symbol}.{ROUTER}" in self.instruments:
            self.books.setdefault(tick.instrument_id, Book()).apply(tick)

    def venue_state(self, venue: str, connection: str, healthy: bool, reason: str) -> None:
        """A connection feeding `venue` is usable (or not, for `reason`): the venue is down while
        every connection feeding it is."""
        feeds = self.feeds.setdefault(venue, {})
        feeds[connection] = None if healthy else reason
        why = venue_down(feeds)
        if why is None:
            self.down.pop(venue, None)
        else:
            self.down[venue] = why

    # -- parents -----------------------------------------------------------------------------
    def on_request(self, req: VenueSubmitOrder | VenueCancelOrder | VenueAmendOrder) -> list[RouterOutput]:
        if isinstance(req, VenueSubmitOrder):
            return self._submit(req.order, req.ts)
        route = self.routes.get(req.order_id)
        if isinstance(req, VenueAmendOrder):
            return [self._report(req, ExecType.REPLACE_REJECTED, S.NEW, req.ts, reason=NOT_AMENDABLE)]
        if route is None:
            return [self._report(req, ExecType.CANCEL_REJECTED, S.CANCELED, req.ts, reason="unknown order")]
        route.canceling = True
        out: list[RouterOutput] = [
            CancelOrder(cid, route.spec.account_id, c.instrument_id, req.ts)
            for cid, c in route.open_children
            if not c.cancel_sent and not c.withdrawn
        ]
        for _, c in route.open_children:
            c.cancel_sent = True
        return out + self._settle(route, req.ts)

    def _submit(self, spec: OrderSpec, ts: int) -> list[RouterOutput]:
        if spec.order_id in self.routes:
            return []  # redelivered
        problem = spec.problems()
        symbol = spec.instrument_id.rpartition(".")[0]
        if problem is None and not self.listings.get(symbol):
            problem = f"no venue lists {symbol}"
        if problem is not None:
            return [self._report(spec, ExecType.REJECTED, S.REJECTED, ts, reason=problem)]
        route = self.routes[spec.order_id] = Route(spec)
        ack = self._report(spec, ExecType.NEW, S.NEW, ts)
        return [ack, *self._work(route, ts)]

    def _work(self, route: Route, ts: int) -> list[RouterOutput]:
        """Children for what the parent has unworked; what cannot be placed is given up."""
        spec, left = route.spec, route.unworked
        if left <= ZERO or route.canceling:
            return []
        listings = self._usable(route)
        slices = plan(spec.side, left, spec.price, listings) if listings else []
        out: list[RouterOutput] = []
        for s in slices:
            if route.made >= MAX_CHILDREN:
                route.why = f"{MAX_CHILDREN} child orders made"
                break
            route.made += 1
            child = self._child(spec, route.made, s)
            child_id = child.order_id
            route.children[child_id] = Child(s.instrument_id, s.quantity)
            self.parent_of[child_id] = spec.order_id
            out.append(SubmitOrder(child, ts))
        placed = sum((s.quantity for s in slices[: len(out)]), ZERO)
        if placed < left:
            route.dropped += left - placed
            if not route.why:
                route.why = _nothing_left(spec, bool(listings))
        return out + self._settle(route, ts)

    def _usable(self, route: Route) -> list[tuple[Instrument, Book]]:
        symbol = route.spec.instrument_id.rpartition(".")[0]
        out = []
        for iid in self.listings.get(symbol, ()):
            book = self.books.get(iid)  # none: the venue never brought market data (nothing to match)
            inst = self.instruments[iid]
            if book is None or iid in route.avoid or inst.venue in self.down:
                continue
            out.append((inst, book))
        return out

    @staticmethod
    def _child(parent: OrderSpec, n: int, s: Slice) -> OrderSpec:
        """The `n`-th child. Its client order id has a "~", which no client order id a client or
        a strategy chooses may have: none can take it first and leave the child a duplicate."""
        return OrderSpec(
            order_id=f"{parent.order_id}-r{n}",
            client_order_id=f"{parent.order_id}~r{n}",
            account_id=parent.account_id,
            instrument_id=s.instrument_id,
            side=parent.side,
            order_type=OrderType.LIMIT,
            quantity=s.quantity,
            price=s.price,
            time_in_force=parent.time_in_force if s.rest else TimeInForce.IOC,
            expire_time_ns=parent.expire_time_ns if s.rest else None,
            reduce_only=parent.reduce_only,
            parent_order_id=parent.order_id,
            strategy_id=parent.strategy_id,
            tags=parent.tags,
        )

    # -- children ----------------------------------------------------------------------------
    def on_child_event(self, event: object) -> list[RouterOutput]:
        """An order event; those of a child move its parent."""
        child_id = getattr(event, "order_id", "")
        parent_id = self.parent_of.get(child_id)
        route = None if parent_id is None else self.routes.get(parent_id)
        if route is None:
            return []
        child = route.children[child_id]
        ts: int = getattr(event, "ts", 0)
        if isinstance(event, OrderFilled | OrderPartiallyFilled):
            return self._child_fill(route, child_id, child, event)
        if isinstance(event, OrderPendingCancel):
            child.withdrawn = child.withdrawn or not child.cancel_sent
            child.cancel_seen = True
            return []
        if isinstance(event, OrderAcknowledged) and child.cancel_sent and not child.cancel_seen:
            # our cancel reached the order book before the child did (separate services) and was
            # refused as unknown: now that the child rests at its venue, ask again
            child.cancel_seen = True
            return [CancelOrder(child_id, route.spec.account_id, child.instrument_id, ts)]
        if isinstance(event, OrderDenied | OrderRejected):
            route.avoid.add(child.instrument_id)
            reason = (event.message or event.reason) if isinstance(event, OrderDenied) else event.reason
            route.why = f"{child.instrument_id}: {reason}"
            self._close(child_id, child)
            return self._work(route, ts)
        if isinstance(event, OrderCanceled | OrderExpired):
            self._close(child_id, child)
            if isinstance(event, OrderCanceled) and not (child.withdrawn or child.cancel_sent):
                if route.spec.order_type is OrderType.MARKET:  # what its IOC child left: plan again,
                    if child.filled <= ZERO:  # elsewhere if it took nothing (that book is not as seen)
                        route.avoid.add(child.instrument_id)
                    return self._work(route, ts)
                if route.spec.time_in_force is not TimeInForce.IOC:  # the venue canceled a resting child
                    route.avoid.add(child.instrument_id)
                    return self._work(route, ts)
            route.dropped += child.leaves
            if isinstance(event, OrderExpired):
                route.expired = True
            route.why = route.why or f"child {child_id} {'expired' if route.expired else 'canceled'}"
            return self._settle(route, ts)
        return []

    def _child_fill(
        self, route: Route, child_id: str, child: Child, e: OrderFilled | OrderPartiallyFilled
    ) -> list[RouterOutput]:
        fill = e.fill
        child.filled += fill.last_qty
        route.filled += fill.last_qty
        book = self.books.get(child.instrument_id)
        if book is not None:  # what we took is gone until the market says otherwise
            book.take(_far(route.spec.side), fill.last_px, fill.last_qty)
        spec = route.spec
        mirrored = Fill(
            f"{child_id}:{fill.trade_id}",
            spec.order_id,
            fill.side,
            fill.last_qty,
            fill.last_px,
            fill.fee,
            fill.fee_currency,
            fill.liquidity_side,
            fill.ts_fill,
            fill.reconciled,
        )
        done = route.filled >= spec.quantity
        status = S.FILLED if done else S.PARTIALLY_FILLED
        report = self._report(
            spec,
            ExecType.TRADE,
            status,
            e.ts,
            fill=mirrored,
            cum_qty=route.filled,
            leaves_qty=spec.quantity - route.filled,
        )
        if isinstance(e, OrderFilled):
            self._close(child_id, child)
        if done:
            self._forget(route)
            return [report]
        return [report, *self._settle(route, e.ts)]

    def _close(self, child_id: str, child: Child) -> None:
        child.open = False
        self.parent_of.pop(child_id, None)

    def _settle(self, route: Route, ts: int) -> list[RouterOutput]:
        """The parent ends canceled once nothing of it is worked and it is not filled."""
        if route.open_children or route.filled >= route.spec.quantity:
            return []
        if route.unworked > ZERO and not route.canceling:
            return []
        self._forget(route)
        if route.expired and not route.canceling:
            return [self._report(route.spec, ExecType.EXPIRED, S.EXPIRED, ts)]
        reason = "canceled" if route.canceling else route.why or "nothing left to route"
        return [self._report(route.spec, ExecType.CANCELED, S.CANCELED, ts, reason=reason)]

    def _forget(self, route: Route) -> None:
        self.routes.pop(route.spec.order_id, None)
        for cid in route.children:
            self.parent_of.pop(cid, None)

    @staticmethod
    def _report(
        about: OrderSpec | VenueCancelOrder | VenueAmendOrder,
        exec_type: ExecType,
        status: OrderStatus,
        ts: int,
        *,
        fill: Fill | None = None,
        cum_qty: Decimal | None = None,
        leaves_qty: Decimal | None = None,
        reason: str = "",
    ) -> ExecutionReport:
        return ExecutionReport(
            ROUTER,
            exec_type,
            about.order_id,
            about.account_id,
            about.instrument_id,
            status,
            ts,
            ts,
            venue_order_id=about.order_id,
            fill=fill,
            cum_qty=cum_qty,
            leaves_qty=leaves_qty,
            reason=reason,
        )


def venue_healthy(state: str) -> bool:
    """Whether a connection in `state` (a `VenueState` value) may get children: not while its data
    is late, gone, stopped or removed (its book is the last one it brought)."""
    return state not in ("DEGRADED", "FAILED", "STOPPED", "REMOVED")
