"""The strategy API: callbacks in, commands out through a context. Same code live and in backtests."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import ZERO, OrderSide, OrderType, TimeInForce


@dataclass
class StrategyContext:
    """What a strategy may do: submit and cancel orders of its account. Ids are deterministic."""

    strategy_id: str
    account_id: str
    now_ns: int = 0
    commands: list[Any] = field(default_factory=list)
    _next: int = 0

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
        order_id = f"{self.strategy_id}-{self._next}"
        spec = OrderSpec(
            order_id=order_id,
            client_order_id=order_id,
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
        return order_id

    def cancel(self, order_id: str, instrument_id: str) -> None:
        self.commands.append(CancelOrder(order_id, self.account_id, instrument_id, self.now_ns))


class Strategy:
    """Override the callbacks you need."""

    strategy_id = "strategy"
    account_id = "ACC-1"
    position = ZERO  # the position the strategy has asked for (see `move_to`)

    def move_to(self, ctx: StrategyContext, instrument_id: str, target: Decimal) -> None:
        """Market orders that take the position to `target`; crossing zero closes first."""
        current = self.position
        if target == current:
            return
        if current != ZERO and (target == ZERO or (target > ZERO) != (current > ZERO)):
            side = OrderSide.SELL if current > ZERO else OrderSide.BUY
            ctx.submit(instrument_id, side, abs(current), order_type=OrderType.MARKET)
            current = ZERO
        if target != current:
            side = OrderSide.BUY if target > current else OrderSide.SELL
            ctx.submit(instrument_id, side, abs(target - current), order_type=OrderType.MARKET)
        self.position = target

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        """A new top of book."""

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        """A print."""

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        """A closed bar."""

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        """An event of one of this strategy's orders."""
