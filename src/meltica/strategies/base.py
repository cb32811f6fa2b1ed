"""The strategy API: callbacks in, commands out through a context that also shows the account (held
positions, balances, equity, open orders). Same code live and in backtests."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from decimal import Decimal
from typing import Any

from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.orders.events import OrderAmendRejected, OrderCancelRejected, OrderDenied, OrderRejected
from meltica.domain.orders.model import Order, OrderSpec
from meltica.domain.portfolio.decider import Balance, PortfolioState
from meltica.domain.portfolio.positions import Position
from meltica.domain.values import ZERO, OrderSide, OrderType, TimeInForce
from meltica.events.envelope import order_id_for
from meltica.strategies.account import AccountView


@dataclass
class StrategyContext:
    """What a strategy may do: submit and cancel orders of its account (ids are deterministic); and
    what it may know: the account as the portfolio holds it (`position`, `balance`, `equity`, from
    the portfolio's events, the same the read models are built from) and its own `open_orders`.
    Within a callback the view is as of the events delivered before it; between two inputs it
    equals the read models."""

    strategy_id: str
    account_id: str
    now_ns: int = 0
    commands: list[Any] = field(default_factory=list)
    _next: int = 0
    portfolio: InitVar[PortfolioState | None] = None  # the host's, shared by its strategies
    account: AccountView = field(init=False)

    def __post_init__(self, portfolio: PortfolioState | None) -> None:
        self.account = AccountView(self.account_id, portfolio or PortfolioState())

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A context pickled before it had an account view (a snapshot) gets an empty one."""
        self.__dict__.update(state)
        if "account" not in state:
            self.account = AccountView(self.account_id)

    def position(self, instrument_id: str) -> Position:
        """The held position: `quantity` (signed), `avg_px`, `realized_pnl`, `unrealized_pnl`
        (at the last published mark), `fees`, `side`; flat before the first fill."""
        return self.account.position(instrument_id)

    @property
    def positions(self) -> dict[str, Position]:
        return self.account.positions

    def balance(self, asset: str) -> Balance:
        """`total`, `free` and `locked` of `asset` (zero if the account never held it)."""
        return self.account.balance(asset)

    @property
    def balances(self) -> dict[str, Balance]:
        return self.account.balances

    def equity(self, currency: str) -> Decimal:
        """Cash in `currency` plus the market value of the positions quoted in it."""
        return self.account.equity(currency)

    @property
    def open_orders(self) -> dict[str, Order]:
        """This strategy's open orders by id: `status`, `quantity`, `filled_qty`, `leaves_qty`,
        `price`, `spec` (the order as sent); PENDING_NEW until risk answers."""
        return self.account.open_orders

    def exposure(self, instrument_id: str) -> Decimal:
        """This strategy's own fills (net, signed) plus its open orders' leaves: what `move_to`
        starts from. `position` is the account's, this is the strategy's (the same when it trades
        alone on its account)."""
        return self.account.exposure(instrument_id)

    def submit(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: Decimal,
        *,
        order_type: OrderType = OrderType.LIMIT,
        price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        **extra: Any,
    ) -> str:
        self._next += 1
        client_order_id = f"{self.strategy_id}-{self._next}"
        order_id = order_id_for(self.account_id, client_order_id)
        spec = OrderSpec(
            order_id=order_id,
            client_order_id=client_order_id,
            account_id=self.account_id,
            instrument_id=instrument_id,
            side=side,
            order_type=order_type,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force,
            strategy_id=self.strategy_id,
            **extra,
        )
        self.commands.append(SubmitOrder(spec, self.now_ns))
        self.account.sent(spec, self.now_ns)
        return order_id

    def cancel(self, order_id: str, instrument_id: str) -> None:
        self.commands.append(CancelOrder(order_id, self.account_id, instrument_id, self.now_ns))


class Strategy:
    """Override the callbacks you need. Each gets the context (`ctx`): orders go out through it
    and the account is read from it (`ctx.position`, `ctx.balance`, `ctx.equity`,
    `ctx.open_orders`, `ctx.exposure`), updated before the callback from the portfolio's and the
    order's events."""

    strategy_id = "strategy"
    account_id = "ACC-1"

    def move_to(self, ctx: StrategyContext, instrument_id: str, target: Decimal) -> None:
        """Market orders that take this strategy's position to `target`, from what its orders filled
        and what they still have to fill (`ctx.exposure`): an order denied, rejected or canceled
        counts for nothing. Crossing zero closes first."""
        current = ctx.exposure(instrument_id)
        if target == current:
            return
        if current != ZERO and (target == ZERO or (target > ZERO) != (current > ZERO)):
            side = OrderSide.SELL if current > ZERO else OrderSide.BUY
            ctx.submit(instrument_id, side, abs(current), order_type=OrderType.MARKET)
            current = ZERO
        if target != current:
            side = OrderSide.BUY if target > current else OrderSide.SELL
            ctx.submit(instrument_id, side, abs(target - current), order_type=OrderType.MARKET)

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        """A new top of book."""

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        """A print."""

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        """A closed bar."""

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        """An event of one of this strategy's orders (every one, the denials and rejections too)."""

    def on_order_denied(self, ctx: StrategyContext, event: OrderDenied) -> None:
        """Pre-trade risk refused an order: `event.reason` (a `DenyReason`) and `event.message` say
        why. Called after `on_order_event`."""

    def on_order_rejected(
        self, ctx: StrategyContext, event: OrderRejected | OrderCancelRejected | OrderAmendRejected
    ) -> None:
        """The venue or the order state machine refused an order, a cancel or an amend:
        `event.reason` says why. Called after `on_order_event`."""
