"""Mean reversion: short when the close is `entry` standard deviations above its rolling mean,
long when as far below, back to flat once within `exit` deviations."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from meltica.domain.marketdata import Bar
from meltica.domain.values import ZERO
from meltica.strategies.base import Strategy, StrategyContext


class MeanReversion(Strategy):
    def __init__(
        self,
        instrument_id: str,
        *,
        window: int = 30,
        entry: str = "2",
        exit: str = "0.5",
        quantity: str = "1000",
        strategy_id: str = "mean-reversion",
        account_id: str = "BT",
    ) -> None:
        if window < 2:
            raise ValueError("window must be at least 2")
        if not ZERO <= Decimal(exit) < Decimal(entry) or Decimal(quantity) <= 0:
            raise ValueError("need 0 <= exit < entry and a positive quantity")
        self.instrument_id, self.window = instrument_id, window
        self.entry, self.exit, self.quantity = Decimal(entry), Decimal(exit), Decimal(quantity)
        self.strategy_id, self.account_id = strategy_id, account_id
        self.closes: deque[Decimal] = deque(maxlen=window)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.instrument_id != self.instrument_id:
            return
        self.closes.append(bar.close)
        if len(self.closes) < self.window:
            return
        n = Decimal(self.window)
        mean = sum(self.closes, ZERO) / n
        variance = sum(((c - mean) ** 2 for c in self.closes), ZERO) / n
        if variance == ZERO:
            return
        z = (bar.close - mean) / variance.sqrt()
        target = ctx.exposure(self.instrument_id)  # held, and what is in flight
        if z > self.entry:
            target = -self.quantity
        elif z < -self.entry:
            target = self.quantity
        elif abs(z) < self.exit:
            target = ZERO
        self.move_to(ctx, self.instrument_id, target)
