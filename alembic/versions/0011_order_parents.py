"""orders.parent_order_id: the order a child order belongs to (OTO children, routed orders' slices);
filled in for the orders already projected from their kept `OrderAccepted` events

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 08:25:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("parent_order_id", sa.String(length=128), nullable=True))
        batch.create_index("ix_orders_parent", ["account_id", "parent_order_id"], unique=False)
    backfill(op.get_bind())


def backfill(conn: sa.Connection) -> None:
    """The parent of each projected order whose acceptance (kept in `order_events`) names one."""
    events = sa.table("order_events", sa.column("order_id"), sa.column("type"), sa.column("payload"))
    orders = sa.table("orders", sa.column("order_id"), sa.column("parent_order_id"))
    accepted = conn.execute(
        sa.select(events.c.order_id, events.c.payload).where(
            events.c.type == "OrderAccepted", events.c.payload.like('%"parent_order_id": "%')
        )
    )
    parents = [
        {"child": order_id, "parent": parent}
        for order_id, payload in accepted
        if (parent := json.loads(payload)["order"].get("parent_order_id"))
    ]
    if parents:
        conn.execute(
            orders.update()
            .where(orders.c.order_id == sa.bindparam("child"))
            .values(parent_order_id=sa.bindparam("parent")),
            parents,
        )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_parent")
        batch.drop_column("parent_order_id")
