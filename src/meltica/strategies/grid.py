"""Grid: resting limit orders `levels` steps of `step` below and above a centre price; each fill
is answered by an order one step back the other way, so the grid buys dips and sells rips."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meltica.domain.marketdata import Bar, QuoteTick
from meltica.domain.orders.events import OrderCanceled, OrderDenied, OrderFilled, OrderRejected
from meltica.domain.values import OrderSide
from meltica.strategies.base import Strategy, StrategyContext


class Grid(Strategy):
    def __init__(
        self,
        instrument_id: str,
        *,
        step: str,
        levels: int = 3,
        quantity: str = "1000",
        strategy_id: str = "grid",
        account_id: str = "BT",
    ) -> None:
        if Decimal(step) <= 0 or levels < 1 or Decimal(quantity) <= 0:
            raise ValueError("step and quantity must be positive, levels at least 1")
        self.instrument_id, self.step, self.levels = instrument_id, Decimal(step), levels
        self.quantity = Decimal(quantity)
        self.strategy_id, self.account_id = strategy_id, account_id
        self.centre: Decimal | None = None
        self.working: dict[str, tuple[OrderSide, Decimal]] = {}

    def _place(self, ctx: StrategyContext, side: OrderSide, price: Decimal) -> None:
        order_id = ctx.submit(self.instrument_id, side, self.quantity, price=price)
        self.working[order_id] = (side, price)

    def _start(self, ctx: StrategyContext, price: Decimal) -> None:
        self.centre = (price / self.step).to_integral_value() * self.step
        for k in range(1, self.levels + 1):
            self._place(ctx, OrderSide.BUY, self.centre - self.step * k)
            self._place(ctx, OrderSide.SELL, self.centre + self.step * k)

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        if quote.instrument_id == self.instrument_id and self.centre is None:
            self._start(ctx, quote.mid)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.instrument_id == self.instrument_id and self.centre is None:
            self._start(ctx, bar.close)

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        if isinstance(event, OrderFilled) and event.order_id in self.working:
            side, price = self.working.pop(event.order_id)
            back = OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY
            self._place(ctx, back, price + self.step * (1 if side is OrderSide.BUY else -1))
        elif isinstance(event, OrderCanceled | OrderRejected | OrderDenied):
            self.working.pop(event.order_id, None)
