"""The portfolio decider: fills and marks become position, balance, PnL and execution events.

Balances are per account and asset, split into free and locked (what open orders hold
back). Equity, per account and currency, is that currency's cash plus the market value of
the positions quoted in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from meltica.domain.amounts import PRECISION, amount_problem
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, QuoteTick, TradeTick, mark_price
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAcknowledged,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
    OrderSubmitted,
    OrderTriggered,
)
from meltica.domain.portfolio.analytics import ExecutionAnalytics, slippage_bps
from meltica.domain.portfolio.events import (
    AdjustBalance,
    BalanceChanged,
    BalanceDiscrepancy,
    ExecutionAnalyzed,
    PnLMarked,
    PortfolioEvent,
    PositionChanged,
    VenueBalanceReported,
)
from meltica.domain.portfolio.positions import Position, after_fill
from meltica.domain.reservations import reservation
from meltica.domain.routing import routed
from meltica.domain.values import ZERO, OrderSide

Event = PortfolioEvent
PortfolioInput = AdjustBalance | VenueBalanceReported | OrderEvent | QuoteTick | TradeTick | Bar | Instrument
"""What the portfolio decides on and learns from (its own events it only learns from)."""


@dataclass(slots=True)
class Balance:
    total: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def free(self) -> Decimal:
        return self.total - self.locked


@dataclass(slots=True)
class Lock:
    """What an open order holds back: `amount` of `asset` for `quantity`, released as it fills."""

    account_id: str
    asset: str
    amount: Decimal
    quantity: Decimal
    leaves: Decimal

    @property
    def held(self) -> Decimal:
        return self.amount * self.leaves / self.quantity


@dataclass(slots=True)
class PortfolioState:
    instruments: dict[str, Instrument] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    balances: dict[tuple[str, str], Balance] = field(default_factory=dict)
    locks: dict[str, Lock] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    analytics: dict[str, ExecutionAnalytics] = field(default_factory=dict)
    # With an interval, an instrument's positions are marked at most once per interval of event
    # time (and only when the price moved since its last published mark); 0 marks every move.
    mark_interval_ns: int = 0
    published_marks: dict[str, tuple[int, Decimal]] = field(default_factory=dict)

    def balance(self, account_id: str, asset: str) -> Balance:
        return self.balances.get((account_id, asset)) or Balance()

    def position(self, account_id: str, instrument_id: str) -> Position:
        found = self.positions.get((account_id, instrument_id))
        if found is not None:
            return found
        inst = self.instruments.get(instrument_id)
        currency = inst.settlement_currency if inst is not None else ""
        multiplier = inst.multiplier if inst is not None else Decimal(1)
        return Position(
            account_id, instrument_id, currency, multiplier, mark_px=self.marks.get(instrument_id)
        )

    def equity(self, account_id: str, currency: str) -> Decimal:
        cash = self.balance(account_id, currency).total
        return cash + sum(
            (
                p.market_value()
                for (a, _), p in self.positions.items()
                if a == account_id and p.currency == currency
            ),
            ZERO,
        )


def _balance_event(
    state: PortfolioState,
    account_id: str,
    asset: str,
    delta: Decimal,
    lock_delta: Decimal,
    reason: str,
    ts: int,
) -> BalanceChanged:
    b = state.balance(account_id, asset)
    total, locked = b.total + delta, b.locked + lock_delta
    return BalanceChanged(account_id, asset, total, total - locked, locked, delta, reason, ts)


def _adjustment_problem(state: PortfolioState, inp: AdjustBalance) -> str | None:
    """Why `inp` cannot be applied exactly (None when it can): the delta or the new total is out of
    range, or the total would need more digits than arithmetic keeps (it would be rounded)."""
    problem = amount_problem(inp.delta)
    if problem:
        return problem
    with localcontext() as exact:  # wide enough that the sum of two amounts is never rounded
        exact.prec = 3 * PRECISION
        total = state.balance(inp.account_id, inp.asset).total + inp.delta
    problem = amount_problem(total)
    return None if problem is None else f"the new balance cannot be held exactly: {problem}"


def decide(state: PortfolioState, inp: PortfolioInput) -> list[Event]:
    """Portfolio events that follow from `inp`. Pure."""
    decider = _DECIDE.get(type(inp))
    if decider is None or _mirrored(inp):
        return []
    return decider(state, inp)


_ORDER_FACTS = (
    OrderAcknowledged,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
    OrderSubmitted,
    OrderTriggered,
)


def _mirrored(e: object) -> bool:
    """An event of a routed order: its children's own events hold and move the money."""
    if isinstance(e, OrderAccepted):
        return routed(e.order.instrument_id)
    return isinstance(e, _ORDER_FACTS) and routed(e.instrument_id)


def _on_adjust(state: PortfolioState, inp: AdjustBalance) -> list[Event]:
    problem = _adjustment_problem(state, inp)
    if problem:  # the runtime dead-letters the command with this reason; the balance stays
        raise ValueError(f"balance adjustment of {inp.account_id} {inp.asset} refused: {problem}")
    return [_balance_event(state, inp.account_id, inp.asset, inp.delta, ZERO, inp.reason, inp.ts)]


def _on_venue_balance(state: PortfolioState, inp: VenueBalanceReported) -> list[Event]:
    """A live venue's balance that differs from ours is reported (the portfolio keeps its own)."""
    ours = state.balance(inp.account_id, inp.asset).total
    if ours == inp.total:
        return []
    return [
        BalanceDiscrepancy(inp.account_id, inp.venue, inp.asset, ours, inp.total, inp.total - ours, inp.ts)
    ]


def _on_accepted(state: PortfolioState, inp: OrderAccepted) -> list[Event]:
    lock = _lock_for(state, inp)
    if lock is None:
        return []
    return [_balance_event(state, lock.account_id, lock.asset, ZERO, lock.amount, "reserve", inp.ts)]


def _on_replaced(state: PortfolioState, inp: OrderReplaced) -> list[Event]:
    lock = state.locks.get(inp.order_id)
    moved = None if lock is None else _replaced_lock(state, lock, inp)
    if lock is None or moved is None or moved.held == lock.held:
        return []
    delta = moved.held - lock.held
    why = "reserve" if delta > ZERO else "release"
    return [_balance_event(state, lock.account_id, lock.asset, ZERO, delta, why, inp.ts)]


def _on_ended(state: PortfolioState, inp: OrderCanceled | OrderExpired | OrderRejected) -> list[Event]:
    lock = state.locks.get(inp.order_id)
    if lock is None or lock.held == ZERO:
        return []
    return [_balance_event(state, lock.account_id, lock.asset, ZERO, -lock.held, "release", inp.ts)]


def _lock_for(state: PortfolioState, e: OrderAccepted) -> Lock | None:
    spec = e.order
    inst = state.instruments.get(spec.instrument_id)
    price = (
        spec.price if spec.price is not None else spec.trigger_price or state.marks.get(spec.instrument_id)
    )
    if inst is None or price is None:
        return None
    asset, amount = reservation(spec.side, spec.quantity, price, inst)
    return Lock(spec.account_id, asset, amount, spec.quantity, spec.quantity)


def _replaced_lock(state: PortfolioState, lock: Lock, e: OrderReplaced) -> Lock | None:
    """The lock of an order amended to `e`'s terms (a price-less amend keeps the unit price)."""
    filled = lock.quantity - lock.leaves
    if e.quantity <= filled:
        return None
    price = e.price if e.price is not None else e.trigger_price
    inst = state.instruments.get(e.instrument_id)
    if price is None or inst is None:
        amount = lock.amount * e.quantity / lock.quantity
    else:
        side = OrderSide.SELL if inst.base_currency == lock.asset else OrderSide.BUY
        amount = reservation(side, e.quantity, price, inst)[1]
    return Lock(lock.account_id, lock.asset, amount, e.quantity, e.quantity - filled)


def _on_fill(state: PortfolioState, e: OrderFilled | OrderPartiallyFilled) -> list[Event]:
    fill, ts = e.fill, e.ts
    inst = state.instruments.get(e.instrument_id)
    pos = state.position(e.account_id, e.instrument_id)
    lots, realized = after_fill(pos.lots, fill.last_qty * fill.side.sign, fill.last_px, pos.multiplier)
    fees = pos.fees + (fill.fee if fill.fee_currency == pos.currency else ZERO)
    mark = state.marks.get(e.instrument_id, fill.last_px)
    moved = Position(
        pos.account_id,
        pos.instrument_id,
        pos.currency,
        pos.multiplier,
        lots,
        pos.realized_pnl + realized,
        fees,
        mark,
    )
    out: list[Event] = [
        PositionChanged(
            e.account_id,
            e.instrument_id,
            moved.side,
            moved.quantity,
            moved.avg_px,
            moved.realized_pnl,
            moved.unrealized_pnl,
            fees,
            pos.currency,
            ts,
            mark,
            fill.trade_id,
            lots,
        )
    ]
    # cash moves: the settlement currency pays or receives the notional, a spot base asset moves too
    lock = state.locks.get(e.order_id)
    release = ZERO
    if lock is not None:
        release = lock.held - lock.amount * e.leaves_qty / lock.quantity
    changes: dict[str, tuple[Decimal, Decimal]] = {}

    def add(asset: str, delta: Decimal, lock_delta: Decimal = ZERO) -> None:
        d, ld = changes.get(asset, (ZERO, ZERO))
        changes[asset] = (d + delta, ld + lock_delta)

    notional = fill.last_qty * fill.last_px * pos.multiplier
    add(pos.currency, -notional * fill.side.sign)
    if inst is not None and inst.base_currency is not None:
        add(inst.base_currency, fill.last_qty * fill.side.sign)
    if fill.fee:
        add(fill.fee_currency, -fill.fee)
    if lock is not None and release:
        add(lock.asset, ZERO, -release)
    for asset, (delta, lock_delta) in changes.items():
        out.append(_balance_event(state, e.account_id, asset, delta, lock_delta, "fill", ts))
    out.append(_analyzed(state.analytics.get(e.order_id), e))
    return out


def _analyzed(a: ExecutionAnalytics | None, e: OrderFilled | OrderPartiallyFilled) -> ExecutionAnalyzed:
    """How the fill of `e` executed (an order the portfolio did not see accepted: no arrival mid
    and no latencies)."""
    fill = e.fill
    arrival = None if a is None else a.arrival_px
    return ExecutionAnalyzed(
        e.account_id,
        e.instrument_id,
        e.order_id,
        fill.trade_id,
        a.venue if a is not None and a.venue else e.instrument_id.rpartition(".")[2],
        None if a is None else a.strategy_id,
        fill.side,
        arrival,
        fill.last_px,
        fill.last_qty,
        slippage_bps(fill.side, arrival, fill.last_px),
        None if a is None else a.submit_to_ack_ns,
        None if a is None else a.ack_to_fill_ns(e.ts),
        e.ts,
    )


def _on_mark(state: PortfolioState, tick: QuoteTick | TradeTick | Bar) -> list[Event]:
    mark = mark_price(tick)
    if state.mark_interval_ns:
        last = state.published_marks.get(tick.instrument_id)
        if last is not None and (last[1] == mark or tick.ts - last[0] < state.mark_interval_ns):
            return []
    elif state.marks.get(tick.instrument_id) == mark:
        return []
    out: list[Event] = []
    for (account_id, instrument_id), pos in state.positions.items():
        if instrument_id != tick.instrument_id or pos.quantity == ZERO:
            continue
        marked = Position(
            pos.account_id,
            pos.instrument_id,
            pos.currency,
            pos.multiplier,
            pos.lots,
            pos.realized_pnl,
            pos.fees,
            mark,
        )
        equity = state.equity(account_id, pos.currency) - pos.market_value() + marked.market_value()
        out.append(
            PnLMarked(
                account_id,
                marked.realized_pnl,
                marked.unrealized_pnl,
                marked.fees,
                equity,
                pos.currency,
                tick.ts,
                instrument_id,
                mark,
            )
        )
    return out


# What each input type decides (a dict: one lookup per input, as for `evolve`); others decide nothing.
_DECIDE: dict[type, Callable[[PortfolioState, Any], list[Event]]] = {
    AdjustBalance: _on_adjust,
    VenueBalanceReported: _on_venue_balance,
    OrderAccepted: _on_accepted,
    OrderFilled: _on_fill,
    OrderPartiallyFilled: _on_fill,
    OrderReplaced: _on_replaced,
    OrderCanceled: _on_ended,
    OrderExpired: _on_ended,
    OrderRejected: _on_ended,
    QuoteTick: _on_mark,
    TradeTick: _on_mark,
    Bar: _on_mark,
}


# -- evolve -----------------------------------------------------------------------------------
def evolve(state: PortfolioState, event: PortfolioInput | PortfolioEvent) -> PortfolioState:
    """Apply one event or market fact (in place) and return the state."""
    handler = _EVOLVE.get(type(event))
    if handler is not None and not _mirrored(event):
        handler(state, event)
    return state


def _position(state: PortfolioState, e: PositionChanged) -> None:
    pos = state.position(e.account_id, e.instrument_id)
    pos.set_lots(e.lots)
    pos.realized_pnl, pos.fees, pos.mark_px = e.realized_pnl, e.fees, e.last_px
    state.positions[(e.account_id, e.instrument_id)] = pos


def _balance(state: PortfolioState, e: BalanceChanged) -> None:
    state.balances[(e.account_id, e.asset)] = Balance(e.total, e.locked)


def _marked(state: PortfolioState, e: PnLMarked) -> None:
    if e.instrument_id is not None and e.mark_px is not None:
        state.marks[e.instrument_id] = e.mark_px
        state.published_marks[e.instrument_id] = (e.ts, e.mark_px)
        pos = state.positions.get((e.account_id, e.instrument_id))
        if pos is not None:
            pos.mark_px = e.mark_px


def _accepted(state: PortfolioState, e: OrderAccepted) -> None:
    lock = _lock_for(state, e)
    if lock is not None:
        state.locks[e.order.order_id] = lock
    spec = e.order
    state.analytics[spec.order_id] = ExecutionAnalytics(
        spec.order_id,
        spec.side,
        e.ts,
        arrival_px=state.marks.get(spec.instrument_id),
        account_id=spec.account_id,
        instrument_id=spec.instrument_id,
        venue=spec.venue,
        strategy_id=spec.strategy_id,
    )


def _submitted(state: PortfolioState, e: OrderSubmitted) -> None:
    a = state.analytics.get(e.order_id)
    if a is not None and not a.sent:
        a.ts_submitted, a.sent, a.venue = e.ts, True, e.venue or a.venue


def _triggered(state: PortfolioState, e: OrderTriggered) -> None:
    """A stop's arrival is where it triggered (its trigger price), not the market when placed."""
    a = state.analytics.get(e.order_id)
    if a is not None:
        a.arrival_px = e.trigger_price if e.trigger_price is not None else state.marks.get(e.instrument_id)


def _acknowledged(state: PortfolioState, e: OrderAcknowledged) -> None:
    a = state.analytics.get(e.order_id)
    if a is not None and a.ts_acknowledged is None:
        a.ts_acknowledged = e.ts


def _filled(state: PortfolioState, e: OrderFilled | OrderPartiallyFilled) -> None:
    lock = state.locks.get(e.order_id)
    if lock is not None:
        lock.leaves = e.leaves_qty
        if e.leaves_qty == ZERO:
            del state.locks[e.order_id]
    if isinstance(e, OrderFilled):  # its last fill is analyzed: the order's analytics end
        state.analytics.pop(e.order_id, None)


def _replaced(state: PortfolioState, e: OrderReplaced) -> None:
    lock = state.locks.get(e.order_id)
    moved = None if lock is None else _replaced_lock(state, lock, e)
    if moved is not None:
        state.locks[e.order_id] = moved


def _ended(state: PortfolioState, e: OrderCanceled | OrderExpired | OrderRejected) -> None:
    state.locks.pop(e.order_id, None)
    state.analytics.pop(e.order_id, None)


def _instrument(state: PortfolioState, e: Instrument) -> None:
    state.instruments[e.instrument_id] = e


def _tick(state: PortfolioState, e: QuoteTick | TradeTick | Bar) -> None:
    mark = mark_price(e)
    state.marks[e.instrument_id] = mark
    for (_, instrument_id), pos in state.positions.items():
        if instrument_id == e.instrument_id:
            pos.mark_px = mark


# Each handler takes the event type it is filed under (a dict: one lookup per event).
_EVOLVE: dict[type, Callable[[PortfolioState, Any], None]] = {
    PositionChanged: _position,
    BalanceChanged: _balance,
    PnLMarked: _marked,
    OrderAccepted: _accepted,
    OrderSubmitted: _submitted,
    OrderAcknowledged: _acknowledged,
    OrderTriggered: _triggered,
    OrderFilled: _filled,
    OrderPartiallyFilled: _filled,
    OrderReplaced: _replaced,
    OrderCanceled: _ended,
    OrderExpired: _ended,
    OrderRejected: _ended,
    Instrument: _instrument,
    QuoteTick: _tick,
    TradeTick: _tick,
    Bar: _tick,
}
