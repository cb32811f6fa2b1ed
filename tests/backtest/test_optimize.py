"""Parameter sweeps and walk-forward analysis."""

from __future__ import annotations

from meltica.backtest import optimize
from tests.backtest.test_strategies import BARS, USDJPY


def test_grid_and_random_spaces() -> None:
    space = {"fast": ["5", "10"], "slow": ["20", "30", "60"]}
    assert len(optimize.grid(space)) == 6
    picked = optimize.sample(space, 4, seed=1)
    assert len(picked) == 4
    assert len({tuple(sorted(p.items())) for p in picked}) == 4
    assert picked == optimize.sample(space, 4, seed=1)


def test_sweep_ranks_by_return_and_skips_impossible_combinations() -> None:
    combos = optimize.grid({"fast": ["5", "30"], "slow": ["20"]})  # fast=30 >= slow is refused
    trials = optimize.sweep("sma-cross", USDJPY, BARS[:1500], combos, workers=2)
    assert [t.params for t in trials] == [{"fast": "5", "slow": "20"}]
    assert trials[0].trades > 0


def test_walk_forward_windows_roll_forward() -> None:
    combos = optimize.grid({"fast": ["5", "10"], "slow": ["20"]})
    steps = optimize.walk_forward(
        "sma-cross", USDJPY, BARS[:2000], combos, in_sample=800, out_of_sample=400, workers=1
    )
    assert [s.out_of_sample for s in steps] == [(800, 1200), (1200, 1600), (1600, 2000)]
    assert all(s.params in combos for s in steps)
    assert optimize.summary(steps)["windows"] == 3
