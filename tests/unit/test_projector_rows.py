"""Rows made from domain events: the projector's shallow field dict is what `asdict` gives."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from meltica.domain.portfolio.events import ExecutionAnalyzed
from meltica.domain.values import OrderSide
from meltica.projections.projector import _shallow_row


def test_an_execution_analysis_row_holds_every_field_as_asdict_gives_it() -> None:
    event = ExecutionAnalyzed(
        "ACC-1", "BTCUSDT.SIM", "O1", "T1", "SIM", None, OrderSide.BUY,
        Decimal("100.01"), Decimal("100.02"), Decimal("0.5"), Decimal("1.0"), 1_000, None, 7,
    )  # fmt: skip
    row = _shallow_row(event)
    assert row == dataclasses.asdict(event)
    assert row["fill_px"] is event.fill_px  # the values themselves, not copies
    assert _shallow_row(event) == row  # again, from the cached field names
