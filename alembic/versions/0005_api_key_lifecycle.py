"""api keys: accounts, expiry, last use, revocation time, rate, rotation overlap

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("accounts", sa.Text()),
    ("expires_at", sa.DateTime(timezone=True)),
    ("last_used_at", sa.DateTime(timezone=True)),
    ("revoked_at", sa.DateTime(timezone=True)),
    ("rate", sa.String(length=32)),
    ("previous_secret_hash", sa.String(length=128)),
    ("previous_valid_until", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_index("ix_api_keys_name", "api_keys", ["name"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_name", table_name="api_keys")
    with op.batch_alter_table("api_keys") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
