"""The projector: every topic into SQL read models, exactly once.

Rows and the projector's next offsets are written in one database transaction, and the
projector starts from the stored offsets, so a crash between two batches neither loses nor
repeats anything. `rebuild` empties the read models and projects the whole log again.

Each poll reads every partition up to the end it noted at the start (one cut across topics; the
ends of the command topics noted last, so an event's command is inside any cut that holds the
event). An order event whose order row does not exist yet is kept (in `order_events`) and applied
when the row is created: nothing is dropped because it arrived before its order.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meltica.domain.control import StrategyStateChanged, VenueStateChanged
from meltica.domain.instruments import Instrument
from meltica.domain.orders import events as oe
from meltica.domain.orders.commands import SubmitOrder, SubmitOrderList
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import BalanceChanged, PnLMarked, PositionChanged
from meltica.domain.risk import events as re
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import from_record, json_default
from meltica.log.base import EventLog, Record, TopicPartition
from meltica.projections import tables as t
from meltica.topics import (
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
)

# Order events that move the status, and to what.
STATUS: dict[type, str] = {
    oe.OrderAccepted: "ACCEPTED",
    oe.OrderDenied: "DENIED",
    oe.OrderSubmitted: "SUBMITTED",
    oe.OrderRejected: "REJECTED",
    oe.OrderPartiallyFilled: "PARTIALLY_FILLED",
    oe.OrderFilled: "FILLED",
    oe.OrderCanceled: "CANCELED",
    oe.OrderExpired: "EXPIRED",
    oe.OrderTriggered: "TRIGGERED",
}
# Topics whose records create the rows other topics' events apply to: their ends are noted last.
CAUSES = frozenset({ORDER_COMMANDS})
PENDING: dict[type, str] = {
    oe.OrderPendingCancel: "PENDING_CANCEL",
    oe.OrderPendingReplace: "PENDING_REPLACE",
}
ENDS_PENDING: dict[type, str] = {
    oe.OrderCancelRejected: "PENDING_CANCEL",
    oe.OrderAmendRejected: "PENDING_REPLACE",
}


def _json(fields: dict[str, Any]) -> str:
    """The decoded record without its envelope, as JSON (decimals as exact strings)."""
    return json.dumps({k: v for k, v in fields.items() if k != "meta"}, default=json_default)


class Projector:
    """Projects the log into the read-model tables of `db`."""

    def __init__(self, log: EventLog, codec: Codec, db: Engine, *, name: str = "read-models") -> None:
        self.log = log
        self.codec = codec
        self.db = db
        self.name = name
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
            now = datetime.now(UTC)
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
            "status": "PENDING_NEW",
            "previous_status": None,
            "filled_qty": Decimal(0),
            "avg_px": None,
            "venue_order_id": None,
            "reason": None,
            "strategy_id": spec.strategy_id,
            "ts_created": ts,
            "ts_updated": ts,
            "version": 0,
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
        kind = type(e)
        if kind in STATUS:
            row["status"] = STATUS[kind]
        elif kind in PENDING:
            row["status"], row["previous_status"] = PENDING[kind], row["status"]
        elif kind in ENDS_PENDING:  # a rejection ends a request of its own kind only
            if row["status"] == ENDS_PENDING[kind] and row["previous_status"]:
                row["status"], row["previous_status"] = row["previous_status"], None
        elif kind is oe.OrderAcknowledged:
            row["venue_order_id"] = e.venue_order_id
            if row["status"] in ("SUBMITTED", "TRIGGERED"):
                row["status"] = "NEW"
        elif kind is oe.OrderReplaced:
            row.update(
                quantity=e.quantity, price=e.price, trigger_price=e.trigger_price, previous_status=None
            )
            if row["status"] == "PENDING_REPLACE":
                row["status"] = "FILLED" if row["filled_qty"] >= e.quantity else "REPLACED"
        elif kind is oe.OrderTriggerUpdated:
            row["trigger_price"] = e.trigger_price
        if isinstance(e, oe.OrderFilled | oe.OrderPartiallyFilled):
            row.update(filled_qty=e.cum_qty, avg_px=e.avg_px)
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
            row["reason"] = e.reason
        if isinstance(e, oe.OrderTriggered) and e.trigger_price is not None:
            row["trigger_price"] = e.trigger_price

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
