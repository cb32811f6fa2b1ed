"""Backtest results as read models (`backtests`, their HTML reports in `backtest_reports`), served
by `/v1/backtests`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert

from meltica.backtest.engine import BacktestResult
from meltica.projections.tables import backtest_reports, backtests


def save(
    db: Engine,
    result: BacktestResult,
    *,
    strategy: str,
    params: dict[str, str],
    instrument_id: str,
    source: str,
    commission: Decimal,
    report: str | None = None,
) -> str:
    """Store a result (and its HTML `report`, if given); returns its id. The equity curve is kept
    at up to 1,000 points."""
    backtest_id = str(uuid.uuid4())
    equity = result.stats.equity
    step = max(1, len(equity) // 1000)
    curve = [[ts, str(value)] for ts, value in equity[::step]]
    with db.begin() as conn:
        conn.execute(
            insert(backtests).values(
                backtest_id=backtest_id,
                strategy=strategy,
                params=json.dumps(params),
                instrument_id=instrument_id,
                source=source,
                commission=commission,
                fills=len(result.fills),
                realized_pnl=result.realized_pnl,
                open_position=result.open_position,
                stats=json.dumps(result.stats.summary()),
                equity=json.dumps(curve),
                created_at=datetime.now(UTC),
            )
        )
        if report is not None:
            conn.execute(insert(backtest_reports).values(backtest_id=backtest_id, html=report))
    return backtest_id


def as_document(row: dict[str, Any], *, with_equity: bool) -> dict[str, Any]:
    """A stored backtest as the API shows it."""
    doc = {k: v for k, v in row.items() if k not in ("params", "stats", "equity")}
    doc["params"] = json.loads(row["params"])
    doc["stats"] = json.loads(row["stats"])
    if with_equity:
        doc["equity"] = json.loads(row["equity"])
    return doc
