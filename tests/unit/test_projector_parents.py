"""The orders' `parent_order_id` column: the projector fills it from the accepted spec, and
migration 0011 fills it in for the orders projected before it existed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, select

from meltica.domain.orders import events as oe
from meltica.domain.orders.commands import SubmitOrderList
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import ContingencyType, OrderSide, OrderType
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.projections import migrations
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS, topic_specs
from tests.read_models import FreshReadModels

ACCOUNT, INSTRUMENT = "ACC-1", "BTCUSDT.SIM"


def spec(order_id: str, parent: str | None = None) -> OrderSpec:
    return OrderSpec(
        order_id,
        order_id,
        ACCOUNT,
        INSTRUMENT,
        OrderSide.BUY if parent is None else OrderSide.SELL,
        OrderType.LIMIT,
        Decimal(1),
        Decimal(100),
        contingency_type=ContingencyType.OTO,
        order_list_id="L1",
        parent_order_id=parent,
    )


def project(db: Engine, *specs: OrderSpec) -> None:
    """The orders accepted as one list, projected into `db`."""
    log = MemoryLog()
    for topic in topic_specs(1):
        log.create_topic(topic)
    publisher = Publisher(log, Codec())
    publisher.publish(ORDER_COMMANDS, SubmitOrderList("L1", ACCOUNT, specs, 10))
    for s in specs:
        publisher.publish(ORDER_EVENTS, oe.OrderAccepted(s, 10))
    Projector(log, publisher.codec, db).catch_up()


def parents(db: Engine) -> dict[str, str | None]:
    with db.connect() as conn:
        return {r.order_id: r.parent_order_id for r in conn.execute(select(t.orders))}


def test_the_projector_keeps_the_accepted_specs_parent() -> None:
    db = create_engine("sqlite://")
    t.metadata.create_all(db)
    project(db, spec("entry"), spec("tp", parent="entry"), spec("sl", parent="entry"))
    assert parents(db) == {"entry": None, "tp": "entry", "sl": "entry"}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0011_fills_in_the_parents_of_projected_orders(
    backend: str, tmp_path: Path, fresh_read_models: FreshReadModels, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = fresh_read_models.sqlite(tmp_path / "rm.db")
    else:
        url = fresh_read_models.postgres(request.getfixturevalue("database_url"))
    db = create_engine(url)
    try:
        project(db, spec("entry"), spec("tp", parent="entry"))
        migrations.downgrade(url, "0010")  # as projected before the column existed
        columns = {c["name"] for c in inspect(db).get_columns("orders")}
        assert "parent_order_id" not in columns
        db.dispose()
        migrations.upgrade(url)
        assert parents(db) == {"entry": None, "tp": "entry"}
        indexes = {i["name"]: i["column_names"] for i in inspect(db).get_indexes("orders")}
        assert indexes["ix_orders_parent"] == ["account_id", "parent_order_id"]
    finally:
        db.dispose()
