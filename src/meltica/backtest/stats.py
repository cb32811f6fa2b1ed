"""Statistics of a backtest from its fills and the marks it ran on. Money is exact; ratios are floats."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meltica.domain.orders.events import Fill
from meltica.domain.values import ZERO

NS_PER_YEAR = 365.25 * 86_400 * 1e9


@dataclass
class Stats:
    starting_equity: Decimal
    final_equity: Decimal
    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_duration_ns: int
    trades: int
    win_rate: float
    profit_factor: float
    exposure: float
    turnover: float
    fees: Decimal
    realized_pnl: Decimal
    open_position: Decimal
    unrealized_pnl: Decimal
    average_slippage_bps: float
    equity: list[tuple[int, Decimal]] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.__dict__.items() if k != "equity"
        }


def compute(
    marks: list[tuple[int, Decimal]],
    fills: list[tuple[int, Fill]],
    starting_equity: Decimal,
    arrival: dict[str, Decimal] | None = None,
) -> Stats:
    """Equity at every mark (bar close, quote mid or trade price), and the usual statistics over it.

    `fills` are (ts, fill) in order; realized PnL is FIFO-free here since the position is
    tracked as cash + quantity * mark; `arrival` maps trade ids to the reference price
    used for slippage (default: none, slippage 0)."""
    cash, position, fees, realized = starting_equity, ZERO, ZERO, ZERO
    entry_value = ZERO  # signed cost of the open position
    wins, losses, trades, winners = ZERO, ZERO, 0, 0
    traded = ZERO
    slippages: list[float] = []
    fi = 0
    equity: list[tuple[int, Decimal]] = []
    in_market = 0
    for ts_mark, mark in marks:
        while fi < len(fills) and fills[fi][0] <= ts_mark:
            _, f = fills[fi]
            fi += 1
            signed = f.last_qty * f.side.sign
            cash -= signed * f.last_px + f.fee
            fees += f.fee
            traded += f.last_qty * f.last_px
            if arrival and f.trade_id in arrival and arrival[f.trade_id]:
                ref = arrival[f.trade_id]
                slippages.append(float((f.last_px - ref) / ref * 10_000 * f.side.sign))
            if position != ZERO and (position > 0) != (signed > 0):  # closing (part of) the position
                closing = min(abs(signed), abs(position))
                avg = entry_value / position
                pnl = (f.last_px - avg) * closing * (1 if position > 0 else -1)
                realized += pnl
                trades += 1
                winners += pnl > 0
                wins, losses = (wins + pnl, losses) if pnl > 0 else (wins, losses - pnl)
                entry_value -= avg * closing * (1 if position > 0 else -1)
                rest = abs(signed) - closing
                position += signed
                if rest > 0:
                    entry_value = f.last_px * position
            else:
                position += signed
                entry_value += signed * f.last_px
        equity.append((ts_mark, cash + position * mark))
        in_market += position != ZERO
    last_close = marks[-1][1] if marks else ZERO
    curve = _curve(equity, starting_equity)
    values = [float(e) for _, e in equity]
    mean_equity = statistics.fmean(values) if values else 1.0
    return Stats(
        starting_equity=starting_equity,
        final_equity=curve.pop("final_equity"),
        **curve,
        trades=trades,
        win_rate=winners / trades if trades else 0.0,
        profit_factor=float(wins / losses) if losses else math.inf if wins else 0.0,
        exposure=in_market / len(marks) if marks else 0.0,
        turnover=float(traded) / mean_equity if mean_equity else 0.0,
        fees=fees,
        realized_pnl=realized,
        open_position=position,
        unrealized_pnl=(last_close * position - entry_value) if position else ZERO,
        average_slippage_bps=statistics.fmean(slippages) if slippages else 0.0,
        equity=equity,
    )


def _curve(equity: list[tuple[int, Decimal]], starting_equity: Decimal) -> dict[str, Any]:
    """Return, risk and drawdown statistics of an equity curve."""
    final = equity[-1][1] if equity else starting_equity
    values = [float(e) for _, e in equity]
    returns = [b / a - 1 for a, b in itertools.pairwise(values) if a]
    years = (equity[-1][0] - equity[0][0]) / NS_PER_YEAR if len(equity) > 1 else 0
    per_year = len(returns) / years if years else 0
    mean = statistics.fmean(returns) if returns else 0.0
    sd = statistics.pstdev(returns) if len(returns) > 1 else 0.0
    downside = math.sqrt(statistics.fmean([min(r, 0.0) ** 2 for r in returns])) if returns else 0.0
    peak, max_dd, dd_start, max_dd_ns = values[0] if values else 0.0, 0.0, 0, 0
    for (ts, _), v in zip(equity, values, strict=True):
        if v >= peak:
            peak, dd_start = v, ts
        elif peak:
            max_dd = max(max_dd, 1 - v / peak)
            max_dd_ns = max(max_dd_ns, ts - dd_start)
    total = float(final / starting_equity - 1) if starting_equity else 0.0
    return {
        "final_equity": final,
        "total_return": total,
        "cagr": (1 + total) ** (1 / years) - 1 if years and total > -1 else 0.0,
        "sharpe": mean / sd * math.sqrt(per_year) if sd else 0.0,
        "sortino": mean / downside * math.sqrt(per_year) if downside else 0.0,
        "max_drawdown": max_dd,
        "max_drawdown_duration_ns": max_dd_ns,
    }


def portfolio(by_instrument: dict[str, Stats], starting_equity: Decimal) -> dict[str, Any]:
    """Total statistics of one account trading several instruments quoted in one currency: its
    equity is the starting equity plus each instrument's gain at its latest mark."""
    gains = dict.fromkeys(by_instrument, ZERO)
    points = sorted((ts, i, iid, e) for i, (iid, s) in enumerate(by_instrument.items()) for ts, e in s.equity)
    equity: list[tuple[int, Decimal]] = []
    for ts, _, iid, e in points:
        gains[iid] = e - by_instrument[iid].starting_equity
        value = starting_equity + sum(gains.values(), ZERO)
        if equity and equity[-1][0] == ts:
            equity[-1] = (ts, value)
        else:
            equity.append((ts, value))
    every = by_instrument.values()
    curve = _curve(equity, starting_equity)
    return {
        "starting_equity": str(starting_equity),
        "final_equity": str(curve.pop("final_equity")),
        **curve,
        "trades": sum(s.trades for s in every),
        "fees": str(sum((s.fees for s in every), ZERO)),
        "realized_pnl": str(sum((s.realized_pnl for s in every), ZERO)),
        "unrealized_pnl": str(sum((s.unrealized_pnl for s in every), ZERO)),
    }
