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

Our own resting orders queue among themselves too: the size ahead of an order counts the shown
part of our orders already resting at its price. An iceberg (`display_quantity`) rests natively
here, one slice at a time: only its slice is shown and queues, prints at its price fill the slice
alone, and once the slice is filled the next one is shown at the back of its price level (behind
every order there, ours included). A print or a book through its price fills it slice after
slice. Reports are of the whole order (cum and leaves quantities); a refresh reports nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, Book, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick
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
class Resting:
    spec: OrderSpec
    venue_order_id: str
    queue_ahead: Decimal
    expire_ns: int | None
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fills: int = 0
    slice_left: Decimal | None = None  # an iceberg at rest: what its shown slice has left

    @property
    def leaves(self) -> Decimal:
        return self.spec.quantity - self.filled

    @property
    def shown(self) -> Decimal:
        """What the venue shows of the order (and what a print at its price can fill)."""
        return self.leaves if self.slice_left is None else min(self.slice_left, self.leaves)


Level = tuple[str, OrderSide, Decimal | None]


def _level(r: Resting) -> Level:
    return r.spec.instrument_id, r.spec.side, r.spec.price


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
        self.resting: dict[str, Resting] = {}  # every resting order, in time priority
        self._index()
        self.bar_driven: set[str] = set()  # instruments known only through bars
        self.tick_driven: set[str] = set()  # instruments with quotes, trades or books: bars add nothing
        self.at_next_open: dict[str, Resting] = {}

    # -- resting orders -------------------------------------------------------------------------
    # `resting` is the state; `_queues` (per price level) and `_instruments` index it in the same
    # time priority, so a submit, cancel or tick touches only its level or instrument.
    def _index(self) -> None:
        self._queues: dict[Level, dict[str, Resting]] = {}
        self._instruments: dict[str, dict[str, Resting]] = {}
        for r in self.resting.values():
            self._queues.setdefault(_level(r), {})[r.spec.order_id] = r
            self._instruments.setdefault(r.spec.instrument_id, {})[r.spec.order_id] = r

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_queues", "_instruments")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._index()  # the indexes are never pickled: rebuilt from `resting`

    def _rest(self, r: Resting) -> None:
        """`r` rests at the back of its price level (in place of any order resting with its id)."""
        order_id = r.spec.order_id
        self._unrest(order_id)
        self.resting[order_id] = r
        self._queues.setdefault(_level(r), {})[order_id] = r
        self._instruments.setdefault(r.spec.instrument_id, {})[order_id] = r

    def _unrest(self, order_id: str) -> Resting | None:
        """The resting order `order_id`, no longer resting (None if it was not)."""
        r = self.resting.pop(order_id, None)
        if r is not None:
            level = _level(r)
            queue = self._queues[level]
            del queue[order_id]
            if not queue:
                del self._queues[level]
            on_instrument = self._instruments[r.spec.instrument_id]
            del on_instrument[order_id]
            if not on_instrument:
                del self._instruments[r.spec.instrument_id]
        return r

    def _withdraw(self, order_id: str) -> Resting | None:
        """The resting order `order_id` taken off the book (ours behind it move up); None if it
        was not resting."""
        r = self.resting.get(order_id)
        if r is not None:
            self._leave_queue(r)
        return self._unrest(order_id)

    # -- inputs -----------------------------------------------------------------------------------
    def on_instrument(self, inst: Instrument) -> None:
        self.instruments[inst.instrument_id] = inst

    down: str | None = None  # why the venue is down (class default: snapshots taken before it)

    def connection(self, up: bool, reason: str, ts: int) -> list[ExecutionReport]:
        """The venue's market-data connection came up or failed. A simulated venue matches against
        that data only, so while it is down it cancels what rests (cancel on disconnect) and
        rejects new orders."""
        if up:
            self.down = None
            return []
        self.down = reason
        out = []
        for order_id in list(self.resting) + list(self.at_next_open):
            r = self._withdraw(order_id) or self.at_next_open.pop(order_id)
            why = f"venue down: {reason}"
            out.append(self._report(r.spec, ExecType.CANCELED, S.CANCELED, ts, cum_qty=r.filled, reason=why))
        return out

    def on_request(self, req: Any) -> list[ExecutionReport]:
        if isinstance(req, VenueSubmitOrder):
            if self.down is not None:
                why = f"venue down: {self.down}"
                return [self._report(req.order, ExecType.REJECTED, S.REJECTED, req.ts, reason=why)]
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
        if isinstance(tick, QuoteTick | OrderBookSnapshot | OrderBookDelta):
            book.apply(tick)
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

    def depth(self, instrument_id: str, side: OrderSide) -> list[tuple[Decimal, Decimal]]:
        """The venue's book of one side as others see it, best first: the market's levels with
        the shown part of our resting orders (an iceberg's slice, never its hidden rest)."""
        levels = dict(self.books.get(instrument_id, Book()).side(side))
        for r in self._on_instrument(instrument_id):
            if r.spec.side is side and r.spec.price is not None:
                levels[r.spec.price] = levels.get(r.spec.price, ZERO) + r.shown
        return sorted(levels.items(), reverse=side is OrderSide.BUY)

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
        if r.slice_left is not None:
            r.slice_left -= qty
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
                if spec.display_quantity is not None:
                    resting.slice_left = min(spec.display_quantity, resting.leaves)
                resting.queue_ahead = self._queue_at(resting)
                self._rest(resting)
        return out

    def _cancel(self, req: VenueCancelOrder) -> list[ExecutionReport]:
        ts = req.ts + self.latency.delay_ns(req.order_id, "cancel")
        r = self._withdraw(req.order_id) or self.at_next_open.pop(req.order_id, None)
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
        if loses_priority:
            self._withdraw(r.spec.order_id)  # before its level changes with its price
        r.spec = dataclasses.replace(r.spec, quantity=qty, price=price)
        if loses_priority:
            if r.slice_left is not None and r.spec.display_quantity is not None:
                r.slice_left = min(r.spec.display_quantity, r.leaves)
            r.queue_ahead = self._queue_at(r)
            self._rest(r)  # at the back
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
        return list(self._instruments.get(instrument_id, {}).values())

    def _done(self, r: Resting) -> None:
        if r.leaves <= ZERO:
            self._unrest(r.spec.order_id)

    def _same_level(self, r: Resting) -> list[Resting]:
        """Our other resting orders at `r`'s instrument, side and price, in queue order."""
        return [o for o in self._queues.get(_level(r), {}).values() if o is not r]

    def _queue_at(self, r: Resting) -> Decimal:
        """The size ahead of `r` joining the back of its price level: the market's size there
        and what our orders resting there show."""
        assert r.spec.price is not None  # nosec B101 # typing; resting orders are limits
        market = self.books.get(r.spec.instrument_id, Book()).side(r.spec.side).get(r.spec.price, ZERO)
        return market + sum((o.shown for o in self._same_level(r)), ZERO)

    def _leave_queue(self, r: Resting) -> None:
        """`r` leaves its place: our orders behind it at its price move up by what it showed."""
        behind = False
        for o in self._queues.get(_level(r), {}).values():
            if o is r:
                behind = True
            elif behind:
                o.queue_ahead = max(ZERO, o.queue_ahead - r.shown)

    def _refresh(self, r: Resting) -> None:
        """An iceberg whose slice is filled shows the next one at the back of its price level."""
        if r.slice_left is None or r.slice_left > ZERO or r.leaves <= ZERO:
            return
        assert r.spec.display_quantity is not None  # nosec B101 # slice_left is set for icebergs only
        r.slice_left = min(r.spec.display_quantity, r.leaves)
        r.queue_ahead = self._queue_at(r)
        self._rest(r)  # at the back

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
                left = size
                while left > ZERO and r.shown > ZERO:  # slice after slice for an iceberg
                    qty = min(left, r.shown)
                    book.take(opposite, price, qty)
                    left -= qty
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
                    self._refresh(r)
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
            through = price != limit
            if not through:
                eaten = min(r.queue_ahead, available)
                r.queue_ahead -= eaten
                available -= eaten
            # at our price the print fills the shown slice; through it, slice after slice
            while available > ZERO and r.shown > ZERO:
                qty = min(available, r.shown)
                available -= qty
                out.append(
                    self._fill(
                        r,
                        qty,
                        limit,
                        LiquiditySide.MAKER,
                        ts + self.latency.delay_ns(r.spec.order_id, f"fill{r.fills}"),
                    )
                )
                self._refresh(r)
                if not through:
                    break
            self._done(r)
        return out

    def _expire(self, instrument_id: str, ts: int) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for r in self._on_instrument(instrument_id):
            if r.expire_ns is not None and r.expire_ns <= ts:
                self._withdraw(r.spec.order_id)
                out.append(
                    self._report(r.spec, ExecType.EXPIRED, S.EXPIRED, ts, cum_qty=r.filled, leaves_qty=ZERO)
                )
        return out
