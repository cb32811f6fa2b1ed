"""What a strategy knows of its account: held positions, balances and equity (a `PortfolioState`
folded from the portfolio's events with the portfolio's own `evolve`, shared by the strategies of a
host), and its own open orders and fills (folded from its order events with the order state
machine's `evolve`). So the view is the read models', event for event."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meltica.domain.orders import decider as orders
from meltica.domain.orders.events import OrderAccepted, OrderDenied, OrderFilled, OrderPartiallyFilled
from meltica.domain.orders.model import Order, OrderSpec, OrderStatus
from meltica.domain.portfolio.decider import Balance, PortfolioState
from meltica.domain.portfolio.positions import Position
from meltica.domain.values import ZERO


@dataclass(slots=True)
class AccountView:
    """One strategy's view of account `account_id` (positions and balances are the account's,
    shared by every strategy and every manual order on it; open orders and fills are the strategy's
    own). The host folds the portfolio's events into `portfolio` (once for all its strategies) and
    feeds the strategy's orders through `sent` and `learn_order`."""

    account_id: str
    portfolio: PortfolioState = field(default_factory=PortfolioState)
    book: orders.OrderBook = field(default_factory=orders.OrderBook)
    pending: dict[str, Order] = field(default_factory=dict)  # sent, risk has not answered yet
    filled: dict[str, Decimal] = field(default_factory=dict)  # the strategy's own fills, net, by instrument

    # -- reading ----------------------------------------------------------------------------------
    def position(self, instrument_id: str) -> Position:
        """The held position in `instrument_id`: quantity (signed), `avg_px`, `realized_pnl`,
        `unrealized_pnl` (at the last mark the portfolio published), `fees`; flat if none."""
        return self.portfolio.position(self.account_id, instrument_id)

    @property
    def positions(self) -> dict[str, Position]:
        """Every instrument the account has held, by instrument id (flat ones too)."""
        return {i: p for (a, i), p in self.portfolio.positions.items() if a == self.account_id}

    def balance(self, asset: str) -> Balance:
        """`total`, `free` and `locked` (held back by open orders) of `asset`."""
        return self.portfolio.balance(self.account_id, asset)

    @property
    def balances(self) -> dict[str, Balance]:
        return {asset: b for (a, asset), b in self.portfolio.balances.items() if a == self.account_id}

    def equity(self, currency: str) -> Decimal:
        """Cash in `currency` plus the market value of the positions quoted in it."""
        return self.portfolio.equity(self.account_id, currency)

    @property
    def open_orders(self) -> dict[str, Order]:
        """The strategy's orders not yet filled, canceled, denied, rejected or expired, by order id
        (status PENDING_NEW until risk answers)."""
        return {**self.pending, **{o.order_id: o for o in self.book.open_orders()}}

    def exposure(self, instrument_id: str) -> Decimal:
        """The strategy's own position once its orders are done: what its orders have filled (net,
        signed) plus what its open orders still have to fill. Alone on its account, its fills are
        the account's position."""
        working = sum(
            (
                o.leaves_qty * o.spec.side.sign
                for o in self.open_orders.values()
                if o.spec.instrument_id == instrument_id
            ),
            ZERO,
        )
        return self.filled.get(instrument_id, ZERO) + working

    # -- learning ---------------------------------------------------------------------------------
    def sent(self, spec: OrderSpec, ts: int) -> None:
        """An order the strategy has just submitted."""
        self.pending[spec.order_id] = Order(
            spec, OrderStatus.PENDING_NEW, spec.quantity, spec.price, spec.trigger_price, None, ts
        )

    def withdrawn(self, order_id: str) -> None:
        """An order submitted in a callback that failed: it never went out."""
        self.pending.pop(order_id, None)

    def learn_order(self, event: Any) -> None:
        """Fold an event of one of the strategy's orders."""
        order_id = event.order_id
        if isinstance(event, OrderAccepted | OrderDenied):
            self.pending.pop(order_id, None)
        if isinstance(event, OrderFilled | OrderPartiallyFilled):
            fill = event.fill
            self.filled[event.instrument_id] = (
                self.filled.get(event.instrument_id, ZERO) + fill.last_qty * fill.side.sign
            )
        orders.evolve(self.book, event)
        self.book.denied.pop(order_id, None)
        order = self.book.orders.get(order_id)
        if order is not None and order.is_terminal:
            del self.book.orders[order_id]  # the view keeps open orders only
