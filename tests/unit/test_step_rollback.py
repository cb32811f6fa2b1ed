"""A step happens whole or not at all: when a processor fails on an input after others changed
their state for it, the input is dead-lettered and every processor is back where it was — in the
embedded engine, after its restart, and in a Kafka partition state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meltica.clock import Clock, SimulatedClock
from meltica.domain.orders.events import OrderAccepted
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.state import AccountRisk, RiskState
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.processors.risk import RiskProcessor
from meltica.runtime.engine import Engine
from meltica.runtime.partitions import PartitionedProcessor
from meltica.runtime.processor import Output
from meltica.topics import EXTERNAL, ORDER_COMMANDS, ORDER_EVENTS, PORTFOLIO_COMMANDS, dead_letter_topic
from meltica.topology import INPUTS, Wiring, processors
from tests.e2e.stack import BTC, Stack


class Exploding:
    """Fails on the acceptance of order `victim` (after risk reserved for it and orders booked it)."""

    name = "exploding"

    def __init__(self, victim: str) -> None:
        self.victim = victim
        self.seen = 0

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        self.seen += 1  # state it changes before failing: rolled back too
        if isinstance(event, OrderAccepted) and event.order.order_id == self.victim:
            raise RuntimeError("a processor bug")
        return []


def _engine(stack: Stack, victim: str) -> Engine:
    return Engine(
        stack.log,
        stack.codec,
        [*processors(Wiring()), Exploding(victim)],
        inputs={**INPUTS, "exploding": (ORDER_EVENTS,)},
        external_topics=EXTERNAL,
        clock=stack.clock,
    )


def _risk(engine: Engine) -> RiskState:
    risk = next(p for p in engine.processors if isinstance(p, RiskProcessor))
    return risk.state


def _account(engine: Engine) -> AccountRisk:
    return _risk(engine).account("ACC-1")


def test_a_processor_failing_after_risk_reserved_leaves_no_reservation() -> None:
    stack = Stack()
    stack.engine = _engine(stack, victim="O2")
    stack.setup(BTC)
    stack.submit(qty="1", price="99.50", order_id="O1")  # rests: 99.50 USDT held
    held_before = _account(stack.engine).reserved("USDT")
    assert held_before > 0
    seen_before = stack.engine.processors[-1].seen  # type: ignore[attr-defined]
    stack.submit(qty="2", price="99.40", order_id="O2")  # accepted by risk, then the bug

    account = _account(stack.engine)
    assert "O2" not in account.open_orders
    assert account.reserved("USDT") == held_before
    assert "O2" not in _risk(stack.engine).known_orders
    assert stack.engine.processors[-1].seen == seen_before  # type: ignore[attr-defined]
    dead = stack.log.read(dead_letter_topic(ORDER_COMMANDS), 0, 0, 10) + stack.log.read(
        dead_letter_topic(ORDER_COMMANDS), 1, 0, 10
    )
    assert [dict(r.headers)["meltica.dlq.reason"] for r in dead] == [
        b"processing failed: RuntimeError: a processor bug"
    ]
    assert stack.engine.rollbacks == 1
    written = [r for p in range(2) for r in stack.log.read(ORDER_EVENTS, p, 0, 100)]
    assert not [r for r in written if b"O2" in r.value]  # nothing about O2 was written either

    stack.submit(qty="1", price="99.30", order_id="O3")  # the engine goes on, with the right state
    assert set(_account(stack.engine).open_orders) == {"O1", "O3"}

    restarted = _engine(stack, victim="O2")  # a replay fails on the same input and rolls back the same way
    restarted.recover()
    assert _risk(restarted).accounts == _risk(stack.engine).accounts
    assert _risk(restarted).known_orders == _risk(stack.engine).known_orders


class Hoarding:
    """Keeps every deposit, then fails on a deposit of 13 (after keeping it)."""

    name = "portfolio"  # stands in for it: its journal topic exists

    def __init__(self) -> None:
        self.kept: list[Any] = []

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        self.kept.append(event.delta)
        if event.delta == 13:
            raise ValueError("unlucky")
        return [Output(topic, event.account_id, event)]


def test_a_partition_state_is_rolled_back_and_the_input_dead_lettered() -> None:
    log = MemoryLog()
    from meltica.topics import topic_specs

    for spec in topic_specs(1):
        log.create_topic(spec)
    codec = Codec()
    core = PartitionedProcessor(
        "portfolio",
        lambda p: Hoarding(),
        (PORTFOLIO_COMMANDS,),
        codec=codec,
        reader=log,
        clock=SimulatedClock(0),
    )
    state = core.restore(0)
    from meltica.runtime.publisher import Publisher

    pub = Publisher(log, codec, SimulatedClock(0))
    for amount in (1, 13, 2):
        pub.publish(PORTFOLIO_COMMANDS, AdjustBalance("ACC-1", "USDT", Decimal(amount), "test", 0))
    records = log.read(PORTFOLIO_COMMANDS, 0, 0, 10)
    written = [core.apply(state, r, live=True) for r in records]
    assert state.processor.kept == [1, 2]  # type: ignore[attr-defined]
    assert [m.topic for m in written[1]] == [dead_letter_topic(PORTFOLIO_COMMANDS)]
    assert [len(w) for w in (written[0], written[2])] == [1, 1]
