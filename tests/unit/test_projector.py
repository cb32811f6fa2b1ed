"""The projector's order rows are the domain's fold, also when an order's events are split over polls
(the row is read back from the database and folded on), and its offsets carry the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, select

from meltica.clock import SimulatedClock
from meltica.domain.orders import events as oe
from meltica.domain.orders.commands import SubmitOrder
from meltica.domain.orders.decider import OrderBook, decide, evolve
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import ExecType, LiquiditySide, OrderSide, OrderType, TriggerType
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS, topic_specs

ACCOUNT, INSTRUMENT = "ACC-1", "BTCUSDT.SIM"
T0 = 1_700_000_000_123_456_789


class Desk:
    """Orders driven through the order decider; each step's events projected in a poll of their own."""

    def __init__(self, clock: SimulatedClock | None = None) -> None:
        self.log = MemoryLog()
        for topic in topic_specs(1):
            self.log.create_topic(topic)
        self.db: Engine = create_engine("sqlite://")
        t.metadata.create_all(self.db)
        self.publisher = Publisher(self.log, Codec())
        self.projector = Projector(self.log, self.publisher.codec, self.db, clock=clock)
        self.book = OrderBook()
        self.ts = 10

    def emit(self, events: list[Any]) -> None:
        for event in events:
            evolve(self.book, event)
            if isinstance(event, oe.ORDER_EVENT_TYPES):
                self.publisher.publish(ORDER_EVENTS, event)
        self.projector.catch_up()

    def step(self, inp: Any) -> None:
        self.ts += 1
        self.emit(
            [inp, *decide(self.book, inp)]
            if isinstance(inp, oe.ORDER_EVENT_TYPES)
            else decide(self.book, inp)
        )

    def submit(self, spec: OrderSpec) -> None:
        self.publisher.publish(ORDER_COMMANDS, SubmitOrder(spec, self.ts))
        self.step(oe.OrderAccepted(spec, self.ts))

    def report(self, spec: OrderSpec, exec_type: ExecType, **kw: Any) -> None:
        status = self.book.orders[spec.order_id].status
        self.step(
            oe.ExecutionReport(
                "SIM", exec_type, spec.order_id, ACCOUNT, INSTRUMENT, status, self.ts, self.ts, "v1", **kw
            )
        )

    def amend(self, spec: OrderSpec, **terms: Decimal) -> None:
        self.step(
            oe.OrderAmendAccepted(spec.order_id, spec.client_order_id, ACCOUNT, INSTRUMENT, self.ts, **terms)
        )

    def row(self, order_id: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            return dict(conn.execute(select(t.orders).where(t.orders.c.order_id == order_id)).one()._mapping)

    def expected(self, order_id: str) -> dict[str, Any]:
        """The columns the domain's order decides, as the row should hold them."""
        o = self.book.orders[order_id]
        return {
            "status": o.status.value,
            "previous_status": None if o.previous_status is None else o.previous_status.value,
            "quantity": o.quantity,
            "price": o.price,
            "trigger_price": o.trigger_price,
            "filled_qty": o.filled_qty,
            "avg_px": o.avg_px,
            "venue_order_id": o.venue_order_id,
        }

    def decided(self, order_id: str) -> dict[str, Any]:
        row = self.row(order_id)
        return {k: row[k] for k in self.expected(order_id)}


def limit(order_id: str, qty: str = "2") -> OrderSpec:
    return OrderSpec(
        order_id, order_id, ACCOUNT, INSTRUMENT, OrderSide.BUY, OrderType.LIMIT, Decimal(qty), Decimal(100)
    )


def fill(trade_id: str, qty: str) -> oe.Fill:
    return oe.Fill(
        trade_id, "v1", OrderSide.BUY, Decimal(qty), Decimal(100), Decimal(0), "USDT", LiquiditySide.MAKER, 1
    )


def test_an_amend_of_a_partly_filled_order_at_the_venue_replaces_it_across_polls() -> None:
    desk = Desk()
    spec = limit("o1")
    desk.submit(spec)
    desk.report(spec, ExecType.NEW)
    desk.report(spec, ExecType.TRADE, fill=fill("t1", "0.5"))
    desk.amend(spec, quantity=Decimal(3))
    assert desk.decided("o1") == desk.expected("o1")
    assert desk.row("o1")["status"] == "PENDING_REPLACE"
    assert desk.row("o1")["previous_status"] == "PARTIALLY_FILLED"
    desk.report(spec, ExecType.REPLACED, quantity=Decimal(3), price=Decimal(100))
    assert desk.decided("o1") == desk.expected("o1")
    assert (desk.row("o1")["status"], desk.row("o1")["quantity"]) == ("REPLACED", Decimal(3))


def test_an_amend_of_a_held_stop_changes_its_terms_and_not_its_status_across_polls() -> None:
    """Not at the venue, an amend is replaced at once and the order stays ACCEPTED (the domain's
    `routed`, which the row does not keep, restored from the row's status)."""
    desk = Desk()
    stop = OrderSpec(
        "s1",
        "s1",
        ACCOUNT,
        INSTRUMENT,
        OrderSide.SELL,
        OrderType.STOP_MARKET,
        Decimal(1),
        trigger_price=Decimal(95),
        trigger_type=TriggerType.LAST,
    )
    desk.submit(stop)
    desk.amend(stop, trigger_price=Decimal(94))
    assert desk.decided("s1") == desk.expected("s1")
    assert (desk.row("s1")["status"], desk.row("s1")["trigger_price"]) == ("ACCEPTED", Decimal(94))


def test_a_redelivered_acceptance_does_not_take_a_filled_order_back() -> None:
    """The domain ignores an acceptance of an order it holds; so does the read model."""
    desk = Desk()
    spec = limit("o1", qty="1")
    desk.submit(spec)
    desk.report(spec, ExecType.TRADE, fill=fill("t1", "1"))
    desk.publisher.publish(ORDER_EVENTS, oe.OrderAccepted(spec, desk.ts))
    desk.projector.catch_up()
    assert desk.row("o1")["status"] == "FILLED"
    assert desk.row("o1")["version"] == 4  # the acceptance is recorded all the same


def test_the_offsets_are_stamped_by_the_injected_clock() -> None:
    clock = SimulatedClock(T0)
    desk = Desk(clock)
    desk.submit(limit("o1"))
    with desk.db.connect() as conn:
        stamps = set(conn.scalars(select(t.projection_offsets.c.updated_at)))
    # SQLite reads the time back without its zone; it was written as UTC, to the microsecond
    assert stamps == {datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC).replace(tzinfo=None)}
