"""The operator's helper strategies: one records what it sees, one acts after a delay."""

from __future__ import annotations

import logging
from collections import Counter
from decimal import Decimal
from typing import Any

from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.domain.values import OrderSide, OrderType
from meltica.strategies.base import Strategy, StrategyContext

MS = 1_000_000


class LoggingStrategy(Strategy):
    """Records what it sees: every `every`-th quote, trade, bar and order event of its instrument
    goes to the logger `meltica.strategies.<id>`, and each kind is counted (`seen`)."""

    def __init__(
        self, instrument_id: str, *, every: int = 1, strategy_id: str = "logger", account_id: str = "BT"
    ) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self.instrument_id, self.every = instrument_id, every
        self.strategy_id, self.account_id = strategy_id, account_id
        self.seen: Counter[str] = Counter()
        self.log = logging.getLogger(f"meltica.strategies.{strategy_id}")

    def _record(self, kind: str, instrument_id: str, what: Any) -> None:
        if instrument_id != self.instrument_id:
            return
        self.seen[kind] += 1
        if self.seen[kind] % self.every == 0:
            self.log.info("%s #%d: %s", kind, self.seen[kind], what)

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        self._record("quote", quote.instrument_id, quote)

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        self._record("trade", trade.instrument_id, trade)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self._record("bar", bar.instrument_id, bar)

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        self._record("order_event", self.instrument_id, event)


class DelayStrategy(Strategy):
    """Acts after a delay: `delay_ms` (event time) after the first tick of its instrument it
    submits one order — market, or limit at `price` — and again every `repeat_ms` if that is set."""

    def __init__(
        self,
        instrument_id: str,
        *,
        delay_ms: int = 1000,
        side: str = "BUY",
        quantity: str = "1",
        price: str = "",
        repeat_ms: int = 0,
        strategy_id: str = "delay",
        account_id: str = "BT",
    ) -> None:
        if delay_ms < 0 or repeat_ms < 0:
            raise ValueError("delay_ms and repeat_ms must not be negative")
        if side not in ("BUY", "SELL"):
            raise ValueError(f"side must be BUY or SELL, got {side!r}")
        if Decimal(quantity) <= 0 or (price and Decimal(price) <= 0):
            raise ValueError("quantity and price must be positive")
        self.instrument_id = instrument_id
        self.delay_ns, self.repeat_ns = delay_ms * MS, repeat_ms * MS
        self.side, self.quantity = OrderSide(side), Decimal(quantity)
        self.price = Decimal(price) if price else None
        self.strategy_id, self.account_id = strategy_id, account_id
        self.due: int | None = None  # when the next order goes out
        self.sent = 0

    def _tick(self, ctx: StrategyContext, instrument_id: str, ts: int) -> None:
        if instrument_id != self.instrument_id:
            return
        if self.due is None and self.sent == 0:
            self.due = ts + self.delay_ns
        if self.due is None or ts < self.due:
            return
        self.sent += 1
        self.due = ts + self.repeat_ns if self.repeat_ns else None
        if self.price is None:
            ctx.submit(self.instrument_id, self.side, self.quantity, order_type=OrderType.MARKET)
        else:
            ctx.submit(self.instrument_id, self.side, self.quantity, price=self.price)

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        self._tick(ctx, quote.instrument_id, quote.ts)

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        self._tick(ctx, trade.instrument_id, trade.ts)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self._tick(ctx, bar.instrument_id, bar.ts)
