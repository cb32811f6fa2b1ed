"""The projector: every topic into SQL read models, exactly once.

Rows and the projector's next offsets are written in one database transaction, and the
projector starts from the stored offsets, so a crash between two batches neither loses nor
repeats anything. `rebuild` empties the read models and projects the whole log again.

Each poll reads every partition up to the end it noted at the start (one cut across topics; the
ends of the command topics noted last, so an event's command is inside any cut that holds the
event). An order event whose order row does not exist yet is kept (in `order_events`) and applied
when the row is created: nothing is dropped because it arrived before its order.

An order row is the domain's own fold: each order event goes through the order decider's `evolve`,
and the row takes the status, quantities and prices of the resulting `Order` (PENDING_NEW before
risk decided, DENIED for a denial). The projector keeps no order state machine of its own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meltica.clock import Clock, LiveClock
from meltica.domain.control import StrategyStateChanged, VenueStateChanged
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar
from meltica.domain.orders import events as oe
from meltica.domain.orders.commands import SubmitOrder, SubmitOrderList
from meltica.domain.orders.decider import OrderBook, evolve
from meltica.domain.orders.model import Order, OrderSpec, OrderStatus
from meltica.domain.portfolio.events import BalanceChanged, ExecutionAnalyzed, PnLMarked, PositionChanged
from meltica.domain.risk import events as re
from meltica.domain.routing import routed
from meltica.domain.values import OrderSide, OrderType, TimeInForce
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import from_record, json_default
from meltica.log.base import EventLog, Record, TopicPartition
from meltica.processors.bars import width_text
from meltica.projections import tables as t
from meltica.topics import (
    BARS,
    INSTRUMENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PORTFOLIO_EVENTS,
    RISK_EVENTS,
    STRATEGY_EVENTS,
    VENUE_EVENTS,
    key_of,
    order_id_of,
)

_log = logging.getLogger("meltica.projector")
TOPICS = (
    BARS,
    INSTRUMENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PORTFOLIO_EVENTS,
    RISK_EVENTS,
    STRATEGY_EVENTS,
    VENUE_EVENTS,
)
READ_MODELS = (
    t.orders,
    t.order_events,
    t.fills,
    t.positions,
    t.balances,
    t.pnl,
    t.instruments,
    t.risk_events,
    t.strategies,
    t.venues,
    t.bars,
    t.execution_analytics,
    t.equity,
)

# Topics whose records create the rows other topics' events apply to: their ends are noted last.
CAUSES = frozenset({ORDER_COMMANDS})
S = OrderStatus
# Statuses an order reaches only once sent to its venue. The row does not keep the domain's
# `Order.routed`; this (or a venue order id) restores it for an order read back from its row.
_ROUTED = frozenset(S) - {S.PENDING_NEW, S.DENIED, S.ACCEPTED, S.TRIGGERED, S.CANCELED, S.EXPIRED}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _shallow_row(event: Any) -> dict[str, Any]:
    """A dataclass of plain values as a dict of its fields (what `dataclasses.asdict` gives for it,
    without the recursive deep copy of asdict, which took 7% of the projection benchmark)."""
    names = _FIELD_NAMES.get(type(event))
    if names is None:
        names = _FIELD_NAMES[type(event)] = tuple(f.name for f in dataclasses.fields(event))
    return {name: getattr(event, name) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _json(fields: dict[str, Any]) -> str:
    """The decoded record without its envelope, as JSON (decimals as exact strings)."""
    return json.dumps({k: v for k, v in fields.items() if k != "meta"}, default=json_default)


class Projector:
    """Projects the log into the read-model tables of `db`."""

    def __init__(
        self,
        log: EventLog,
        codec: Codec,
        db: Engine,
        *,
        name: str = "read-models",
        clock: Clock | None = None,
    ) -> None:
        self.log = log
        self.codec = codec
        self.db = db
        self.name = name
        self.clock: Clock = clock or LiveClock()  # stamps `projection_offsets.updated_at`
        self._positions: dict[TopicPartition, int] | None = None
        # Kafka: an end offset past the last record (a commit marker) is no reason to read again
        self._nothing_below: dict[TopicPartition, int] = {}
        # orders with events in order_events but no row yet: only these need a look for kept events
        self._orphans: set[str] | None = None
        self.projected = 0
        self.skipped = 0

    def _load_positions(self) -> dict[TopicPartition, int]:
        with self.db.connect() as conn:
            stored = {
                TopicPartition(r.topic, r.partition): r.next_offset
                for r in conn.execute(
                    select(t.projection_offsets).where(t.projection_offsets.c.projection == self.name)
                )
            }
        return {
            TopicPartition(topic, p): stored.get(TopicPartition(topic, p), 0)
            for topic in TOPICS
            for p in range(self.log.partitions(topic))
        }

    def poll_once(self, max_records: int = 5000) -> int:
        """Project what is new (at most `max_records` per partition) in one transaction."""
        if self._positions is None:
            self._positions = self._load_positions()
        if self._orphans is None:
            self._orphans = self._load_orphans()
        batch: list[Record] = []
        ends = self._ends(list(self._positions))
        for tp, pos in self._positions.items():
            end = ends[tp]
            if end > pos and self._nothing_below.get(tp) != end:
                got = self.log.read(tp.topic, tp.partition, pos, min(max_records, end - pos))
                records = [r for r in got if r.offset < end]  # what came after the noted end waits
                if not records:  # only transaction markers (or aborted data) up to the end
                    self._nothing_below[tp] = end
                batch += records
        if not batch:
            return 0
        batch.sort(key=lambda r: (r.seq, r.topic, r.partition, r.offset))
        positions = dict(self._positions)
        decoded: list[tuple[Record, dict[str, Any], Any]] = []
        for rec in batch:
            positions[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
            try:
                name, fields = self.codec.decode_record(rec)
                decoded.append((rec, fields, from_record(name, fields)))
            except (MelticaError, KeyError, TypeError, ValueError) as err:
                self.skipped += 1  # the runtime dead-letters what does not decode
                _log.warning("not projected: %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, err)
        with self.db.begin() as conn:
            staged = Staged(conn, [e for _, _, e in decoded], self._recall, self._orphans)
            for rec, fields, event in decoded:
                staged.apply(rec, fields, event)
            staged.flush()
            now = _EPOCH + timedelta(microseconds=self.clock.now_ns() // 1000)
            moved = [
                {
                    "projection": self.name,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "next_offset": off,
                    "updated_at": now,
                }
                for tp, off in positions.items()
                if off != self._positions.get(tp)
            ]
            upsert_many(conn, t.projection_offsets, moved)
        self._positions = positions
        self._orphans = (self._orphans - staged.created) | set(staged.waiting)
        self.projected += len(batch)
        return len(batch)

    def lag(self) -> dict[str, int] | None:
        """Records of each topic in the log and not projected yet (None before the first poll): the
        log's end offsets minus the projected positions; a partition with only transaction markers
        left counts 0. Safe to call from another thread (a metrics scrape)."""
        positions = self._positions
        if positions is None:
            return None
        ends = self.log.end_offsets(list(positions))
        behind = dict.fromkeys(sorted({tp.topic for tp in positions}), 0)
        for tp, pos in positions.items():
            end = ends.get(tp, pos)
            if end > pos and self._nothing_below.get(tp) != end:
                behind[tp.topic] += end - pos
        return behind

    def _ends(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The end of every partition, the command topics' last: ends only grow, so an event inside
        the cut had its command appended before the command topics' ends were noted."""
        ends = self.log.end_offsets([tp for tp in partitions if tp.topic not in CAUSES])
        ends.update(self.log.end_offsets([tp for tp in partitions if tp.topic in CAUSES]))
        return ends

    def _load_orphans(self) -> set[str]:
        e, o = t.order_events.c, t.orders.c
        unmatched = ~select(o.order_id).where(o.order_id == e.order_id).exists()
        with self.db.connect() as conn:
            return set(conn.scalars(select(e.order_id).where(unmatched).distinct()))

    def _recall(self, places: Sequence[tuple[str, int, int]]) -> list[Any]:
        """The events at these log positions (order events kept until their order existed)."""
        found = []
        for topic, partition, offset in places:
            for rec in self.log.read(topic, partition, offset, 1):
                if rec.offset == offset:
                    try:
                        found.append(from_record(*self.codec.decode_record(rec)))
                    except (MelticaError, KeyError, TypeError, ValueError):
                        self.skipped += 1
        return found

    def reset(self) -> None:
        """Forget the positions held in memory; the next poll reads them from the database."""
        self._positions = None
        self._orphans = None
        self._nothing_below.clear()

    def catch_up(self) -> int:
        total = 0
        while n := self.poll_once():
            total += n
        return total

    def run(self, stop: threading.Event, poll_interval: float = 0.05) -> None:
        while not stop.is_set():
            if self.poll_once() == 0:
                stop.wait(poll_interval)

    def rebuild(self) -> int:
        """Empty every read model and project the whole log again."""
        with self.db.begin() as conn:
            for table in READ_MODELS:
                conn.execute(delete(table))
            conn.execute(delete(t.projection_offsets).where(t.projection_offsets.c.projection == self.name))
        self.reset()
        return self.catch_up()


def upsert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert or replace rows by primary key in one statement (PostgreSQL and SQLite)."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    stmt = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
    others = [c.name for c in table.columns if c.name not in keys]
    conn.execute(
        stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in others}), rows
    )


def bar_row(bar: Bar) -> dict[str, Any]:
    """A closed bar as its row, keyed by instrument, width, source and open time (a replayed bar
    replaces itself)."""
    label, _, source = bar.spec.rpartition("-")
    return {
        "instrument_id": bar.instrument_id,
        "width": width_text(label) if label else bar.spec,
        "source": source if label else "",
        "ts_open": bar.ts_open,
        "ts_close": bar.ts,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
    }


def _order_ids(event: Any) -> list[str]:
    """The orders an event or command is about (several for an order list)."""
    if isinstance(event, SubmitOrderList):
        return [s.order_id for s in event.orders]
    order_id = order_id_of(event)
    return [] if order_id is None else [order_id]


class Staged:
    """One batch of row changes, kept in memory and written with one statement per table."""

    def __init__(
        self,
        conn: Connection,
        events: list[Any],
        recall: Callable[[Sequence[tuple[str, int, int]]], list[Any]] = lambda places: [],
        orphans: set[str] | None = None,
    ) -> None:
        self.conn = conn
        wanted = sorted({oid for e in events for oid in _order_ids(e)})
        self.orders: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for row in conn.execute(select(t.orders).where(t.orders.c.order_id.in_(chunk))):
                self.orders[row.order_id] = dict(row._mapping)
        # events of earlier batches that came before their order (kept in order_events), by order
        self.recall = recall
        self.parked: dict[str, list[tuple[str, int, int]]] = {}
        missing = [oid for oid in wanted if oid not in self.orders and (orphans is None or oid in orphans)]
        e = t.order_events.c
        for i in range(0, len(missing), 500):
            stmt = select(e.order_id, e.topic, e.partition, e.offset).where(
                e.order_id.in_(missing[i : i + 500])
            )
            for r in conn.execute(stmt.order_by(e.offset)):
                self.parked.setdefault(r.order_id, []).append((r.topic, r.partition, r.offset))
        self.waiting: dict[str, list[Any]] = {}  # this batch's events that came before their order
        self.book = OrderBook()  # the domain's orders behind the rows this batch changes
        self.created: set[str] = set()
        self.dirty: set[str] = set()
        self.rows: dict[Table, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self.marks: dict[tuple[str, str], dict[str, Any]] = {}

    def stage(self, table: Table, row: dict[str, Any]) -> None:
        key = tuple(row[c.name] for c in table.primary_key.columns)
        self.rows.setdefault(table, {})[key] = row

    def flush(self) -> None:
        upsert_many(self.conn, t.orders, [self.orders[oid] for oid in sorted(self.dirty)])
        for table, rows in self.rows.items():
            upsert_many(self.conn, table, list(rows.values()))
        if self.marks:
            self.conn.execute(
                update(t.positions)
                .where(
                    t.positions.c.account_id == bindparam("a"), t.positions.c.instrument_id == bindparam("i")
                )
                .values(unrealized_pnl=bindparam("u"), mark_px=bindparam("m"), ts_event=bindparam("ts")),
                list(self.marks.values()),
            )

    # -- events to rows ---------------------------------------------------------------------------
    def apply(self, rec: Record, fields: dict[str, Any], event: Any) -> None:
        meta = fields["meta"]
        if isinstance(event, SubmitOrder | SubmitOrderList):
            for spec in [event.order] if isinstance(event, SubmitOrder) else event.orders:
                self._new_order(spec, meta["ts_event"])
        elif isinstance(event, oe.ORDER_EVENT_TYPES):
            self._order_event(event)
        elif isinstance(event, PositionChanged):
            self.marks.pop((event.account_id, event.instrument_id), None)
            self.stage(
                t.positions,
                {
                    "account_id": event.account_id,
                    "instrument_id": event.instrument_id,
                    "side": event.side.value,
                    "quantity": event.quantity,
                    "avg_px": event.avg_px,
                    "realized_pnl": event.realized_pnl,
                    "unrealized_pnl": event.unrealized_pnl,
                    "fees": event.fees,
                    "currency": event.currency,
                    "mark_px": event.last_px,
                    "ts_event": event.ts,
                },
            )
        elif isinstance(event, BalanceChanged):
            self.stage(
                t.balances,
                {
                    "account_id": event.account_id,
                    "asset": event.asset,
                    "total": event.total,
                    "free": event.free,
                    "locked": event.locked,
                    "ts_event": event.ts,
                },
            )
        elif isinstance(event, PnLMarked):
            self._mark(event)
        elif isinstance(event, ExecutionAnalyzed):  # keyed by order and trade: a replay rewrites it
            row = _shallow_row(event)
            row.update(side=event.side.value, ts_event=row.pop("ts"))
            self.stage(t.execution_analytics, row)
        elif isinstance(event, Instrument):
            i = event
            self.stage(
                t.instruments,
                {
                    "instrument_id": i.instrument_id,
                    "symbol": i.symbol,
                    "venue": i.venue,
                    "asset_class": i.asset_class,
                    "base_currency": i.base_currency,
                    "quote_currency": i.quote_currency,
                    "price_increment": i.price_increment,
                    "size_increment": i.size_increment,
                    "min_quantity": i.min_quantity,
                    "max_quantity": i.max_quantity,
                    "min_notional": i.min_notional,
                    "maker_fee": i.maker_fee,
                    "taker_fee": i.taker_fee,
                },
            )
        elif isinstance(
            event, re.RiskLimitsChanged | re.TradingStateChanged | re.KillSwitchTripped | re.KillSwitchReset
        ):
            self.stage(
                t.risk_events,
                {
                    "event_id": meta["event_id"],
                    "type": type(event).__name__,
                    "scope": event.scope.value,
                    "scope_id": event.scope_id,
                    "ts_event": meta["ts_event"],
                    "payload": _json(fields),
                },
            )
        elif isinstance(event, StrategyStateChanged):
            row = dataclasses.asdict(event)
            row.update(state=event.state.value, params=json.dumps(event.params), ts_event=row.pop("ts"))
            self.stage(t.strategies, row)
        elif isinstance(event, VenueStateChanged):
            row = dataclasses.asdict(event)
            row.update(state=event.state.value, params=json.dumps(event.params), ts_event=row.pop("ts"))
            self.stage(t.venues, row)
        elif isinstance(event, Bar):
            self.stage(t.bars, bar_row(event))
        if rec.topic == ORDER_EVENTS:
            [order_id] = _order_ids(event)
            account = key_of(event)
            self.stage(
                t.order_events,
                {
                    "event_id": meta["event_id"],
                    "order_id": order_id,
                    "account_id": account,
                    "type": type(event).__name__,
                    "ts_event": meta["ts_event"],
                    "topic": rec.topic,
                    "partition": rec.partition,
                    "offset": rec.offset,
                    "payload": _json(fields),
                },
            )

    def _new_order(self, spec: OrderSpec, ts: int) -> None:
        if spec.order_id in self.orders:
            return
        self.orders[spec.order_id] = {
            "order_id": spec.order_id,
            "client_order_id": spec.client_order_id,
            "account_id": spec.account_id,
            "instrument_id": spec.instrument_id,
            "side": spec.side.value,
            "order_type": spec.order_type.value,
            "time_in_force": spec.time_in_force.value,
            "quantity": spec.quantity,
            "price": spec.price,
            "trigger_price": spec.trigger_price,
            "status": S.PENDING_NEW.value,
            "previous_status": None,
            "filled_qty": Decimal(0),
            "avg_px": None,
            "venue_order_id": None,
            "reason": None,
            "strategy_id": spec.strategy_id,
            "ts_created": ts,
            "ts_updated": ts,
            "version": 0,
            "parent_order_id": spec.parent_order_id,
        }
        self.dirty.add(spec.order_id)
        self.created.add(spec.order_id)
        for event in [*self.recall(self.parked.pop(spec.order_id, [])), *self.waiting.pop(spec.order_id, [])]:
            self._order_event(event)

    def _order_event(self, e: Any) -> None:
        if isinstance(e, oe.OrderAccepted):
            self._new_order(e.order, e.ts)
        [order_id] = _order_ids(e)
        row = self.orders.get(order_id)
        if row is None:  # its order is not projected yet (or never will be: a report for an unknown id)
            self.waiting.setdefault(order_id, []).append(e)
            return
        self.dirty.add(order_id)
        row["ts_updated"], row["version"] = e.ts, row["version"] + 1
        self._adopt(order_id, row)
        evolve(self.book, e)
        order = self.book.orders.get(order_id)
        if order is not None:
            row.update(_order_columns(order))
        elif order_id in self.book.denied:
            row["status"] = S.DENIED.value
        if isinstance(e, oe.OrderFilled | oe.OrderPartiallyFilled) and not routed(e.instrument_id):
            # (a routed order's fills mirror its children's, which are the trades: listed once)
            f = e.fill
            self.stage(
                t.fills,
                {
                    "trade_id": f.trade_id,
                    "order_id": e.order_id,
                    "account_id": e.account_id,
                    "instrument_id": e.instrument_id,
                    "side": f.side.value,
                    "quantity": f.last_qty,
                    "price": f.last_px,
                    "fee": f.fee,
                    "fee_currency": f.fee_currency,
                    "liquidity_side": f.liquidity_side.value,
                    "ts_event": e.ts,
                },
            )
        if isinstance(e, oe.OrderDenied | oe.OrderRejected | oe.OrderCanceled):
            # plain text (a denial's reason is an enum)
            row["reason"] = None if e.reason is None else str(e.reason)

    def _adopt(self, order_id: str, row: dict[str, Any]) -> None:
        """Put the order behind `row` into the batch's book (once), as the domain holds it: none
        before risk decided, a denial, or the `Order` the row's columns describe."""
        if order_id in self.book.orders or order_id in self.book.denied:
            return
        if row["status"] == S.DENIED:
            self.book.denied[order_id] = row["reason"] or ""
        elif row["status"] != S.PENDING_NEW:
            self.book.orders[order_id] = _order_of(row)

    def _mark(self, e: PnLMarked) -> None:
        instrument = e.instrument_id or ""
        self.stage(
            t.pnl,
            {
                "account_id": e.account_id,
                "instrument_id": instrument,
                "realized_pnl": e.realized_pnl,
                "unrealized_pnl": e.unrealized_pnl,
                "fees": e.fees,
                "equity": e.equity,
                "currency": e.currency,
                "mark_px": e.mark_px,
                "ts_event": e.ts,
            },
        )
        # the account's equity after the mark: a point of its history (instruments marked at one
        # instant share it; the last of them counts)
        self.stage(
            t.equity,
            {"account_id": e.account_id, "currency": e.currency, "ts_event": e.ts, "equity": e.equity},
        )
        if not e.instrument_id:
            return
        staged = self.rows.get(t.positions, {}).get((e.account_id, e.instrument_id))
        if staged is not None:
            staged.update(unrealized_pnl=e.unrealized_pnl, mark_px=e.mark_px, ts_event=e.ts)
        else:
            self.marks[(e.account_id, e.instrument_id)] = {
                "a": e.account_id,
                "i": e.instrument_id,
                "u": e.unrealized_pnl,
                "m": e.mark_px,
                "ts": e.ts,
            }


def _order_of(row: dict[str, Any]) -> Order:
    """The domain's order as an order row describes it."""
    spec = OrderSpec(
        order_id=row["order_id"],
        client_order_id=row["client_order_id"],
        account_id=row["account_id"],
        instrument_id=row["instrument_id"],
        side=OrderSide(row["side"]),
        order_type=OrderType(row["order_type"]),
        quantity=row["quantity"],
        price=row["price"],
        trigger_price=row["trigger_price"],
        time_in_force=TimeInForce(row["time_in_force"]),
        strategy_id=row["strategy_id"],
        parent_order_id=row["parent_order_id"],
    )
    status, previous = S(row["status"]), row["previous_status"]
    return Order(
        spec=spec,
        status=status,
        quantity=row["quantity"],
        price=row["price"],
        trigger_price=row["trigger_price"],
        expire_time_ns=None,
        ts_accepted=row["ts_created"],
        filled_qty=row["filled_qty"],
        avg_px=row["avg_px"],
        venue_order_id=row["venue_order_id"],
        previous_status=None if previous is None else S(previous),
        triggered=status is S.TRIGGERED,
        routed=status in _ROUTED or row["venue_order_id"] is not None,
    )


def _order_columns(order: Order) -> dict[str, Any]:
    """The order row's columns that the domain's `evolve` decides."""
    previous = order.previous_status
    return {
        "status": order.status.value,
        "previous_status": None if previous is None else previous.value,
        "quantity": order.quantity,
        "price": order.price,
        "trigger_price": order.trigger_price,
        "filled_qty": order.filled_qty,
        "avg_px": order.avg_px,
        "venue_order_id": order.venue_order_id,
    }
