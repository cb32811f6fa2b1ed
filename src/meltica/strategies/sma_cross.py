"""SMA crossover: long when the fast average of closes is above the slow one, short below.

Averages are compared exactly (fast_sum * slow against slow_sum * fast, in decimals), a tie
keeps the previous sign, and the strategy is always in the market after the first cross:
a reversal closes the position with one market order, then opens the other side with another.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from meltica.domain.marketdata import Bar
from meltica.domain.orders.events import OrderFilled
from meltica.domain.values import ZERO
from meltica.strategies.base import Strategy, StrategyContext


class SmaCross(Strategy):
    def __init__(
        self,
        instrument_id: str,
        *,
        fast: int = 10,
        slow: int = 30,
        quantity: str = "1000",
        strategy_id: str = "sma-cross",
        account_id: str = "BT",
    ) -> None:
        if not 0 < fast < slow:
            raise ValueError(f"need 0 < fast < slow, got fast={fast} slow={slow}")
        if Decimal(quantity) <= 0:
            raise ValueError("quantity must be positive")
        self.instrument_id, self.fast, self.slow = instrument_id, fast, slow
        self.quantity = Decimal(quantity)
        self.strategy_id, self.account_id = strategy_id, account_id
        self.closes: deque[Decimal] = deque(maxlen=slow)
        self.sign = 0
        self.position = ZERO
        self.filled = ZERO

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.instrument_id != self.instrument_id:
            return
        self.closes.append(bar.close)
        if len(self.closes) < self.slow:
            return
        slow_sum = sum(self.closes, ZERO)
        fast_sum = sum(list(self.closes)[-self.fast :], ZERO)
        diff = fast_sum * self.slow - slow_sum * self.fast
        sign = 1 if diff > 0 else -1 if diff < 0 else self.sign
        if self.sign in (0, sign):
            self.sign = sign
            return
        self.sign = sign
        self.move_to(ctx, self.instrument_id, self.quantity * sign)  # a reversal closes first

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        if isinstance(event, OrderFilled):
            self.filled += event.fill.last_qty
