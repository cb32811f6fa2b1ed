"""Risk processor: order commands become OrderAccepted / OrderDenied, amends OrderAmendAccepted /
OrderAmendRejected (all on orders.events, keyed by account, where the order processor takes
them up); limits, trading states and kill switches become risk events."""

from __future__ import annotations

from typing import Any

from meltica.clock import Clock
from meltica.domain.orders.events import ORDER_EVENT_TYPES, OrderAccepted
from meltica.domain.risk import decider as risk
from meltica.domain.risk.state import RiskState
from meltica.runtime.processor import Output
from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS, RISK_COMMANDS, RISK_EVENTS, key_of, order_id_of


class RiskProcessor:
    name = "risk"

    def __init__(self, state: RiskState | None = None) -> None:
        self.state = state or RiskState()

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        outputs: list[Output] = []
        if topic in (ORDER_COMMANDS, RISK_COMMANDS):
            for decided in risk.decide(self.state, event):
                risk.evolve(self.state, decided)
                outputs.append(_output(decided))
        risk.evolve(self.state, event)
        return outputs


def _output(event: Any) -> Output:
    if isinstance(event, OrderAccepted):
        return Output(ORDER_EVENTS, event.order.account_id, event, trace_key=event.order.order_id)
    if isinstance(event, ORDER_EVENT_TYPES):  # denials and amend decisions
        return Output(ORDER_EVENTS, key_of(event), event, trace_key=order_id_of(event))
    return Output(RISK_EVENTS, event.scope_id or "*", event)
