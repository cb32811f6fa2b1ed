"""Momentum: long after the close rose more than `threshold` over `lookback` bars, short after
it fell as much, flat in between."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from meltica.domain.marketdata import Bar
from meltica.domain.values import ZERO
from meltica.strategies.base import Strategy, StrategyContext


class Momentum(Strategy):
    def __init__(
        self,
        instrument_id: str,
        *,
        lookback: int = 20,
        threshold: str = "0.001",
        quantity: str = "1000",
        strategy_id: str = "momentum",
        account_id: str = "BT",
    ) -> None:
        if lookback < 1:
            raise ValueError("lookback must be at least 1")
        if Decimal(threshold) < 0 or Decimal(quantity) <= 0:
            raise ValueError("threshold must not be negative and quantity must be positive")
        self.instrument_id, self.lookback = instrument_id, lookback
        self.threshold, self.quantity = Decimal(threshold), Decimal(quantity)
        self.strategy_id, self.account_id = strategy_id, account_id
        self.closes: deque[Decimal] = deque(maxlen=lookback + 1)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.instrument_id != self.instrument_id:
            return
        self.closes.append(bar.close)
        if len(self.closes) <= self.lookback:
            return
        change = (self.closes[-1] - self.closes[0]) / self.closes[0]
        target = (
            self.quantity if change > self.threshold else -self.quantity if change < -self.threshold else ZERO
        )
        self.move_to(ctx, self.instrument_id, target)
