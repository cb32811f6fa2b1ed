"""Portfolio processor: fills and marks become position, balance and PnL events."""

from __future__ import annotations

from typing import Any

from meltica.clock import Clock
from meltica.domain.portfolio import decider as portfolio
from meltica.runtime.processor import Output
from meltica.topics import PORTFOLIO_EVENTS


class PortfolioProcessor:
    name = "portfolio"

    def __init__(self, state: portfolio.PortfolioState | None = None) -> None:
        self.state = state or portfolio.PortfolioState()

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        outputs = []
        for e in portfolio.decide(self.state, event):
            portfolio.evolve(self.state, e)
            outputs.append(Output(PORTFOLIO_EVENTS, e.account_id, e))
        portfolio.evolve(self.state, event)
        return outputs
