"""The `execution_analytics` read model: each fill's `ExecutionAnalyzed` is one row with exact
decimals, and replaying the log (a rebuild, or a second projection) neither doubles nor changes it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select

from meltica.domain.values import OrderSide, OrderType
from meltica.projections import migrations
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from tests.e2e.stack import BTC, Stack


def rows(db: Any) -> list[dict[str, Any]]:
    with db.connect() as conn:
        stmt = select(t.execution_analytics).order_by(t.execution_analytics.c.ts_event)
        return [dict(r._mapping) for r in conn.execute(stmt)]


def test_fills_land_once_and_a_replay_changes_nothing(tmp_path: Path) -> None:
    s = Stack()
    s.setup(BTC)  # quotes 100.00 / 100.02: mid 100.01
    buy = s.submit(OrderSide.BUY, qty="1", price=None, order_type=OrderType.MARKET, strategy_id="S-1")
    sell = s.submit(OrderSide.SELL, qty="2", price=None, order_type=OrderType.MARKET)
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    db = create_engine(url)
    projector = Projector(s.log, s.codec, db)
    projector.catch_up()
    before = rows(db)
    assert [(r["order_id"], r["side"], r["strategy_id"], r["quantity"]) for r in before] == [
        (buy.order_id, "BUY", "S-1", Decimal("1")),
        (sell.order_id, "SELL", None, Decimal("2")),
    ]
    assert [(r["arrival_mid"], r["fill_px"], r["slippage_bps"]) for r in before] == [
        (Decimal("100.01"), Decimal("100.02"), Decimal("0.9999")),  # bought at the ask
        (Decimal("100.01"), Decimal("100"), Decimal("0.9999")),  # sold at the bid: worse too
    ]
    assert all(r["venue"] == "SIM" and r["submit_to_ack_ns"] is not None for r in before)
    assert projector.rebuild() > 0
    assert rows(db) == before
    Projector(s.log, s.codec, db, name="again").catch_up()  # its own offsets: every record again
    assert rows(db) == before
    db.dispose()
