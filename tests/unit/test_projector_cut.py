"""The projector reads one cut of the log per poll and drops no order event for arriving before its
order: forced interleavings, and a property over the order state machine (the read model's status
is the domain's fold of the order's events, however the polls and the appends interleave)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, select

from meltica.domain.orders import events as oe
from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.orders.decider import OrderBook, decide, evolve, replay
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.risk.checks import DenyReason
from meltica.domain.values import ExecType, LiquiditySide, OrderSide, OrderType
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.log.base import Record
from meltica.log.memory import MemoryLog
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS, topic_specs

ACCOUNT, INSTRUMENT = "ACC-1", "BTCUSDT.SIM"


class Interleaving(MemoryLog):
    """A memory log that runs the queued appends right after the projector's next read."""

    def __init__(self) -> None:
        super().__init__()
        self.between: list[Callable[[], None]] = []

    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[Record]:
        got = super().read(topic, partition, offset, limit)
        while self.between:
            self.between.pop(0)()
        return got


def spec(n: int, quantity: Decimal = Decimal(4)) -> OrderSpec:
    return OrderSpec(
        f"o{n}", f"c{n}", ACCOUNT, INSTRUMENT, OrderSide.BUY, OrderType.LIMIT, quantity, Decimal(100)
    )


def denied(s: OrderSpec) -> oe.OrderDenied:
    return oe.OrderDenied(s.order_id, s.client_order_id, ACCOUNT, INSTRUMENT, 2, DenyReason.KILL_SWITCH)


def read_models() -> Engine:
    db = create_engine("sqlite://")
    t.metadata.create_all(db)
    return db


def status(db: Engine, order_id: str) -> str | None:
    with db.connect() as conn:
        return conn.execute(select(t.orders.c.status).where(t.orders.c.order_id == order_id)).scalar()


def setup(log: MemoryLog) -> tuple[Publisher, Projector, Engine]:
    for topic in topic_specs(1):
        log.create_topic(topic)
    codec = Codec()
    db = read_models()
    return Publisher(log, codec), Projector(log, codec, db), db


def test_a_denial_appended_between_the_reads_of_one_poll_is_not_lost() -> None:
    """The issue's interleaving: the command and its denial land after the projector read
    orders.commands and before it read orders.events. The order ends DENIED, not PENDING_NEW."""
    log = Interleaving()
    publisher, projector, db = setup(log)
    first, second = spec(1), spec(2)
    publisher.publish(ORDER_COMMANDS, SubmitOrder(first, 1))
    publisher.publish(ORDER_EVENTS, oe.OrderAccepted(first, 2))
    log.between.append(lambda: publisher.publish(ORDER_COMMANDS, SubmitOrder(second, 3)))
    log.between.append(lambda: publisher.publish(ORDER_EVENTS, denied(second)))

    assert projector.poll_once() == 2, "the poll stops at the ends it noted"
    assert status(db, "o1") == "ACCEPTED"
    projector.catch_up()
    assert status(db, "o2") == "DENIED"


def test_an_event_read_before_its_command_is_applied_when_the_command_arrives() -> None:
    """A backlog read a few records per partition: the denial is read a poll before its command."""
    log = MemoryLog()
    publisher, projector, db = setup(log)
    publisher.publish(ORDER_COMMANDS, SubmitOrder(spec(1), 1))
    publisher.publish(ORDER_COMMANDS, SubmitOrder(spec(2), 2))
    publisher.publish(ORDER_EVENTS, denied(spec(2)))

    assert projector.poll_once(max_records=1) == 2  # o1's command and o2's denial
    assert status(db, "o2") is None
    restarted = Projector(log, publisher.codec, db)  # the kept denial is found in the read models
    restarted.poll_once(max_records=1)
    assert status(db, "o2") == "DENIED"
    with db.connect() as conn:
        reason, version = conn.execute(
            select(t.orders.c.reason, t.orders.c.version).where(t.orders.c.order_id == "o2")
        ).one()
    assert (reason, version) == ("kill_switch", 1)


# -- the property ------------------------------------------------------------------------------
@dataclass
class World:
    """Orders driven through the domain's decider, their events appended to the log."""

    log: Interleaving
    publisher: Publisher
    book: OrderBook = field(default_factory=OrderBook)
    specs: list[OrderSpec] = field(default_factory=list)
    decided: set[str] = field(default_factory=set)
    ts: int = 10
    trades: int = 0

    def emit(self, events: list[Any]) -> None:
        for event in events:
            evolve(self.book, event)
            if isinstance(event, oe.ORDER_EVENT_TYPES):
                self.publisher.publish(ORDER_EVENTS, event)

    def step(self, kind: str, n: int, accept: bool, qty: int) -> None:
        self.ts += 1
        if kind == "submit" or not self.specs:
            s = spec(len(self.specs), Decimal(qty))
            self.specs.append(s)
            self.publisher.publish(ORDER_COMMANDS, SubmitOrder(s, self.ts))
            return
        s = self.specs[n % len(self.specs)]
        if kind == "risk":
            if s.order_id in self.decided:
                return
            self.decided.add(s.order_id)
            first = oe.OrderAccepted(s, self.ts) if accept else denied(s)
            self.emit([first])
            self.emit(decide(self.book, first))
        elif kind == "cancel":
            self.emit(decide(self.book, CancelOrder(s.order_id, ACCOUNT, INSTRUMENT, self.ts)))
        elif kind == "amend":  # risk lets the amend through; the order's status may still refuse it
            amend = oe.OrderAmendAccepted(
                s.order_id, s.client_order_id, ACCOUNT, INSTRUMENT, self.ts, Decimal(qty)
            )
            self.emit([amend])
            self.emit(decide(self.book, amend))
        else:
            self.emit(decide(self.book, self.report(s, ExecType(kind), qty)))

    def report(self, s: OrderSpec, exec_type: ExecType, qty: int) -> oe.ExecutionReport:
        order = self.book.orders.get(s.order_id)
        fill = None
        if exec_type is ExecType.TRADE:
            self.trades += 1
            fill = oe.Fill(
                f"t{self.trades}",
                "v1",
                s.side,
                Decimal(qty),
                Decimal(100),
                Decimal(0),
                "USDT",
                LiquiditySide.TAKER,
                1,
            )
        status = order.status if order is not None else OrderStatus.PENDING_NEW
        return oe.ExecutionReport(
            "SIM",
            exec_type,
            s.order_id,
            ACCOUNT,
            INSTRUMENT,
            status,
            self.ts,
            self.ts,
            "v1",
            fill,
            quantity=Decimal(qty),
        )


# submissions and risk decisions weigh more: a denial read before its command needs a backlog
KINDS = ["submit"] * 4 + ["risk"] * 4 + ["cancel", "amend", *(e.value for e in ExecType)]
steps = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 7),
        st.booleans(),
        st.integers(1, 4),
        st.sampled_from(["now", "during-next-poll", "poll"]),
    ),
    max_size=60,
)


def fold(log: MemoryLog, codec: Codec) -> OrderBook:
    """Every order as the domain folds its events, read back from the log."""
    return replay([from_record(*codec.decode_record(r)) for r in log.read(ORDER_EVENTS, 0, 0, 100_000)])


@given(steps, st.integers(1, 3))
def test_the_read_model_status_is_the_fold_of_the_order_events(plan: list[Any], per_poll: int) -> None:
    log = Interleaving()
    publisher, projector, db = setup(log)
    world = World(log, publisher)
    for kind, n, accept, qty, when in plan:
        if when == "poll":
            projector.poll_once(max_records=per_poll)
        elif when == "during-next-poll":
            log.between.append(lambda a=(kind, n, accept, qty): world.step(*a))
        else:
            world.step(kind, n, accept, qty)
    projector.catch_up()
    while log.between:
        log.between.pop(0)()
        projector.catch_up()

    book = fold(log, publisher.codec)
    with db.connect() as conn:
        rows = {r.order_id: r for r in conn.execute(select(t.orders))}
        projected_events = conn.execute(select(t.order_events)).all()
    assert len(projected_events) == log.end_offset(ORDER_EVENTS, 0)
    assert sorted(rows) == sorted(s.order_id for s in world.specs)
    for s in world.specs:
        order = book.orders.get(s.order_id)
        expected = order.status.value if order else "DENIED" if s.order_id in book.denied else "PENDING_NEW"
        row = rows[s.order_id]
        assert row.status == expected, s.order_id
        assert row.filled_qty == (order.filled_qty if order else 0)
        if order is not None:
            assert (row.quantity, row.price) == (order.quantity, order.price)
