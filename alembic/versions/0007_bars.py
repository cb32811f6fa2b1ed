"""bars: the closed OHLCV bars of the `bars` processor (and replayed bar data), per width and source

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meltica.projections.tables import ExactDecimal

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bars",
        sa.Column("instrument_id", sa.String(length=128), nullable=False),
        sa.Column("width", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("ts_open", sa.BigInteger(), nullable=False),
        sa.Column("ts_close", sa.BigInteger(), nullable=False),
        sa.Column("open", ExactDecimal(), nullable=False),
        sa.Column("high", ExactDecimal(), nullable=False),
        sa.Column("low", ExactDecimal(), nullable=False),
        sa.Column("close", ExactDecimal(), nullable=False),
        sa.Column("volume", ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint("instrument_id", "width", "source", "ts_open"),
    )


def downgrade() -> None:
    op.drop_table("bars")
