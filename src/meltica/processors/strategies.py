"""Strategy host: market data and the strategies' own order events in, their commands out."""

from __future__ import annotations

from typing import Any

from meltica.clock import Clock
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.orders.events import OrderAccepted
from meltica.runtime.processor import Output
from meltica.strategies.base import Strategy, StrategyContext
from meltica.topics import ORDER_COMMANDS, inputs_of


class StrategyHost:
    name = "strategies"
    inputs = inputs_of("strategies")

    def __init__(self, strategies: list[Strategy]) -> None:
        self.strategies = strategies
        self.contexts = {s.strategy_id: StrategyContext(s.strategy_id, s.account_id) for s in strategies}
        self.owner: dict[str, Strategy] = {}

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        if isinstance(event, Instrument):
            return []
        ts = getattr(event, "ts", 0)
        if isinstance(event, QuoteTick | TradeTick | Bar):
            for s in self.strategies:
                ctx = self.contexts[s.strategy_id]
                ctx.now_ns = ts
                if isinstance(event, QuoteTick):
                    s.on_quote(ctx, event)
                elif isinstance(event, TradeTick):
                    s.on_trade(ctx, event)
                else:
                    s.on_bar(ctx, event)
        else:
            order_id = (
                event.order.order_id if isinstance(event, OrderAccepted) else getattr(event, "order_id", None)
            )
            strategy = self.owner.get(order_id or "")
            if strategy is not None:
                ctx = self.contexts[strategy.strategy_id]
                ctx.now_ns = ts
                strategy.on_order_event(ctx, event)
        return self._collect()

    def _collect(self) -> list[Output]:
        out = []
        for s in self.strategies:
            ctx = self.contexts[s.strategy_id]
            for cmd in ctx.commands:
                if isinstance(cmd, SubmitOrder):
                    self.owner[cmd.order.order_id] = s
                    out.append(
                        Output(ORDER_COMMANDS, cmd.order.account_id, cmd, trace_key=cmd.order.order_id)
                    )
                elif isinstance(cmd, CancelOrder):
                    out.append(Output(ORDER_COMMANDS, cmd.account_id, cmd, trace_key=cmd.order_id))
            ctx.commands.clear()
        return out
