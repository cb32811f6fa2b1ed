"""backtest jobs keep their full request and the server running them, so a restart runs them again

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backtest_jobs") as batch:
        batch.add_column(sa.Column("request", sa.Text(), nullable=True))
        batch.add_column(sa.Column("runner", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backtest_jobs") as batch:
        batch.drop_column("runner")
        batch.drop_column("request")
