"""Strategies written by a user against the documented `Strategy` API, loaded by `module:Class`."""

from __future__ import annotations

from decimal import Decimal

from meltica.domain.marketdata import Bar
from meltica.strategies.base import Strategy, StrategyContext


class Breakout(Strategy):
    """Long above the highest close of the last `window` bars, short below the lowest."""

    def __init__(
        self,
        instrument_id: str,
        *,
        window: int = 20,
        quantity: str = "1000",
        strategy_id: str = "breakout",
        account_id: str = "BT",
    ) -> None:
        self.instrument_id, self.window, self.quantity = instrument_id, window, Decimal(quantity)
        self.strategy_id, self.account_id = strategy_id, account_id
        self.closes: list[Decimal] = []

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.instrument_id != self.instrument_id:
            return
        recent = self.closes[-self.window :]
        self.closes.append(bar.close)
        if len(recent) < self.window:
            return
        if bar.close > max(recent):
            self.move_to(ctx, self.instrument_id, self.quantity)
        elif bar.close < min(recent):
            self.move_to(ctx, self.instrument_id, -self.quantity)


class Fragile(Strategy):
    """Fails on its `after`-th bar."""

    def __init__(self, instrument_id: str, *, after: int = 5, strategy_id: str = "fragile") -> None:
        self.instrument_id, self.after, self.strategy_id = instrument_id, after, strategy_id
        self.account_id = "BT"
        self.seen = 0

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self.seen += 1
        if self.seen == self.after:
            raise KeyError("no such level")


class NotAStrategy:
    pass
