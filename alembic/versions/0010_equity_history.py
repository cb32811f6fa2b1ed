"""equity: an account's equity at each of its marks (the history behind the UI's equity chart)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meltica.projections.tables import ExactDecimal

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "equity",
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.Column("equity", ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "currency", "ts_event"),
    )


def downgrade() -> None:
    op.drop_table("equity")
