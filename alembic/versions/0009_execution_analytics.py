"""execution_analytics: one row per fill's `ExecutionAnalyzed` (arrival mid, slippage, latencies)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meltica.projections.tables import ExactDecimal

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "execution_analytics",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("trade_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("instrument_id", sa.String(length=128), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("strategy_id", sa.String(length=128), nullable=True),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("arrival_mid", ExactDecimal(), nullable=True),
        sa.Column("fill_px", ExactDecimal(), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("slippage_bps", ExactDecimal(), nullable=True),
        sa.Column("submit_to_ack_ns", sa.BigInteger(), nullable=True),
        sa.Column("ack_to_fill_ns", sa.BigInteger(), nullable=True),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "trade_id"),
    )
    op.create_index("ix_execution_analytics_time", "execution_analytics", ["ts_event"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_execution_analytics_time", table_name="execution_analytics")
    op.drop_table("execution_analytics")
