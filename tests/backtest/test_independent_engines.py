"""Cross-check against independent engines: the SMA(10)/SMA(30) rules on 28,761 FXCM bars give
the same fills, realized PnL and fees in Meltica, backtrader and backtesting.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from benchmarks.engines.reference import run_backtesting_py, run_backtrader

from tests.backtest.test_sma_cross import DATA, full_year

pytest.importorskip(
    "backtrader", reason="the bench extra (pip install -e '.[bench]') holds the other engines"
)
pytest.importorskip(
    "backtesting", reason="the bench extra (pip install -e '.[bench]') holds the other engines"
)

CENT = Decimal("0.001")


def meltica(commission: Decimal) -> dict:  # type: ignore[type-arg]
    """Meltica's run of the year (shared with test_sma_cross.py: one run per commission)."""
    bars, result = full_year(commission)
    index = {bar.ts_open: i for i, bar in enumerate(bars)}
    fills = [(index[ts], f.side.value, int(f.last_qty), f.last_px) for ts, f in result.fills]
    return {
        "fills": fills,
        "gross": result.realized_pnl,
        "fees": result.stats.fees,
        "open": result.open_position,
    }


@pytest.mark.parametrize("commission", ["0", "0.001"], ids=["no-commission", "0.1%"])
@pytest.mark.parametrize("engine", [run_backtrader, run_backtesting_py], ids=["backtrader", "backtesting.py"])
def test_same_fills_pnl_and_fees(engine, commission: str) -> None:  # type: ignore[no-untyped-def]
    ours = meltica(Decimal(commission))
    theirs = engine(DATA, float(commission))
    assert len(ours["fills"]) > 2000
    assert sorted(ours["fills"]) == sorted(theirs["fills"])
    assert ours["gross"] == Decimal(str(float(theirs["gross"]))).quantize(CENT)
    assert ours["fees"].quantize(CENT) == Decimal(str(float(theirs["fees"]))).quantize(CENT)
