"""The projector: every topic into SQL read models, exactly once.

Rows and the projector's next offsets are written in one database transaction, and the
projector starts from the stored offsets, so a crash between two batches neither loses nor
repeats anything. `rebuild` empties the read models and projects the whole log again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meltica.domain.instruments import Instrument
from meltica.domain.orders import events as oe
from meltica.domain.orders.commands import SubmitOrder, SubmitOrderList
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import BalanceChanged, PnLMarked, PositionChanged
from meltica.domain.risk import events as re
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import from_record, to_record
from meltica.log.base import EventLog, Record, TopicPartition
from meltica.projections import tables as t
from meltica.topics import INSTRUMENTS, ORDER_COMMANDS, ORDER_EVENTS, PORTFOLIO_EVENTS, RISK_EVENTS

TOPICS = (INSTRUMENTS, ORDER_COMMANDS, ORDER_EVENTS, PORTFOLIO_EVENTS, RISK_EVENTS)
READ_MODELS = (
    t.orders,
    t.order_events,
    t.fills,
    t.positions,
    t.balances,
    t.pnl,
    t.instruments,
    t.risk_events,
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
PENDING: dict[type, str] = {
    oe.OrderPendingCancel: "PENDING_CANCEL",
    oe.OrderPendingReplace: "PENDING_REPLACE",
}


def _json(event: Any) -> str:
    _, record = to_record(event, {})
    record.pop("meta")
    return json.dumps(
        record,
        default=lambda v: str(v) if isinstance(v, Decimal) else v.value if isinstance(v, Enum) else None,
    )


def upsert(conn: Connection, table: Table, values: dict[str, Any]) -> None:
    """Insert or replace by primary key, on PostgreSQL and SQLite."""
    keys = [c.name for c in table.primary_key.columns]
    stmt = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table).values(**values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}
        )
    )


class Projector:
    """Projects the log into the read-model tables of `db`."""

    def __init__(self, log: EventLog, codec: Codec, db: Engine, *, name: str = "read-models") -> None:
        self.log = log
        self.codec = codec
        self.db = db
        self.name = name
        self._positions: dict[TopicPartition, int] | None = None
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
        batch: list[Record] = []
        ends = self.log.end_offsets(list(self._positions))
        for tp, pos in self._positions.items():
            if ends[tp] > pos:
                batch += self.log.read(tp.topic, tp.partition, pos, max_records)
        if not batch:
            return 0
        batch.sort(key=lambda r: (r.seq, r.topic, r.partition, r.offset))
        positions = dict(self._positions)
        with self.db.begin() as conn:
            for rec in batch:
                positions[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
                try:
                    name, fields = self.codec.decode_record(rec)
                    event = from_record(name, fields)
                except (MelticaError, KeyError, TypeError, ValueError):
                    self.skipped += 1  # the runtime dead-letters what does not decode
                    continue
                self._apply(conn, rec, fields["meta"], event)
            now = datetime.now(UTC)
            for tp, off in positions.items():
                if off != self._positions.get(tp):
                    upsert(
                        conn,
                        t.projection_offsets,
                        {
                            "projection": self.name,
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "next_offset": off,
                            "updated_at": now,
                        },
                    )
        self._positions = positions
        self.projected += len(batch)
        return len(batch)

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
        self._positions = None
        return self.catch_up()

    # -- events to rows ---------------------------------------------------------------------------
    def _apply(self, conn: Connection, rec: Record, meta: dict[str, Any], event: Any) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(conn, rec, meta, event)
        if rec.topic == ORDER_EVENTS:
            order_id = event.order.order_id if isinstance(event, oe.OrderAccepted) else event.order_id
            account = event.order.account_id if isinstance(event, oe.OrderAccepted) else event.account_id
            row = {
                "event_id": meta["event_id"],
                "order_id": order_id,
                "account_id": account,
                "type": type(event).__name__,
                "ts_event": meta["ts_event"],
                "topic": rec.topic,
                "partition": rec.partition,
                "offset": rec.offset,
                "payload": _json(event),
            }
            upsert(conn, t.order_events, row)


def _new_order(conn: Connection, spec: OrderSpec, status: str, ts: int) -> None:
    exists = conn.execute(select(t.orders.c.status).where(t.orders.c.order_id == spec.order_id)).first()
    if exists is not None:
        return
    conn.execute(
        insert(t.orders).values(
            order_id=spec.order_id,
            client_order_id=spec.client_order_id,
            account_id=spec.account_id,
            instrument_id=spec.instrument_id,
            side=spec.side.value,
            order_type=spec.order_type.value,
            time_in_force=spec.time_in_force.value,
            quantity=spec.quantity,
            price=spec.price,
            trigger_price=spec.trigger_price,
            status=status,
            filled_qty=Decimal(0),
            strategy_id=spec.strategy_id,
            ts_created=ts,
            ts_updated=ts,
            version=0,
        )
    )


def _on_submit(
    conn: Connection, rec: Record, meta: dict[str, Any], cmd: SubmitOrder | SubmitOrderList
) -> None:
    specs = [cmd.order] if isinstance(cmd, SubmitOrder) else list(cmd.orders)
    for spec in specs:
        _new_order(conn, spec, "PENDING_NEW", meta["ts_event"])


def _on_order_event(conn: Connection, rec: Record, meta: dict[str, Any], e: Any) -> None:
    if isinstance(e, oe.OrderAccepted):
        _new_order(conn, e.order, "PENDING_NEW", e.ts)
        order_id = e.order.order_id
    else:
        order_id = e.order_id
    row = conn.execute(select(t.orders).where(t.orders.c.order_id == order_id)).first()
    if row is None:
        return  # an order this projection never saw submitted (e.g. rejected for an unknown id)
    values: dict[str, Any] = {"ts_updated": e.ts, "version": row.version + 1}
    kind = type(e)
    if kind in STATUS:
        values["status"] = STATUS[kind]
    elif kind in PENDING:
        values["status"], values["previous_status"] = PENDING[kind], row.status
    elif kind in (oe.OrderCancelRejected, oe.OrderAmendRejected):
        if row.status in PENDING.values() and row.previous_status:
            values["status"], values["previous_status"] = row.previous_status, None
    elif kind is oe.OrderAcknowledged:
        values["venue_order_id"] = e.venue_order_id
        if row.status in ("SUBMITTED", "TRIGGERED"):
            values["status"] = "NEW"
    elif kind is oe.OrderReplaced:
        values.update(quantity=e.quantity, price=e.price, trigger_price=e.trigger_price, previous_status=None)
        if row.status == "PENDING_REPLACE":
            values["status"] = "FILLED" if row.filled_qty >= e.quantity else "REPLACED"
    elif kind is oe.OrderTriggerUpdated:
        values["trigger_price"] = e.trigger_price
    if isinstance(e, oe.OrderFilled | oe.OrderPartiallyFilled):
        values.update(filled_qty=e.cum_qty, avg_px=e.avg_px)
        f = e.fill
        upsert(
            conn,
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
        values["reason"] = e.reason
    if isinstance(e, oe.OrderTriggered) and e.trigger_price is not None:
        values["trigger_price"] = e.trigger_price
    conn.execute(update(t.orders).where(t.orders.c.order_id == order_id).values(**values))


def _on_position(conn: Connection, rec: Record, meta: dict[str, Any], e: PositionChanged) -> None:
    upsert(
        conn,
        t.positions,
        {
            "account_id": e.account_id,
            "instrument_id": e.instrument_id,
            "side": e.side.value,
            "quantity": e.quantity,
            "avg_px": e.avg_px,
            "realized_pnl": e.realized_pnl,
            "unrealized_pnl": e.unrealized_pnl,
            "fees": e.fees,
            "currency": e.currency,
            "mark_px": e.last_px,
            "ts_event": e.ts,
        },
    )


def _on_balance(conn: Connection, rec: Record, meta: dict[str, Any], e: BalanceChanged) -> None:
    upsert(
        conn,
        t.balances,
        {
            "account_id": e.account_id,
            "asset": e.asset,
            "total": e.total,
            "free": e.free,
            "locked": e.locked,
            "ts_event": e.ts,
        },
    )


def _on_mark(conn: Connection, rec: Record, meta: dict[str, Any], e: PnLMarked) -> None:
    instrument = e.instrument_id or ""
    upsert(
        conn,
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
    if e.instrument_id:
        conn.execute(
            update(t.positions)
            .where(t.positions.c.account_id == e.account_id, t.positions.c.instrument_id == e.instrument_id)
            .values(unrealized_pnl=e.unrealized_pnl, mark_px=e.mark_px, ts_event=e.ts)
        )


def _on_instrument(conn: Connection, rec: Record, meta: dict[str, Any], i: Instrument) -> None:
    upsert(
        conn,
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


def _on_risk(conn: Connection, rec: Record, meta: dict[str, Any], e: Any) -> None:
    upsert(
        conn,
        t.risk_events,
        {
            "event_id": meta["event_id"],
            "type": type(e).__name__,
            "scope": e.scope.value,
            "scope_id": e.scope_id,
            "ts_event": meta["ts_event"],
            "payload": _json(e),
        },
    )


_HANDLERS: dict[type, Callable[..., None]] = {
    SubmitOrder: _on_submit,
    SubmitOrderList: _on_submit,
    **dict.fromkeys(oe.ORDER_EVENT_TYPES, _on_order_event),
    PositionChanged: _on_position,
    BalanceChanged: _on_balance,
    PnLMarked: _on_mark,
    Instrument: _on_instrument,
    re.RiskLimitsChanged: _on_risk,
    re.TradingStateChanged: _on_risk,
    re.KillSwitchTripped: _on_risk,
    re.KillSwitchReset: _on_risk,
}
