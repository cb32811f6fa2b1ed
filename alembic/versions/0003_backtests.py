"""backtests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:27:13.462600
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meltica.projections.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "backtests",
        sa.Column("backtest_id", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("instrument_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("commission", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.Column("realized_pnl", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("open_position", meltica.projections.tables.ExactDecimal(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.Column("equity", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("backtest_id"),
    )


def downgrade() -> None:

    op.drop_table("backtests")
