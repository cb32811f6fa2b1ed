"""The `equity` read model: every mark gives the account's equity at its instant, exact (instruments
marked at one instant share a point: the last counts), and a rebuild writes the same points again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select

from meltica.domain.portfolio.events import PnLMarked
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.projections import migrations
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.topics import PORTFOLIO_EVENTS, topic_specs

T0 = 1_700_000_000 * 10**9


def mark(equity: str, ts: int, instrument: str | None = None) -> PnLMarked:
    return PnLMarked(
        "ACC-1", Decimal("1.5"), Decimal("-0.25"), Decimal("0.1"), Decimal(equity), "USDT", ts, instrument
    )


def test_account_marks_are_the_equity_history_and_a_rebuild_rewrites_them(tmp_path: Path) -> None:
    log = MemoryLog()
    for spec in topic_specs(1):
        log.create_topic(spec)
    codec = Codec()
    publisher = Publisher(log, codec)
    for i, value in enumerate(("1000", "1000.000000000000000001", "999.5")):
        publisher.publish(PORTFOLIO_EVENTS, mark("1", T0 + i, "ETHUSDT.SIM"))  # marked first at that instant
        publisher.publish(PORTFOLIO_EVENTS, mark(value, T0 + i, "BTCUSDT.SIM"))
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    db = create_engine(url)
    projector = Projector(log, codec, db)
    projector.catch_up()

    def rows() -> list[dict[str, Any]]:
        with db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(t.equity).order_by(t.equity.c.ts_event))]

    first = rows()
    assert [(r["ts_event"], str(r["equity"])) for r in first] == [
        (T0, "1000"),
        (T0 + 1, "1000.000000000000000001"),
        (T0 + 2, "999.5"),
    ]
    assert {r["currency"] for r in first} == {"USDT"}
    projector.rebuild()
    assert rows() == first
