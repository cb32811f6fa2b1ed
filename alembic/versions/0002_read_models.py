"""read models

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:54:58.955577
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meltica.projections.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("scopes", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "balances",
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("total", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("free", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("locked", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "asset"),
    )
    op.create_table(
        "fills",
        sa.Column("trade_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("instrument_id", sa.String(length=128), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("quantity", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("price", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("fee", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("fee_currency", sa.String(length=16), nullable=False),
        sa.Column("liquidity_side", sa.String(length=24), nullable=False),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("trade_id"),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_order_id"), ["order_id"], unique=False)

    op.create_table(
        "instruments",
        sa.Column("instrument_id", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("asset_class", sa.String(length=32), nullable=False),
        sa.Column("base_currency", sa.String(length=16), nullable=True),
        sa.Column("quote_currency", sa.String(length=16), nullable=False),
        sa.Column("price_increment", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("size_increment", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("min_quantity", meltica.projections.tables.ExactDecimal(), nullable=True),
        sa.Column("max_quantity", meltica.projections.tables.ExactDecimal(), nullable=True),
        sa.Column("min_notional", meltica.projections.tables.ExactDecimal(), nullable=True),
        sa.Column("maker_fee", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("taker_fee", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint("instrument_id"),
    )
    op.create_table(
        "order_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_events_order_id"), ["order_id"], unique=False)

    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("instrument_id", sa.String(length=128), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("order_type", sa.String(length=32), nullable=False),
        sa.Column("time_in_force", sa.String(length=8), nullable=False),
        sa.Column("quantity", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("price", meltica.projections.tables.ExactDecimal(), nullable=True),
        sa.Column("trigger_price", meltica.projections.tables.ExactDecimal(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("previous_status", sa.String(length=32), nullable=True),
        sa.Column("filled_qty", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("avg_px", meltica.projections.tables.ExactDecimal(), nullable=True),
        sa.Column("venue_order_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("strategy_id", sa.String(length=128), nullable=True),
        sa.Column("ts_created", sa.BigInteger(), nullable=False),
        sa.Column("ts_updated", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_account_status", ["account_id", "status"], unique=False)
        batch_op.create_index("ix_orders_client", ["account_id", "client_order_id"], unique=False)

    op.create_table(
        "pnl",
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("instrument_id", sa.String(length=128), nullable=False),
        sa.Column("realized_pnl", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("unrealized_pnl", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("fees", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("equity", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("mark_px", meltica.projections.tables.ExactDecimal(), nullable=True),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "instrument_id"),
    )
    op.create_table(
        "positions",
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("instrument_id", sa.String(length=128), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("quantity", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("avg_px", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("realized_pnl", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("unrealized_pnl", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("fees", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("mark_px", meltica.projections.tables.ExactDecimal(), nullable=True),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "instrument_id"),
    )
    op.create_table(
        "risk_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=128), nullable=False),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )


def downgrade() -> None:

    op.drop_table("risk_events")
    op.drop_table("positions")
    op.drop_table("pnl")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_client")
        batch_op.drop_index("ix_orders_account_status")

    op.drop_table("orders")
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_events_order_id"))

    op.drop_table("order_events")
    op.drop_table("instruments")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_order_id"))

    op.drop_table("fills")
    op.drop_table("balances")
    op.drop_table("api_keys")
