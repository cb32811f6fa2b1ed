"""A matching engine driven by market data.

The venue keeps a book per instrument from quotes (L1), snapshots and deltas (L2). A
market or marketable limit order takes liquidity level by level (partial fills across
levels, the taken size removed from the book until the market updates it). A resting
limit order waits in the queue: the size already at its price when it arrived is ahead of
it, trades at its price eat that queue first, trades through its price fill it, and a book
that moves through its price fills it as maker. IOC and market remainders are canceled,
FOK fills entirely or not at all, post-only orders that would take liquidity are rejected.
Bars are read as four trades (open, high, low, close). Report times are the request or
market time plus the latency model's delay.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, BookAction, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick
from meltica.domain.orders.events import (
    ExecutionReport,
    Fill,
    VenueAmendOrder,
    VenueCancelOrder,
    VenueSubmitOrder,
)
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import (
    ZERO,
    ExecType,
    LiquiditySide,
    OrderSide,
    OrderType,
    TimeInForce,
    next_utc_midnight,
)
from meltica.venues.sim.models import (
    FeeModel,
    FixedLatency,
    InstrumentFees,
    LatencyModel,
    NoSlippage,
    SlippageModel,
)

S = OrderStatus


@dataclass
class Book:
    """Price levels of one instrument, as the market data last said."""

    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)

    def side(self, side: OrderSide) -> dict[Decimal, Decimal]:
        return self.bids if side is OrderSide.BUY else self.asks

    def levels(self, side: OrderSide) -> list[tuple[Decimal, Decimal]]:
        """Levels of one side, best first."""
        levels = self.side(side)
        return sorted(levels.items(), reverse=side is OrderSide.BUY)

    def best(self, side: OrderSide) -> Decimal | None:
        levels = self.side(side)
        if not levels:
            return None
        return max(levels) if side is OrderSide.BUY else min(levels)

    def take(self, side: OrderSide, price: Decimal, qty: Decimal) -> None:
        levels = self.side(side)
        left = levels.get(price, ZERO) - qty
        if left > ZERO:
            levels[price] = left
        else:
            levels.pop(price, None)


@dataclass
class Resting:
    spec: OrderSpec
    venue_order_id: str
    queue_ahead: Decimal
    expire_ns: int | None
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fills: int = 0

    @property
    def leaves(self) -> Decimal:
        return self.spec.quantity - self.filled


def _marketable(side: OrderSide, limit: Decimal | None, price: Decimal) -> bool:
    if limit is None:
        return True
    return price <= limit if side is OrderSide.BUY else price >= limit


class SimVenue:
    """The simulated venue `name`: requests and market data in, execution reports out."""

    def __init__(
        self,
        name: str = "SIM",
        *,
        fees: FeeModel | None = None,
        slippage: SlippageModel | None = None,
        latency: LatencyModel | None = None,
    ) -> None:
        self.name = name
        self.fees = fees or InstrumentFees()
        self.slippage = slippage or NoSlippage()
        self.latency = latency or FixedLatency()
        self.instruments: dict[str, Instrument] = {}
        self.books: dict[str, Book] = {}
        self.resting: dict[str, Resting] = {}
        self.bar_driven: set[str] = set()  # instruments known only through bars
        self.tick_driven: set[str] = set()  # instruments with quotes, trades or books: bars add nothing
        self.at_next_open: dict[str, Resting] = {}

    # -- inputs -----------------------------------------------------------------------------------
    def on_instrument(self, inst: Instrument) -> None:
        self.instruments[inst.instrument_id] = inst

    def on_request(self, req: Any) -> list[ExecutionReport]:
        if isinstance(req, VenueSubmitOrder):
            return self._submit(req.order, req.ts)
        if isinstance(req, VenueCancelOrder):
            return self._cancel(req)
        if isinstance(req, VenueAmendOrder):
            return self._amend(req)
        return []

    def on_market(self, tick: Any) -> list[ExecutionReport]:
        book = self.books.setdefault(tick.instrument_id, Book())
        if not isinstance(tick, Bar):
            self.tick_driven.add(tick.instrument_id)
        elif tick.instrument_id in self.tick_driven:
            return []  # bars built from the ticks already matched would match them twice
        if isinstance(tick, QuoteTick):
            book.bids, book.asks = {tick.bid_px: tick.bid_qty}, {tick.ask_px: tick.ask_qty}
            return self._expire(tick.instrument_id, tick.ts) + self._crossed(tick.instrument_id, tick.ts)
        if isinstance(tick, OrderBookSnapshot):
            book.bids = {lv.price: lv.size for lv in tick.bids}
            book.asks = {lv.price: lv.size for lv in tick.asks}
            return self._expire(tick.instrument_id, tick.ts) + self._crossed(tick.instrument_id, tick.ts)
        if isinstance(tick, OrderBookDelta):
            levels = book.side(tick.side)
            if tick.action is BookAction.CLEAR:
                levels.clear()
            elif tick.action is BookAction.DELETE or tick.size <= ZERO:
                levels.pop(tick.price, None)
            else:
                levels[tick.price] = tick.size
            return self._expire(tick.instrument_id, tick.ts) + self._crossed(tick.instrument_id, tick.ts)
        if isinstance(tick, TradeTick):
            return self._expire(tick.instrument_id, tick.ts) + self._traded(
                tick.instrument_id, tick.price, tick.size, tick.ts
            )
        if isinstance(tick, Bar):
            self.bar_driven.add(tick.instrument_id)
            out = self._expire(tick.instrument_id, tick.ts)
            for order_id, r in list(self.at_next_open.items()):
                if r.spec.instrument_id == tick.instrument_id:
                    del self.at_next_open[order_id]
                    inst = self.instruments.get(r.spec.instrument_id)
                    price = tick.open if inst is None else self.slippage.price(inst, r.spec.side, tick.open)
                    out.append(self._fill(r, r.leaves, price, LiquiditySide.TAKER, tick.ts_open))
            # bars without volume say nothing of liquidity: a print fills whatever rests at or through it
            quarter = tick.volume / 4 if tick.volume > ZERO else Decimal("Infinity")
            for price in (tick.open, tick.high, tick.low, tick.close):
                out += self._traded(tick.instrument_id, price, quarter, tick.ts)
            return out
        return []

    # -- reports ----------------------------------------------------------------------------------
    def _report(
        self, spec: OrderSpec, exec_type: ExecType, status: OrderStatus, ts: int, **kw: Any
    ) -> ExecutionReport:
        return ExecutionReport(
            venue=self.name,
            exec_type=exec_type,
            order_id=spec.order_id,
            account_id=spec.account_id,
            instrument_id=spec.instrument_id,
            order_status=status,
            ts_venue=ts,
            ts=ts,
            venue_order_id=f"{self.name}-{spec.order_id}",
            **kw,
        )

    def _fill(
        self, r: Resting, qty: Decimal, price: Decimal, liquidity: LiquiditySide, ts: int
    ) -> ExecutionReport:
        inst = self.instruments.get(r.spec.instrument_id)
        fee = self.fees.fee(inst, liquidity, qty, price) if inst is not None else ZERO
        r.fills += 1
        r.filled += qty
        r.notional += qty * price
        fill = Fill(
            f"{r.venue_order_id}-{r.fills}",
            r.venue_order_id,
            r.spec.side,
            qty,
            price,
            fee,
            inst.quote_currency if inst is not None else "",
            liquidity,
            ts,
        )
        status = S.FILLED if r.leaves == ZERO else S.PARTIALLY_FILLED
        return self._report(
            r.spec,
            ExecType.TRADE,
            status,
            ts,
            fill=fill,
            cum_qty=r.filled,
            leaves_qty=r.leaves,
            avg_px=r.notional / r.filled,
        )

    # -- requests ---------------------------------------------------------------------------------
    def _submit(self, spec: OrderSpec, ts_request: int) -> list[ExecutionReport]:
        ts = ts_request + self.latency.delay_ns(spec.order_id, "submit")
        book = self.books.get(spec.instrument_id) or Book()
        inst = self.instruments.get(spec.instrument_id)
        opposite = spec.side.opposite
        limit = spec.price if spec.order_type is OrderType.LIMIT else None
        if spec.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            return [
                self._report(
                    spec, ExecType.REJECTED, S.REJECTED, ts, reason=f"{spec.order_type} is not supported"
                )
            ]
        if inst is None:
            return [self._report(spec, ExecType.REJECTED, S.REJECTED, ts, reason="unknown instrument")]
        best = book.best(opposite)
        if spec.order_type is OrderType.MARKET and best is None:
            if spec.instrument_id in self.bar_driven:  # bars only: fill at the next bar's open
                self.at_next_open[spec.order_id] = Resting(spec, f"{self.name}-{spec.order_id}", ZERO, None)
                return [self._report(spec, ExecType.NEW, S.NEW, ts, leaves_qty=spec.quantity, cum_qty=ZERO)]
            return [
                self._report(spec, ExecType.REJECTED, S.REJECTED, ts, reason="no market to trade against")
            ]
        marketable = best is not None and _marketable(spec.side, limit, best)
        if spec.post_only and marketable:
            return [
                self._report(
                    spec, ExecType.REJECTED, S.REJECTED, ts, reason="post-only order would take liquidity"
                )
            ]
        expire = spec.expire_time_ns if spec.time_in_force is TimeInForce.GTD else None
        if spec.time_in_force is TimeInForce.DAY:
            expire = next_utc_midnight(ts_request)
        resting = Resting(spec, f"{self.name}-{spec.order_id}", ZERO, expire)
        out = [self._report(spec, ExecType.NEW, S.NEW, ts, leaves_qty=spec.quantity, cum_qty=ZERO)]
        takeable = [(p, s) for p, s in book.levels(opposite) if _marketable(spec.side, limit, p)]
        if spec.time_in_force is TimeInForce.FOK and sum((s for _, s in takeable), ZERO) < spec.quantity:
            return [
                *out,
                self._report(spec, ExecType.CANCELED, S.CANCELED, ts, reason="FOK: not fillable in full"),
            ]
        for price, size in takeable:
            qty = min(size, resting.leaves)
            if qty <= ZERO:
                break
            book.take(opposite, price, qty)
            fill_px = self.slippage.price(inst, spec.side, price) if limit is None else price
            out.append(self._fill(resting, qty, fill_px, LiquiditySide.TAKER, ts))
        if resting.leaves > ZERO:
            if limit is None or spec.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                reason = "IOC remainder" if limit is not None else "no more liquidity for the market order"
                out.append(self._report(spec, ExecType.CANCELED, S.CANCELED, ts, reason=reason))
            else:
                resting.queue_ahead = book.side(spec.side).get(limit, ZERO)
                self.resting[spec.order_id] = resting
        return out

    def _cancel(self, req: VenueCancelOrder) -> list[ExecutionReport]:
        ts = req.ts + self.latency.delay_ns(req.order_id, "cancel")
        r = self.resting.pop(req.order_id, None) or self.at_next_open.pop(req.order_id, None)
        if r is None:
            return [
                ExecutionReport(
                    self.name,
                    ExecType.CANCEL_REJECTED,
                    req.order_id,
                    req.account_id,
                    req.instrument_id,
                    S.CANCELED,
                    ts,
                    ts,
                    req.venue_order_id,
                    reason="order is not open",
                )
            ]
        return [self._report(r.spec, ExecType.CANCELED, S.CANCELED, ts, cum_qty=r.filled, leaves_qty=ZERO)]

    def _amend(self, req: VenueAmendOrder) -> list[ExecutionReport]:
        ts = req.ts + self.latency.delay_ns(req.order_id, "amend")
        r = self.resting.get(req.order_id)
        if r is None or (req.quantity is not None and req.quantity <= r.filled):
            return [
                ExecutionReport(
                    self.name,
                    ExecType.REPLACE_REJECTED,
                    req.order_id,
                    req.account_id,
                    req.instrument_id,
                    S.CANCELED if r is None else S.PARTIALLY_FILLED,
                    ts,
                    ts,
                    req.venue_order_id,
                    reason="order is not open" if r is None else "below filled",
                )
            ]
        qty = req.quantity if req.quantity is not None else r.spec.quantity
        price = req.price if req.price is not None else r.spec.price
        loses_priority = price != r.spec.price or qty > r.spec.quantity
        r.spec = dataclasses.replace(r.spec, quantity=qty, price=price)
        if loses_priority and price is not None:
            r.queue_ahead = self.books.get(r.spec.instrument_id, Book()).side(r.spec.side).get(price, ZERO)
        out = [
            self._report(
                r.spec,
                ExecType.REPLACED,
                S.REPLACED,
                ts,
                quantity=qty,
                price=price,
                cum_qty=r.filled,
                leaves_qty=r.leaves,
            )
        ]
        return out + self._crossed(r.spec.instrument_id, ts)

    # -- market ----------------------------------------------------------------------------------
    def _on_instrument(self, instrument_id: str) -> list[Resting]:
        return [r for r in self.resting.values() if r.spec.instrument_id == instrument_id]

    def _done(self, r: Resting) -> None:
        if r.leaves <= ZERO:
            self.resting.pop(r.spec.order_id, None)

    def _crossed(self, instrument_id: str, ts: int) -> list[ExecutionReport]:
        """Resting orders the book moved through fill at their limit, as makers."""
        out: list[ExecutionReport] = []
        book = self.books.get(instrument_id)
        if book is None:
            return out
        for r in self._on_instrument(instrument_id):
            opposite = r.spec.side.opposite
            for price, size in book.levels(opposite):
                if r.leaves <= ZERO or not _marketable(r.spec.side, r.spec.price, price):
                    break
                qty = min(size, r.leaves)
                book.take(opposite, price, qty)
                assert r.spec.price is not None  # nosec B101 # typing; resting orders are limits
                out.append(
                    self._fill(
                        r,
                        qty,
                        r.spec.price,
                        LiquiditySide.MAKER,
                        ts + self.latency.delay_ns(r.spec.order_id, f"fill{r.fills}"),
                    )
                )
            self._done(r)
        return out

    def _traded(self, instrument_id: str, price: Decimal, size: Decimal, ts: int) -> list[ExecutionReport]:
        """A print at `price`: queues at that price shrink, orders it traded through fill."""
        out: list[ExecutionReport] = []
        for r in self._on_instrument(instrument_id):
            limit = r.spec.price
            assert limit is not None  # nosec B101 # typing; resting orders are limits
            if not _marketable(r.spec.side.opposite, price, limit):  # print not at or through our price
                continue
            available = size
            if price == limit:
                eaten = min(r.queue_ahead, available)
                r.queue_ahead -= eaten
                available -= eaten
            qty = min(available, r.leaves)
            if qty > ZERO:
                out.append(
                    self._fill(
                        r,
                        qty,
                        limit,
                        LiquiditySide.MAKER,
                        ts + self.latency.delay_ns(r.spec.order_id, f"fill{r.fills}"),
                    )
                )
            self._done(r)
        return out

    def _expire(self, instrument_id: str, ts: int) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for r in self._on_instrument(instrument_id):
            if r.expire_ns is not None and r.expire_ns <= ts:
                del self.resting[r.spec.order_id]
                out.append(
                    self._report(r.spec, ExecType.EXPIRED, S.EXPIRED, ts, cum_qty=r.filled, leaves_qty=ZERO)
                )
        return out
