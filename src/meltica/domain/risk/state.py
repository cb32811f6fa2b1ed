"""What the risk decider knows: limits, trading states, accounts and market prices."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
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

    def __setstate__(self, saved: Any) -> None:
        """Unpickle (a snapshot), giving fields added since it was taken their defaults."""
        values = saved[1] if isinstance(saved, tuple) else saved
        for name in OpenOrder.__slots__:
            setattr(self, name, values[name] if name in values else _OPEN_DEFAULTS[name])

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


_OPEN_DEFAULTS: dict[str, Any] = {"spec": None, "pending": None}


@dataclass(slots=True)
class AccountRisk:
    account_id: str
    positions: dict[str, Decimal] = field(default_factory=dict)
    open_orders: dict[str, OpenOrder] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)
    client_order_ids: set[str] = field(default_factory=set)
    tokens: Decimal | None = None
    tokens_ts: int = 0
    breaches: tuple[int, ...] = ()

    def reserved(self, asset: str) -> Decimal:
        return sum((o.held for o in self.open_orders.values() if o.asset == asset), ZERO)

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
