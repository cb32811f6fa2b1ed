"""SQLAlchemy tables of the read models (the Alembic migrations create them).

Money and quantities are exact: unconstrained NUMERIC on PostgreSQL, decimal text on SQLite
(whose NUMERIC is a float); both read back in canonical form (no trailing zeros).
Timestamps are integer nanoseconds, as in the events.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)


class ExactDecimal(TypeDecorator[Decimal]):
    """Decimal in, Decimal out, exactly, on every backend."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(asdecimal=True))  # unconstrained NUMERIC: exact

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return canonical(Decimal(value))


class PlainDecimal(Decimal):
    """A Decimal whose text is always fixed-point (`0.000000000000000001`, never `1E-18`): the one
    decimal syntax the API takes is the one it answers with."""

    __slots__ = ()

    def __str__(self) -> str:
        return format(self, "f")


def canonical(value: Decimal) -> Decimal:
    """Without trailing zeros or exponent noise: 100.020 -> 100.02, 0E-7 -> 0, 1.0 -> 1, as a
    PlainDecimal. A value beyond the decimal context (an old row) comes back as stored rather than
    failing the read."""
    try:
        if value == value.to_integral_value():
            return PlainDecimal(value.quantize(Decimal(1)))
        return PlainDecimal(value.normalize())
    except InvalidOperation:
        return PlainDecimal(value)


metadata = MetaData()
NUM = ExactDecimal

projection_offsets = Table(
    "projection_offsets",
    metadata,
    Column("projection", String(200), primary_key=True),
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("client_order_id", String(128), nullable=False),
    Column("account_id", String(128), nullable=False),
    Column("instrument_id", String(128), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(32), nullable=False),
    Column("time_in_force", String(8), nullable=False),
    Column("quantity", NUM, nullable=False),
    Column("price", NUM),
    Column("trigger_price", NUM),
    Column("status", String(32), nullable=False),
    Column("previous_status", String(32)),
    Column("filled_qty", NUM, nullable=False),
    Column("avg_px", NUM),
    Column("venue_order_id", String(128)),
    Column("reason", Text),
    Column("strategy_id", String(128)),
    Column("ts_created", BigInteger, nullable=False),
    Column("ts_updated", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("parent_order_id", String(128)),  # an OTO child's or a routed order's slice's parent
)
Index("ix_orders_account_status", orders.c.account_id, orders.c.status)
Index("ix_orders_client", orders.c.account_id, orders.c.client_order_id)
Index("ix_orders_parent", orders.c.account_id, orders.c.parent_order_id)

order_events = Table(
    "order_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("order_id", String(128), nullable=False, index=True),
    Column("account_id", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("ts_event", BigInteger, nullable=False),
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
)

fills = Table(
    "fills",
    metadata,
    Column("trade_id", String(128), primary_key=True),
    Column("order_id", String(128), nullable=False, index=True),
    Column("account_id", String(128), nullable=False),
    Column("instrument_id", String(128), nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", NUM, nullable=False),
    Column("price", NUM, nullable=False),
    Column("fee", NUM, nullable=False),
    Column("fee_currency", String(16), nullable=False),
    Column("liquidity_side", String(24), nullable=False),
    Column("ts_event", BigInteger, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("instrument_id", String(128), primary_key=True),
    Column("side", String(8), nullable=False),
    Column("quantity", NUM, nullable=False),
    Column("avg_px", NUM, nullable=False),
    Column("realized_pnl", NUM, nullable=False),
    Column("unrealized_pnl", NUM, nullable=False),
    Column("fees", NUM, nullable=False),
    Column("currency", String(16), nullable=False),
    Column("mark_px", NUM),
    Column("ts_event", BigInteger, nullable=False),
)

balances = Table(
    "balances",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("asset", String(16), primary_key=True),
    Column("total", NUM, nullable=False),
    Column("free", NUM, nullable=False),
    Column("locked", NUM, nullable=False),
    Column("ts_event", BigInteger, nullable=False),
)

pnl = Table(
    "pnl",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("instrument_id", String(128), primary_key=True),
    Column("realized_pnl", NUM, nullable=False),
    Column("unrealized_pnl", NUM, nullable=False),
    Column("fees", NUM, nullable=False),
    Column("equity", NUM, nullable=False),
    Column("currency", String(16), nullable=False),
    Column("mark_px", NUM),
    Column("ts_event", BigInteger, nullable=False),
)

equity = Table(  # an account's equity in a currency at each of its marks: the equity chart's history
    "equity",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("currency", String(16), primary_key=True),
    Column("ts_event", BigInteger, primary_key=True),
    Column("equity", NUM, nullable=False),
)

instruments = Table(
    "instruments",
    metadata,
    Column("instrument_id", String(128), primary_key=True),
    Column("symbol", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("asset_class", String(32), nullable=False),
    Column("base_currency", String(16)),
    Column("quote_currency", String(16), nullable=False),
    Column("price_increment", NUM, nullable=False),
    Column("size_increment", NUM, nullable=False),
    Column("min_quantity", NUM),
    Column("max_quantity", NUM),
    Column("min_notional", NUM),
    Column("maker_fee", NUM, nullable=False),
    Column("taker_fee", NUM, nullable=False),
)

risk_events = Table(
    "risk_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(128), nullable=False),
    Column("ts_event", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("secret_hash", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("scopes", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked", Integer, nullable=False, default=0),
    Column("accounts", Text, nullable=True),  # comma-separated; NULL: every account
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("rate", String(32), nullable=True),  # overrides the per-scope rate, e.g. 50/s
    Column("previous_secret_hash", String(128), nullable=True),  # valid until previous_valid_until
    Column("previous_valid_until", DateTime(timezone=True), nullable=True),
    Index("ix_api_keys_name", "name"),
)

backtests = Table(
    "backtests",
    metadata,
    Column("backtest_id", String(64), primary_key=True),
    Column("strategy", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("instrument_id", String(128), nullable=False),
    Column("source", Text, nullable=False),
    Column("commission", NUM, nullable=False),
    Column("fills", Integer, nullable=False),
    Column("realized_pnl", NUM, nullable=False),
    Column("open_position", NUM, nullable=False),
    Column("stats", Text, nullable=False),
    Column("equity", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

backtest_reports = Table(
    "backtest_reports",
    metadata,
    Column("backtest_id", String(64), primary_key=True),
    Column("html", Text, nullable=False),
)

backtest_jobs = Table(
    "backtest_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # queued, running, done, failed, cancelled
    Column("reason", Text, nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("processed", Integer, nullable=False),  # market-data events through the run so far
    Column("total", Integer, nullable=False),  # of the selection (0 until it is loaded)
    Column("backtest_id", String(64), nullable=True),  # the stored result, once done
    Column("submitted_by", String(128), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),  # also the running server's heartbeat
    Column("request", Text, nullable=True),  # the checked request as JSON: what a restart runs again
    Column("runner", String(64), nullable=True),  # the server running it (None: released, anyone's)
)

strategies = Table(
    "strategies",
    metadata,
    Column("strategy_id", String(64), primary_key=True),
    Column("account_id", String(128), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("instrument_id", String(128), nullable=False),
    Column("params", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("operator", String(128), nullable=False),
    Column("ts_event", BigInteger, nullable=False),
)

bars = Table(
    "bars",
    metadata,
    Column("instrument_id", String(128), primary_key=True),
    Column("width", String(32), primary_key=True),  # 1m, 15s, 4h (a spec's other widths as given)
    Column("source", String(16), primary_key=True),  # LAST (trades), MID (quote mids), BID, ...
    Column("ts_open", BigInteger, primary_key=True),
    Column("ts_close", BigInteger, nullable=False),
    Column("open", NUM, nullable=False),
    Column("high", NUM, nullable=False),
    Column("low", NUM, nullable=False),
    Column("close", NUM, nullable=False),
    Column("volume", NUM, nullable=False),
)

venues = Table(
    "venues",
    metadata,
    Column("venue", String(64), primary_key=True),
    Column("adapter", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("received", BigInteger, nullable=False),
    Column("published", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("gaps", BigInteger, nullable=False),
    Column("out_of_order", BigInteger, nullable=False),
    Column("resyncs", BigInteger, nullable=False),
    Column("ts_event", BigInteger, nullable=False),
)

execution_analytics = Table(
    "execution_analytics",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("trade_id", String(128), primary_key=True),
    Column("account_id", String(128), nullable=False),
    Column("instrument_id", String(128), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("strategy_id", String(128), nullable=True),
    Column("side", String(8), nullable=False),
    Column("arrival_mid", NUM, nullable=True),
    Column("fill_px", NUM, nullable=False),
    Column("quantity", NUM, nullable=False),
    Column("slippage_bps", NUM, nullable=True),  # positive: worse for the order
    Column("submit_to_ack_ns", BigInteger, nullable=True),
    Column("ack_to_fill_ns", BigInteger, nullable=True),
    Column("ts_event", BigInteger, nullable=False),
)
Index("ix_execution_analytics_time", execution_analytics.c.ts_event)
