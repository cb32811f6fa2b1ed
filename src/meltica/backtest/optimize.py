"""Parameter sweeps (grid and random) across processes, and walk-forward analysis."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meltica.backtest.engine import run_backtest
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.strategies.catalog import build

Data = Sequence[Bar | QuoteTick | TradeTick]


@dataclass(frozen=True)
class Trial:
    params: dict[str, str]
    total_return: float
    sharpe: float
    max_drawdown: float
    trades: int
    realized_pnl: Decimal


def grid(space: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every combination of the values in `space`."""
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]


def sample(space: Mapping[str, Sequence[str]], n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` distinct random combinations (all of them if there are fewer)."""
    combos = grid(space)
    return random.Random(seed).sample(combos, min(n, len(combos)))  # nosec B311 # parameter search


def _trial(args: tuple[str, str, Instrument, dict[str, str], Data, Decimal]) -> Trial | None:
    strategy, instrument_id, instrument, params, data, commission = args
    try:
        chosen = build(strategy, instrument_id, params)
    except ValueError:
        return None  # an impossible combination (say fast >= slow): skipped
    result = run_backtest(data, instrument, chosen, commission=commission)
    s = result.stats
    return Trial(params, s.total_return, s.sharpe, s.max_drawdown, s.trades, result.realized_pnl)


def sweep(
    strategy: str,
    instrument: Instrument,
    data: Data,
    combos: Sequence[dict[str, str]],
    *,
    commission: Decimal = Decimal(0),
    workers: int = 2,
) -> list[Trial]:
    """Backtest every combination (in `workers` processes); best total return first."""
    jobs = [(strategy, instrument.instrument_id, instrument, dict(c), list(data), commission) for c in combos]
    if workers <= 1:
        trials = [_trial(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            trials = list(pool.map(_trial, jobs))
    return sorted(
        (t for t in trials if t is not None), key=lambda t: (-t.total_return, sorted(t.params.items()))
    )


@dataclass(frozen=True)
class WalkForwardStep:
    in_sample: tuple[int, int]
    out_of_sample: tuple[int, int]
    params: dict[str, str]
    in_sample_return: float
    out_of_sample_return: float
    out_of_sample_pnl: Decimal


def walk_forward(
    strategy: str,
    instrument: Instrument,
    data: Data,
    combos: Sequence[dict[str, str]],
    *,
    in_sample: int,
    out_of_sample: int,
    commission: Decimal = Decimal(0),
    workers: int = 2,
) -> list[WalkForwardStep]:
    """Rolling windows: optimise on `in_sample` events, test the winner on the next `out_of_sample`."""
    steps = []
    start = 0
    while start + in_sample + out_of_sample <= len(data):
        train = data[start : start + in_sample]
        test = data[start + in_sample : start + in_sample + out_of_sample]
        best = sweep(strategy, instrument, train, combos, commission=commission, workers=workers)
        if not best:
            break
        chosen = build(strategy, instrument.instrument_id, best[0].params)
        result = run_backtest(test, instrument, chosen, commission=commission)
        steps.append(
            WalkForwardStep(
                (start, start + in_sample),
                (start + in_sample, start + in_sample + out_of_sample),
                best[0].params,
                best[0].total_return,
                result.stats.total_return,
                result.realized_pnl,
            )
        )
        start += out_of_sample
    return steps


def summary(steps: Sequence[WalkForwardStep]) -> dict[str, Any]:
    """The combined out-of-sample result of a walk-forward analysis."""
    combined = 1.0
    for step in steps:
        combined *= 1 + step.out_of_sample_return
    return {
        "windows": len(steps),
        "out_of_sample_return": combined - 1,
        "out_of_sample_pnl": str(sum((s.out_of_sample_pnl for s in steps), Decimal(0))),
    }
