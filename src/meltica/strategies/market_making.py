"""Market making: a bid and an ask `spread_ticks` around the mid; quotes are replaced when the
mid moves `requote_ticks` or more, and a side stops quoting once the inventory reaches `max_inventory`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meltica.domain.marketdata import QuoteTick
from meltica.domain.orders.events import (
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
)
from meltica.domain.values import ZERO, OrderSide
from meltica.strategies.base import Strategy, StrategyContext


class MarketMaking(Strategy):
    def __init__(
        self,
        instrument_id: str,
        *,
        tick: str,
        spread_ticks: int = 2,
        requote_ticks: int = 2,
        quantity: str = "1000",
        max_inventory: str = "5000",
        strategy_id: str = "market-making",
        account_id: str = "BT",
    ) -> None:
        if Decimal(tick) <= 0 or spread_ticks < 1 or requote_ticks < 1 or Decimal(quantity) <= 0:
            raise ValueError("tick, spread, requote distance and quantity must be positive")
        self.instrument_id, self.tick = instrument_id, Decimal(tick)
        self.spread_ticks, self.requote_ticks = spread_ticks, requote_ticks
        self.quantity, self.max_inventory = Decimal(quantity), Decimal(max_inventory)
        self.strategy_id, self.account_id = strategy_id, account_id
        self.quoted_mid: Decimal | None = None
        self.working: dict[str, OrderSide] = {}
        self.inventory = ZERO

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        if quote.instrument_id != self.instrument_id:
            return
        mid = (quote.mid / self.tick).to_integral_value() * self.tick
        if self.quoted_mid is not None and abs(mid - self.quoted_mid) < self.tick * self.requote_ticks:
            return
        for order_id in list(self.working):
            ctx.cancel(order_id, self.instrument_id)
        self.quoted_mid = mid
        offset = self.tick * self.spread_ticks
        if self.inventory < self.max_inventory:
            self.working[ctx.submit(self.instrument_id, OrderSide.BUY, self.quantity, price=mid - offset)] = (
                OrderSide.BUY
            )
        if self.inventory > -self.max_inventory:
            self.working[
                ctx.submit(self.instrument_id, OrderSide.SELL, self.quantity, price=mid + offset)
            ] = OrderSide.SELL

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        if isinstance(event, OrderFilled | OrderPartiallyFilled) and event.order_id in self.working:
            self.inventory += event.fill.last_qty * event.fill.side.sign
        if isinstance(event, OrderFilled | OrderCanceled | OrderRejected | OrderDenied):
            self.working.pop(event.order_id, None)
