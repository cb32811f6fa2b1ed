"""Risk processor: commands become OrderAccepted / OrderDenied; limits and kill switches."""

from __future__ import annotations

from typing import Any

from meltica.clock import Clock
from meltica.domain.orders.events import OrderAccepted, OrderDenied
from meltica.domain.risk import decider as risk
from meltica.domain.risk.state import RiskState
from meltica.runtime.processor import Output
from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS, RISK_EVENTS, inputs_of


class RiskProcessor:
    name = "risk"
    inputs = inputs_of("risk")

    def __init__(self, state: RiskState | None = None) -> None:
        self.state = state or RiskState()

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        outputs: list[Output] = []
        if topic in (ORDER_COMMANDS, "risk.commands"):
            for decided in risk.decide(self.state, event):
                risk.evolve(self.state, decided)
                outputs.append(_output(decided))
        risk.evolve(self.state, event)
        return outputs


def _output(event: Any) -> Output:
    if isinstance(event, OrderAccepted):
        return Output(ORDER_EVENTS, event.order.account_id, event, trace_key=event.order.order_id)
    if isinstance(event, OrderDenied):
        return Output(ORDER_EVENTS, event.account_id, event, trace_key=event.order_id)
    return Output(RISK_EVENTS, event.scope_id or "*", event)
