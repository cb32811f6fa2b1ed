"""A paper venue implementing the execution-adapter port in memory, with fault hooks, so the gateway's
reconciliation is tested over many seeded fault schedules without a socket (the Binance adapter
against the protocol-true fake is tested in `test_binance_*`).

The test drives it from its own thread: `fill` trades a resting order; updates go to whoever follows
`updates()` (nobody while the gateway is down: those are gone, as on a real venue)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from decimal import Decimal

from meltica.domain.instruments import Instrument
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import LiquiditySide, OrderType
from meltica.venues.port import (
    VenueBalance,
    VenueOrder,
    VenueRejectedError,
    VenueThrottledError,
    VenueTrade,
    VenueUnavailableError,
    VenueUpdate,
)

ZERO = Decimal(0)


@dataclass
class PaperVenue:
    venue: str = "PAPER"
    orders: dict[str, VenueOrder] = field(default_factory=dict)
    trades: list[VenueTrade] = field(default_factory=list)
    cash: Decimal = Decimal("1000000")
    # faults
    unavailable_next: int = (
        0  # calls that fail with VenueUnavailableError (after taking effect: see `lost_answers`)
    )
    lost_answers: bool = False  # an unavailable submit/cancel still took effect (the answer was lost)
    throttle_for: float = 0.0  # the next call is refused as throttled for this many seconds
    lose_next: int = 0  # updates not delivered
    duplicate_next: int = 0  # updates delivered twice
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._listeners: list[queue.Queue[VenueUpdate | None]] = []
        self.outstanding = 0  # updates sent and not yet taken in full by the listener

    # -- the port ---------------------------------------------------------------------------------
    @property
    def weight_used(self) -> int:
        return len(self.calls)

    async def connect(self) -> None:
        self._call("connect", effect=lambda: None)

    async def close(self) -> None:
        self.drop_stream()

    async def instruments(self) -> list[Instrument]:
        return []

    async def submit(self, order: OrderSpec) -> VenueOrder:
        def effect() -> VenueOrder:
            if order.order_id in self.orders and self.orders[order.order_id].status not in _CLOSED:
                raise VenueRejectedError("duplicate_order", "Duplicate order sent.")
            if order.quantity * (order.price or Decimal(1)) > self.cash:
                raise VenueRejectedError("insufficient_balance", "Account has insufficient balance")
            o = VenueOrder(
                order.order_id,
                f"V{next(self._ids)}",
                order.instrument_id,
                order.side,
                OrderStatus.NEW,
                order.quantity,
                order.price,
                ZERO,
                None,
                _now(),
            )
            self.orders[o.order_id] = o
            self._push(o)
            if order.order_type is OrderType.MARKET:
                self._fill(o.order_id, o.quantity, order.price or Decimal("100"))
            return self.orders[o.order_id]

        return self._call("submit", effect)

    async def cancel(self, order_id: str, instrument_id: str) -> VenueOrder:
        def effect() -> VenueOrder:
            o = self.orders.get(order_id)
            if o is None or o.status in _CLOSED:
                raise VenueRejectedError("unknown_order", "Unknown order sent.")
            o = replace(o, status=OrderStatus.CANCELED, ts=_now())
            self.orders[order_id] = o
            self._push(o)
            return o

        return self._call("cancel", effect)

    async def amend(self, order: OrderSpec, quantity: Decimal, price: Decimal | None) -> VenueOrder:
        def effect() -> VenueOrder:
            o = self.orders.get(order.order_id)
            if o is None or o.status in _CLOSED:
                raise VenueRejectedError("unknown_order", "Unknown order sent.")
            o = replace(o, venue_order_id=f"V{next(self._ids)}", quantity=quantity, price=price, ts=_now())
            self.orders[o.order_id] = o
            return o

        return self._call("amend", effect)

    async def order(self, order_id: str, instrument_id: str) -> VenueOrder | None:
        return self._call("order", lambda: self.orders.get(order_id))

    async def open_orders(self) -> list[VenueOrder]:
        return self._call("open_orders", lambda: [o for o in self.orders.values() if o.status not in _CLOSED])

    async def trades_since(self, instrument_id: str, after_trade_id: str | None) -> list[VenueTrade]:
        after = int(after_trade_id) if after_trade_id else 0
        return self._call(
            "trades_since",
            lambda: [t for t in self.trades if t.instrument_id == instrument_id and int(t.trade_id) > after],
        )

    async def balances(self) -> tuple[VenueBalance, ...]:
        return self._call("balances", lambda: (VenueBalance("USDT", self.cash, ZERO),))

    async def updates(self) -> AsyncIterator[VenueUpdate]:
        q: queue.Queue[VenueUpdate | None] = queue.Queue()
        with self._lock:
            self._listeners.append(q)
        holding = False
        try:
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.002)
                    continue
                if item is None:
                    raise VenueUnavailableError("the user-data stream dropped")
                holding = True
                yield item
                holding = False
                with self._lock:  # the listener asks for the next: it is done with this one
                    self.outstanding -= 1
        finally:
            with self._lock:
                if holding:  # the listener stopped while it held one
                    self.outstanding -= 1
                if q in self._listeners:
                    self._listeners.remove(q)
                while not q.empty():  # never delivered: gone, as on a real venue
                    if q.get_nowait() is not None:
                        self.outstanding -= 1

    # -- the test's hands -------------------------------------------------------------------------
    def fill(self, order_id: str, quantity: Decimal, price: Decimal) -> None:
        with self._lock:
            self._fill(order_id, quantity, price)

    def place_outside(self, instrument_id: str, quantity: Decimal, price: Decimal) -> VenueOrder:
        """An order placed at the venue by someone else (not through Meltica)."""
        from meltica.domain.values import OrderSide

        with self._lock:
            o = VenueOrder(
                f"web_{next(self._ids)}",
                f"V{next(self._ids)}",
                instrument_id,
                OrderSide.BUY,
                OrderStatus.NEW,
                quantity,
                price,
                ZERO,
                None,
                _now(),
            )
            self.orders[o.order_id] = o
            return o

    def drop_stream(self) -> None:
        with self._lock:
            for q in self._listeners:
                q.put(None)
            self._listeners.clear()

    @property
    def listening(self) -> bool:
        with self._lock:
            return bool(self._listeners)

    # -- inside -----------------------------------------------------------------------------------
    def _call(self, name: str, effect):  # type: ignore[no-untyped-def]
        with self._lock:
            self.calls.append(name)
            if self.throttle_for:
                retry, self.throttle_for = self.throttle_for, 0.0
                raise VenueThrottledError(retry, "Too many requests")
            if self.unavailable_next:
                self.unavailable_next -= 1
                if self.lost_answers and name in ("submit", "cancel"):
                    with contextlib.suppress(VenueRejectedError):
                        effect()
                raise VenueUnavailableError("HTTP 503: service unavailable")
            return effect()

    def _fill(self, order_id: str, quantity: Decimal, price: Decimal) -> None:
        o = self.orders[order_id]
        qty = min(quantity, o.quantity - o.filled_qty)
        if qty <= 0 or o.status in _CLOSED:
            return
        t = VenueTrade(
            str(next(self._trade_ids)),
            o.order_id,
            o.venue_order_id,
            o.instrument_id,
            o.side,
            qty,
            price,
            ZERO,
            "USDT",
            LiquiditySide.MAKER,
            _now(),
        )
        self.trades.append(t)
        filled = o.filled_qty + qty
        o = replace(
            o,
            filled_qty=filled,
            avg_px=price,
            status=OrderStatus.FILLED if filled >= o.quantity else OrderStatus.PARTIALLY_FILLED,
            ts=t.ts,
        )
        self.orders[order_id] = o
        self._push(t)
        self._push(o)

    def _push(self, update: VenueUpdate) -> None:
        for q in list(self._listeners):
            if self.lose_next:
                self.lose_next -= 1
                continue
            q.put(update)
            self.outstanding += 1
            if self.duplicate_next:
                self.duplicate_next -= 1
                q.put(update)
                self.outstanding += 1


_CLOSED = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
_clock = itertools.count(1_700_000_000_000_000_000, 1_000_000)


def _now() -> int:
    return next(_clock)
