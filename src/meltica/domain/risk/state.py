"""What the risk decider knows: limits, trading states, accounts and market prices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.orders.model import OrderSpec
from meltica.domain.risk.limits import DEFAULT_LIMITS, RiskLimits
from meltica.domain.values import ZERO, OrderSide, RiskScope, TradingState


@dataclass(frozen=True, slots=True)
class PendingAmend:
    """Terms risk let an amend through with, held until the venue replaces the order or refuses."""

    quantity: Decimal
    price: Decimal
    reserved: Decimal


@dataclass(slots=True)
class OpenOrder:
    """A live order as risk tracks it: remaining quantity and what it holds back. While an amend
    is pending the order may still fill on its old terms or already on its new ones, so it holds
    the larger of the two."""

    instrument_id: str
    side: OrderSide
    quantity: Decimal
    leaves: Decimal
    price: Decimal
    asset: str
    reserved: Decimal
    spec: OrderSpec | None = None  # as accepted, with its current quantity, price and trigger
    pending: PendingAmend | None = None

    @property
    def filled(self) -> Decimal:
        return self.quantity - self.leaves

    @property
    def pending_leaves(self) -> Decimal:
        """What is left to trade on the pending amend's terms."""
        return ZERO if self.pending is None else max(ZERO, self.pending.quantity - self.filled)

    @property
    def held(self) -> Decimal:
        """The part of the reservation still held (proportional to what is left)."""
        own = self.reserved * self.leaves / self.quantity if self.quantity else ZERO
        p = self.pending
        if p is None or not p.quantity:
            return own
        return max(own, p.reserved * self.pending_leaves / p.quantity)

    @property
    def worst_leaves(self) -> Decimal:
        """The most it may still trade: on its terms or on those of a pending amend."""
        return max(self.leaves, self.pending_leaves)

    def value(self, instrument: Instrument) -> Decimal:
        """The larger notional of what is left, on either terms (unsigned)."""
        own = instrument.notional(self.leaves, self.price)
        if self.pending is None:
            return own
        return max(own, instrument.notional(self.pending_leaves, self.pending.price))


# Sums over open orders are kept exactly (no rounding however many orders come and go), so a
# running total always equals the sum of what it holds.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation])
# What one open order adds to its account's totals: the asset it holds and how much of it, its
# (instrument, side) and the most it may still trade.
_Share = tuple[str, Decimal, tuple[str, OrderSide], Decimal]


def _plus(totals: dict[Any, Decimal], key: Any, delta: Decimal) -> None:
    total = totals.get(key)
    if total is not None:
        delta = EXACT.add(total, delta)
    if delta:
        totals[key] = delta
    else:
        totals.pop(key, None)


def _minus(totals: dict[Any, Decimal], key: Any, delta: Decimal) -> None:
    total = totals.get(key, ZERO)
    if total == delta:  # the last order of its kind
        totals.pop(key, None)
    else:
        totals[key] = EXACT.subtract(total, delta)


def _units(o: OpenOrder) -> tuple[str, Decimal, Decimal]:
    """(instrument, gross, net) exposure units of an order: the larger of leaves x price on its
    own terms or on a pending amend's (net: signed by side)."""
    units = EXACT.multiply(o.leaves, o.price)
    if o.pending is not None:
        units = max(units, EXACT.multiply(o.pending_leaves, o.pending.price))
    return o.instrument_id, EXACT.abs(units), units if o.side is OrderSide.BUY else EXACT.minus(units)


@dataclass(slots=True)
class OpenOrderTotals:
    """Running totals over open orders: what they hold per asset and the most they may still
    trade per (instrument, side), with each order's share to take it out again; and, from the
    first time they are asked for, their gross and net exposure units per instrument (quantity x
    price, before the instrument's multiplier)."""

    shares: dict[str, _Share] = field(default_factory=dict)
    held: dict[str, Decimal] = field(default_factory=dict)
    leaves: dict[tuple[str, OrderSide], Decimal] = field(default_factory=dict)
    units: dict[str, tuple[str, Decimal, Decimal]] | None = None  # by order, once exposure is kept
    gross: dict[str, Decimal] = field(default_factory=dict)
    net: dict[str, Decimal] = field(default_factory=dict)

    def count(self, order_id: str, o: OpenOrder) -> None:
        asset, held, key, leaves = o.asset, o.held, (o.instrument_id, o.side), o.worst_leaves
        self.shares[order_id] = (asset, held, key, leaves)
        _plus(self.held, asset, held)
        _plus(self.leaves, key, leaves)
        if self.units is not None:
            self._count_units(order_id, o)

    def _count_units(self, order_id: str, o: OpenOrder) -> None:
        assert self.units is not None  # nosec B101 # typing; callers check
        self.units[order_id] = units = _units(o)
        instrument_id, gross, net = units
        _plus(self.gross, instrument_id, gross)
        _plus(self.net, instrument_id, net)

    def discount(self, order_id: str) -> None:
        found = self.shares.pop(order_id, None)
        if found is None:
            return
        asset, held, key, leaves = found
        _minus(self.held, asset, held)
        _minus(self.leaves, key, leaves)
        if self.units is not None:
            instrument_id, gross, net = self.units.pop(order_id)
            _minus(self.gross, instrument_id, gross)
            _minus(self.net, instrument_id, net)

    def keep_exposure(self, orders: Mapping[str, OpenOrder]) -> None:
        """Start keeping exposure units, from `orders` (those counted so far)."""
        if self.units is None:
            self.units = {}
            for order_id, o in orders.items():
                self._count_units(order_id, o)

    def copy(self) -> OpenOrderTotals:
        return OpenOrderTotals(
            dict(self.shares),
            dict(self.held),
            dict(self.leaves),
            None if self.units is None else dict(self.units),
            dict(self.gross),
            dict(self.net),
        )


class OpenOrders(dict[str, OpenOrder]):
    """An account's open orders by id, with their `OpenOrderTotals` (built when first asked
    for, then kept as orders are added, replaced and removed), so a check reads a total
    instead of scanning the orders. After changing an open order in place, `recount` it."""

    __slots__ = ("_totals",)

    def __init__(self, orders: Mapping[str, OpenOrder] | Iterable[tuple[str, OpenOrder]] = ()) -> None:
        super().__init__(orders)
        self._totals: OpenOrderTotals | None = None

    def _kept(self) -> OpenOrderTotals | None:
        return getattr(self, "_totals", None)  # unset while a copy or an unpickling fills it

    def totals(self) -> OpenOrderTotals:
        totals = self._kept()
        if totals is None:
            totals = self._totals = OpenOrderTotals()
            for order_id, o in self.items():
                totals.count(order_id, o)
        return totals

    def __setitem__(self, order_id: str, o: OpenOrder) -> None:
        super().__setitem__(order_id, o)
        totals = self._kept()
        if totals is not None:
            totals.discount(order_id)
            totals.count(order_id, o)

    def __delitem__(self, order_id: str) -> None:
        super().__delitem__(order_id)
        totals = self._kept()
        if totals is not None:
            totals.discount(order_id)

    def pop(self, order_id: str, *default: Any) -> Any:
        totals = self._kept()
        if totals is not None:
            totals.discount(order_id)
        return super().pop(order_id, *default)

    def popitem(self) -> tuple[str, OpenOrder]:
        order_id, o = super().popitem()
        totals = self._kept()
        if totals is not None:
            totals.discount(order_id)
        return order_id, o

    def clear(self) -> None:
        super().clear()
        self._totals = None

    def update(self, *args: Any, **kwargs: OpenOrder) -> None:
        for order_id, o in dict(*args, **kwargs).items():
            self[order_id] = o

    def setdefault(self, order_id: str, default: Any = None) -> Any:
        if order_id not in self:
            self[order_id] = default
        return self[order_id]

    def __ior__(self, other: Any) -> OpenOrders:  # type: ignore[override,misc]
        self.update(other)
        return self

    def recount(self, order_id: str) -> None:
        """Count an open order again after it changed in place (fill, amend, replace)."""
        totals = self._kept()
        o = self.get(order_id)
        if totals is not None:
            totals.discount(order_id)
            if o is not None:
                totals.count(order_id, o)

    def copy(self) -> OpenOrders:
        """A shallow copy (the same orders) with totals of its own."""
        copy = OpenOrders(self)
        totals = self._kept()
        if totals is not None:
            copy._totals = totals.copy()
        return copy

    __copy__ = copy

    def without(self, order_id: str) -> OpenOrders:
        """A copy without one order (and its share of the totals)."""
        copy = self.copy()
        copy.pop(order_id, None)
        return copy

    def held(self, asset: str) -> Decimal:
        """What the orders hold back of `asset`."""
        return self.totals().held.get(asset, ZERO)

    def leaves(self, instrument_id: str, side: OrderSide) -> Decimal:
        """The most the orders on this side of the instrument may still trade."""
        return self.totals().leaves.get((instrument_id, side), ZERO)

    def exposure(self) -> dict[str, tuple[Decimal, Decimal]]:
        """(gross, net) exposure units per instrument: quantity x price, before the multiplier."""
        totals = self.totals()
        totals.keep_exposure(self)
        net = totals.net
        return {i: (g, net.get(i, ZERO)) for i, g in totals.gross.items()}


@dataclass(slots=True)
class AccountRisk:
    account_id: str
    positions: dict[str, Decimal] = field(default_factory=dict)
    open_orders: dict[str, OpenOrder] = field(default_factory=OpenOrders)
    balances: dict[str, Decimal] = field(default_factory=dict)
    client_order_ids: set[str] = field(default_factory=set)
    tokens: Decimal | None = None
    tokens_ts: int = 0
    breaches: tuple[int, ...] = ()
    routed: set[str] = field(default_factory=set)  # routed (SOR) orders: their children's parents

    def orders(self) -> OpenOrders:
        """The open orders with their totals (a plain dict, as an older snapshot or a caller
        may have left, becomes one)."""
        found = self.open_orders
        if type(found) is not OpenOrders:
            found = self.open_orders = OpenOrders(found)
        return found

    def reserved(self, asset: str) -> Decimal:
        return self.orders().held(asset)

    def available(self, asset: str) -> Decimal:
        return self.balances.get(asset, ZERO) - self.reserved(asset)


@dataclass(slots=True)
class RiskState:
    """Everything pre-trade risk decides on; built only by `evolve`."""

    defaults: RiskLimits = DEFAULT_LIMITS
    require_balance: bool = True
    limits: dict[tuple[RiskScope, str], RiskLimits] = field(default_factory=dict)
    portfolios: dict[str, tuple[str, ...]] = field(default_factory=dict)
    trading: dict[tuple[RiskScope, str], TradingState] = field(default_factory=dict)
    kill_switches: dict[tuple[RiskScope, str], str] = field(default_factory=dict)
    accounts: dict[str, AccountRisk] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    known_orders: set[str] = field(default_factory=set)
    portfolio_by_account: dict[str, str] = field(default_factory=dict)
    # effective limits by (account, instrument), cleared when limits change; snapshots leave it out
    limits_cache: dict[tuple[str, str], RiskLimits] = field(default_factory=dict, compare=False)

    def account(self, account_id: str) -> AccountRisk:
        found = self.accounts.get(account_id)
        return found if found is not None else AccountRisk(account_id)

    def portfolio_of(self, account_id: str) -> str | None:
        return self.portfolio_by_account.get(account_id)

    def effective_limits(self, account_id: str, instrument_id: str) -> RiskLimits:
        """Instrument over account over portfolio over global limits, over the defaults."""
        cached = self.limits_cache.get((account_id, instrument_id))
        if cached is not None:
            return cached
        chain = [(RiskScope.INSTRUMENT, instrument_id), (RiskScope.ACCOUNT, account_id)]
        portfolio = self.portfolio_of(account_id)
        if portfolio is not None:
            chain.append((RiskScope.PORTFOLIO, portfolio))
        chain.append((RiskScope.GLOBAL, ""))
        result = self.defaults
        for key in reversed(chain):
            limits = self.limits.get(key)
            if limits is not None:
                result = limits.over(result)
        self.limits_cache[(account_id, instrument_id)] = result
        return result

    def scopes_of(self, account_id: str, instrument_id: str) -> list[tuple[RiskScope, str]]:
        scopes = [
            (RiskScope.GLOBAL, ""),
            (RiskScope.ACCOUNT, account_id),
            (RiskScope.INSTRUMENT, instrument_id),
        ]
        portfolio = self.portfolio_of(account_id)
        if portfolio is not None:
            scopes.append((RiskScope.PORTFOLIO, portfolio))
        return scopes
