"""SMA crossover: long when the fast average of closes is above the slow one, short below.

Averages are compared exactly (fast_sum * slow against slow_sum * fast, in decimals; both sums
are kept running, exactly, rather than summed again each bar), a tie
keeps the previous sign, and the strategy is always in the market after the first cross:
a reversal closes the position with one market order, then opens the other side with another.
"""

from __future__ import annotations

from collections import deque
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

from meltica.domain.marketdata import Bar
from meltica.domain.orders.events import OrderFilled
from meltica.domain.values import ZERO
from meltica.strategies.base import Strategy, StrategyContext

_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # sums of prices never round


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
        self.fast_sum = self.slow_sum = ZERO  # of the last `fast` and `slow` closes
        self.sign = 0
        self.filled = ZERO

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.instrument_id != self.instrument_id:
            return
        closes, close = self.closes, bar.close
        if len(closes) == self.slow:
            self.slow_sum = _EXACT.subtract(self.slow_sum, closes[0])
        if len(closes) >= self.fast:
            self.fast_sum = _EXACT.subtract(self.fast_sum, closes[-self.fast])
        closes.append(close)
        self.slow_sum = _EXACT.add(self.slow_sum, close)
        self.fast_sum = _EXACT.add(self.fast_sum, close)
        if len(closes) < self.slow:
            return
        diff = self.fast_sum * self.slow - self.slow_sum * self.fast
        sign = 1 if diff > 0 else -1 if diff < 0 else self.sign
        if self.sign in (0, sign):
            self.sign = sign
            return
        self.sign = sign
        self.move_to(ctx, self.instrument_id, self.quantity * sign)  # a reversal closes first

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        if isinstance(event, OrderFilled):
            self.filled += event.fill.last_qty
