"""A demonstration strategy for `meltica up`: quotes around the mid and takes now and then,
so there is always something to watch. Not a trading idea."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meltica.domain.marketdata import QuoteTick
from meltica.domain.orders.events import OrderCanceled, OrderDenied, OrderExpired, OrderFilled, OrderRejected
from meltica.domain.values import OrderSide, OrderType
from meltica.strategies.base import Strategy, StrategyContext


class DemoStrategy(Strategy):
    """Every `every` quotes: a limit order `ticks` from the mid (sides alternate); every
    `take_every` quotes a small market order; limit orders older than `max_age` quotes are canceled."""

    def __init__(
        self,
        strategy_id: str = "demo",
        account_id: str = "DEMO",
        *,
        sizes: dict[str, str] | None = None,
        quantity: str = "0.01",
        every: int = 3,
        ticks: int = 2,
        take_every: int = 10,
        max_age: int = 12,
    ) -> None:
        self.strategy_id, self.account_id = strategy_id, account_id
        self.quantity = Decimal(quantity)
        self.sizes = {k: Decimal(v) for k, v in (sizes or {}).items()}
        self.every, self.ticks, self.take_every, self.max_age = every, ticks, take_every, max_age
        self.quotes = 0
        self.open: dict[str, tuple[str, int]] = {}  # order id -> (instrument, quote count when sent)

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        self.quotes += 1
        for order_id, (instrument, sent) in list(self.open.items()):
            if self.quotes - sent >= self.max_age:
                ctx.cancel(order_id, instrument)
                del self.open[order_id]
        side = OrderSide.BUY if self.quotes % 2 else OrderSide.SELL
        qty = self.sizes.get(quote.instrument_id, self.quantity)
        if self.quotes % self.take_every == 0:
            ctx.submit(quote.instrument_id, side, qty, order_type=OrderType.MARKET)
        elif self.quotes % self.every == 0:
            tick = (quote.ask_px - quote.bid_px) or Decimal("0.01")
            price = (
                quote.bid_px - tick * self.ticks
                if side is OrderSide.BUY
                else quote.ask_px + tick * self.ticks
            )
            order_id = ctx.submit(quote.instrument_id, side, qty, price=price)
            self.open[order_id] = (quote.instrument_id, self.quotes)

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        if isinstance(event, OrderFilled | OrderCanceled | OrderExpired | OrderRejected | OrderDenied):
            self.open.pop(event.order_id, None)
