"""Pre-trade checks: each returns the reason to deny an order, or None. Order matters:
the first reason wins. Adding a check is one function and one line in `CHECKS`.

An amend is judged as the order it would make: order-level checks (precision, size, notional,
price band) on the amended quantity, account-level ones (position, exposure, balance) on what
it leaves to trade, with the order's own hold released (`Proposal.filled`, `Proposal.account`).
Open orders with a pending amend count on whichever of their terms weighs more."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from meltica.domain.instruments import Instrument
from meltica.domain.orders.model import OrderSpec
from meltica.domain.reservations import reservation
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.risk.state import AccountRisk, RiskState
from meltica.domain.values import (
    NS_PER_SECOND,
    ZERO,
    OrderType,
    RiskScope,
    TradingState,
    TrailingOffsetType,
    is_multiple,
)


class DenyReason(StrEnum):
    INVALID_ORDER = "invalid_order"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    KILL_SWITCH = "kill_switch"
    TRADING_HALTED = "trading_halted"
    REDUCING_ONLY = "reducing_only"
    THROTTLED = "throttled"
    INSTRUMENT_NOT_ALLOWED = "instrument_not_allowed"
    ORDER_TYPE_NOT_ALLOWED = "order_type_not_allowed"
    PRICE_PRECISION = "price_precision"
    QUANTITY_PRECISION = "quantity_precision"
    QUANTITY_BELOW_MIN = "quantity_below_min"
    QUANTITY_ABOVE_MAX = "quantity_above_max"
    NO_REFERENCE_PRICE = "no_reference_price"
    NOTIONAL_BELOW_MIN = "notional_below_min"
    PRICE_BAND = "price_band"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    REDUCE_ONLY = "reduce_only"
    MAX_POSITION = "max_position"
    MAX_GROSS_EXPOSURE = "max_gross_exposure"
    MAX_NET_EXPOSURE = "max_net_exposure"
    PORTFOLIO_GROSS_EXPOSURE = "portfolio_gross_exposure"
    PORTFOLIO_NET_EXPOSURE = "portfolio_net_exposure"
    MAX_OPEN_ORDERS = "max_open_orders"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    LIST_DENIED = "list_denied"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    ACTIVATION_REACHED = "activation_price_reached"


# Order types that trade at market once live (their hold is widened by the price band).
AT_MARKET = frozenset(t for t in OrderType if t.when_triggered is OrderType.MARKET)

# Denials that count towards the circuit breaker: not those the halt itself causes.
NOT_BREACHES = frozenset(
    {
        DenyReason.KILL_SWITCH,
        DenyReason.TRADING_HALTED,
        DenyReason.REDUCING_ONLY,
        DenyReason.LIST_DENIED,
        DenyReason.DUPLICATE_ORDER_ID,
    }
)


@dataclass(frozen=True, slots=True)
class Proposal:
    """An order meeting the risk state."""

    state: RiskState
    account: AccountRisk
    order: OrderSpec
    instrument: Instrument | None
    limits: RiskLimits
    ts: int
    filled: Decimal = ZERO  # an amend: what the order already traded

    @property
    def live_qty(self) -> Decimal:
        """What the order leaves to trade (its quantity, for a new order)."""
        return self.order.quantity - self.filled

    @property
    def last(self) -> Decimal | None:
        return self.state.prices.get(self.order.instrument_id)

    @property
    def ref_price(self) -> Decimal | None:
        """Limit price, else trigger price, else the last market price."""
        o = self.order
        return (
            o.price if o.price is not None else o.trigger_price if o.trigger_price is not None else self.last
        )

    @property
    def signed_qty(self) -> Decimal:
        return self.live_qty * self.order.side.sign

    @property
    def position(self) -> Decimal:
        return self.account.positions.get(self.order.instrument_id, ZERO)

    def notional(self, quantity: Decimal | None = None) -> Decimal:
        """The notional of the order's quantity (or of `quantity`) at the reference price."""
        price = self.ref_price
        assert self.instrument is not None  # nosec B101 # typing; unknown_instrument denies first
        assert price is not None  # nosec B101 # typing; reference_price denies first
        return self.instrument.notional(self.order.quantity if quantity is None else quantity, price)


Check = Callable[[Proposal], DenyReason | None]


def tokens_at(account: AccountRisk, limits: RiskLimits, ts: int) -> Decimal:
    """Throttle tokens available at `ts` (token bucket refilled by event time)."""
    rate, burst = limits.throttle_rate, limits.throttle_burst
    if rate is None or burst is None:
        return Decimal(1)
    if account.tokens is None:
        return Decimal(burst)
    refill = rate * Decimal(max(0, ts - account.tokens_ts)) / NS_PER_SECOND
    return min(Decimal(burst), account.tokens + refill)


def reduces(p: Proposal) -> bool:
    """The order only reduces the position, counting other open reducing orders."""
    pos = p.position
    if pos == ZERO or (pos > ZERO) == (p.signed_qty > ZERO):
        return False
    pending = p.account.orders().leaves(p.order.instrument_id, p.order.side)
    return p.live_qty + pending <= abs(pos)


def invalid_order(p: Proposal) -> DenyReason | None:
    return DenyReason.INVALID_ORDER if p.order.problems() else None


def unknown_instrument(p: Proposal) -> DenyReason | None:
    return DenyReason.UNKNOWN_INSTRUMENT if p.instrument is None else None


def kill_switch(p: Proposal) -> DenyReason | None:
    if not p.state.kill_switches:
        return None
    scopes = p.state.scopes_of(p.order.account_id, p.order.instrument_id)
    return DenyReason.KILL_SWITCH if any(s in p.state.kill_switches for s in scopes) else None


def trading_state(p: Proposal) -> DenyReason | None:
    if not p.state.trading:
        return None
    states = {p.state.trading.get(s) for s in p.state.scopes_of(p.order.account_id, p.order.instrument_id)}
    if TradingState.HALTED in states:
        return DenyReason.TRADING_HALTED
    if TradingState.REDUCING in states and not reduces(p):
        return DenyReason.REDUCING_ONLY
    return None


def throttle(p: Proposal) -> DenyReason | None:
    if p.order.parent_order_id in p.account.routed:
        return None  # a routed order's child: its parent took the token
    return DenyReason.THROTTLED if tokens_at(p.account, p.limits, p.ts) < 1 else None


def instrument_allowed(p: Proposal) -> DenyReason | None:
    allowed = p.limits.allowed_instruments
    return (
        DenyReason.INSTRUMENT_NOT_ALLOWED
        if allowed is not None and p.order.instrument_id not in allowed
        else None
    )


def order_type_allowed(p: Proposal) -> DenyReason | None:
    allowed = p.limits.allowed_order_types
    return (
        DenyReason.ORDER_TYPE_NOT_ALLOWED
        if allowed is not None and p.order.order_type not in allowed
        else None
    )


def precision(p: Proposal) -> DenyReason | None:
    inst, o = p.instrument, p.order
    assert inst is not None  # nosec B101 # typing; unknown_instrument denies first
    tick = inst.price_increment
    for x in (o.price, o.trigger_price, o.activation_price):
        if x is not None and not is_multiple(x, tick):
            return DenyReason.PRICE_PRECISION
    offset = o.trailing_offset
    if (
        offset is not None
        and o.trailing_offset_type is TrailingOffsetType.PRICE
        and o.order_type.is_trailing
        and not is_multiple(offset, tick)
    ):
        return DenyReason.PRICE_PRECISION
    size = inst.size_increment
    if not is_multiple(o.quantity, size) or (
        o.display_quantity is not None and not is_multiple(o.display_quantity, size)
    ):
        return DenyReason.QUANTITY_PRECISION
    return None


def quantity_bounds(p: Proposal) -> DenyReason | None:
    inst, qty = p.instrument, p.order.quantity
    assert inst is not None  # nosec B101 # typing; unknown_instrument denies first
    for low in (inst.min_quantity, p.limits.min_quantity):
        if low is not None and qty < low:
            return DenyReason.QUANTITY_BELOW_MIN
    for high in (inst.max_quantity, p.limits.max_quantity):
        if high is not None and qty > high:
            return DenyReason.QUANTITY_ABOVE_MAX
    return None


def reference_price(p: Proposal) -> DenyReason | None:
    return DenyReason.NO_REFERENCE_PRICE if p.ref_price is None else None


def min_notional(p: Proposal) -> DenyReason | None:
    inst = p.instrument
    assert inst is not None  # nosec B101 # typing; unknown_instrument denies first
    return (
        DenyReason.NOTIONAL_BELOW_MIN
        if inst.min_notional is not None and p.notional() < inst.min_notional
        else None
    )


def price_band(p: Proposal) -> DenyReason | None:
    band, last, o = p.limits.price_band, p.last, p.order
    if band is None or last is None or last <= ZERO:
        return None
    for price in (o.price, o.trigger_price, o.activation_price):
        if price is not None and abs(price - last) > last * band:
            return DenyReason.PRICE_BAND
    return None


def activation_ahead(p: Proposal) -> DenyReason | None:
    """A trailing stop's activation price lies ahead of the market: above it for a sell, below
    it for a buy (one the market has already reached would start trailing at once). Once it
    trails (it has a trigger), an amend of it is not judged again on this."""
    activation, last = p.order.activation_price, p.last
    if activation is None or last is None or p.order.trigger_price is not None:
        return None
    reached = last >= activation if p.order.side.sign < 0 else last <= activation
    return DenyReason.ACTIVATION_REACHED if reached else None


def max_order_notional(p: Proposal) -> DenyReason | None:
    cap = p.limits.max_order_notional
    return DenyReason.MAX_ORDER_NOTIONAL if cap is not None and p.notional() > cap else None


def reduce_only(p: Proposal) -> DenyReason | None:
    return DenyReason.REDUCE_ONLY if p.order.reduce_only and not reduces(p) else None


def max_position(p: Proposal) -> DenyReason | None:
    cap = p.limits.max_position
    if cap is None:
        return None
    same_side = p.account.orders().leaves(p.order.instrument_id, p.order.side)
    projected = p.position + (same_side + p.live_qty) * p.order.side.sign
    return DenyReason.MAX_POSITION if abs(projected) > cap else None


def _exposures(p: Proposal, accounts: list[AccountRisk]) -> tuple[Decimal, Decimal]:
    """(gross, net) exposure of `accounts` with their open orders and this order, at last prices."""
    gross = net = ZERO
    for account in accounts:
        for instrument_id, qty in account.positions.items():
            price = p.state.prices.get(instrument_id)
            inst = p.state.instruments.get(instrument_id)
            if price is None or inst is None:
                continue
            value = inst.notional(qty, price)
            gross, net = gross + abs(value), net + value
        for instrument_id, (units, net_units) in account.orders().exposure().items():
            inst = p.state.instruments.get(instrument_id)
            if inst is None:
                continue
            gross, net = gross + units * inst.multiplier, net + net_units * inst.multiplier
    value = p.notional(p.live_qty) * p.order.side.sign
    return gross + abs(value), abs(net + value)


def account_exposure(p: Proposal) -> DenyReason | None:
    gross_cap, net_cap = p.limits.max_gross_exposure, p.limits.max_net_exposure
    if gross_cap is None and net_cap is None:
        return None
    gross, net = _exposures(p, [p.account])
    if gross_cap is not None and gross > gross_cap:
        return DenyReason.MAX_GROSS_EXPOSURE
    if net_cap is not None and net > net_cap:
        return DenyReason.MAX_NET_EXPOSURE
    return None


def portfolio_exposure(p: Proposal) -> DenyReason | None:
    portfolio = p.state.portfolio_of(p.order.account_id)
    limits = None if portfolio is None else p.state.limits.get((RiskScope.PORTFOLIO, portfolio))
    if portfolio is None or limits is None:
        return None
    members = [
        p.account if a == p.account.account_id else p.state.account(a) for a in p.state.portfolios[portfolio]
    ]
    gross, net = _exposures(p, members)
    if limits.max_gross_exposure is not None and gross > limits.max_gross_exposure:
        return DenyReason.PORTFOLIO_GROSS_EXPOSURE
    if limits.max_net_exposure is not None and net > limits.max_net_exposure:
        return DenyReason.PORTFOLIO_NET_EXPOSURE
    return None


def max_open_orders(p: Proposal) -> DenyReason | None:
    cap = p.limits.max_open_orders
    return DenyReason.MAX_OPEN_ORDERS if cap is not None and len(p.account.open_orders) >= cap else None


def balance(p: Proposal) -> DenyReason | None:
    if not p.state.require_balance:
        return None
    inst, price = p.instrument, p.ref_price
    assert inst is not None  # nosec B101 # typing; unknown_instrument denies first
    assert price is not None  # nosec B101 # typing; reference_price denies first
    band = p.limits.price_band if p.order.order_type in AT_MARKET else None
    asset, amount = reservation(p.order.side, p.live_qty, price, inst, band)
    return DenyReason.INSUFFICIENT_BALANCE if p.account.available(asset) < amount else None


CHECKS: tuple[Check, ...] = (
    invalid_order,
    unknown_instrument,
    kill_switch,
    trading_state,
    throttle,
    instrument_allowed,
    order_type_allowed,
    precision,
    quantity_bounds,
    reference_price,
    min_notional,
    price_band,
    activation_ahead,
    max_order_notional,
    reduce_only,
    max_position,
    account_exposure,
    portfolio_exposure,
    max_open_orders,
    balance,
)


def first_denial(p: Proposal) -> DenyReason | None:
    """Run the checks in order; the first reason wins."""
    for check in CHECKS:
        reason = check(p)
        if reason is not None:
            return reason
    return None
