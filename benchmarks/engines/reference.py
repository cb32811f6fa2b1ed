"""The SMA(10)/SMA(30) reference rule set written for backtrader and backtesting.py, with the
signal in exact decimal arithmetic (their float indicators can flip a bar early at exact ties).

Rules: compare fast_sum * slow with slow_sum * fast of the closes; a tie keeps the previous
sign; after the first cross always in the market (+1000 / -1000); a reversal closes first
(two orders); market orders fill at the next bar's open; the position open at the end is not
closed. Each engine returns its fills (bar index, side, quantity, price), its realized PnL
before fees, and its fees.
"""

from __future__ import annotations

import csv
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

QTY = 1000


def load(path: Path) -> tuple[list[dict[str, str]], list[Decimal]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return rows, [Decimal(r["close"]) for r in rows]


def signals(closes: list[Decimal], fast: int = 10, slow: int = 30) -> list[int]:
    """For each bar: +1 / -1 to go long / short at the next open, 0 to do nothing."""
    out, sign = [], 0
    for i in range(len(closes)):
        if i + 1 < slow:
            out.append(0)
            continue
        window = closes[i + 1 - slow : i + 1]
        diff = sum(window[-fast:], Decimal(0)) * slow - sum(window, Decimal(0)) * fast
        new = 1 if diff > 0 else -1 if diff < 0 else sign
        out.append(new if sign not in (0, new) else 0)
        sign = new
    return out


def run_backtrader(path: Path, commission: float) -> dict[str, Any]:
    import backtrader as bt
    import pandas as pd

    rows, closes = load(path)
    orders = signals(closes)
    frame = pd.DataFrame(
        {k: [float(r[k]) for r in rows] for k in ("open", "high", "low", "close")},
        index=pd.to_datetime([r["timestamp"] for r in rows], utc=True).tz_localize(None),
    )
    fills: list[tuple[int, str, int, Decimal]] = []
    result: dict[str, Any] = {"gross": 0.0, "fees": 0.0}

    class Reference(bt.Strategy):  # type: ignore[misc]
        def next(self) -> None:
            i = len(self) - 1
            if orders[i]:
                if self.position.size:
                    self.close()
                (self.buy if orders[i] > 0 else self.sell)(size=QTY)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                fills.append(
                    (
                        len(self) - 1,
                        "BUY" if order.isbuy() else "SELL",
                        abs(int(order.executed.size)),
                        Decimal(str(float(order.executed.price))).quantize(Decimal("0.001")),
                    )
                )
                result["fees"] += order.executed.comm

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                result["gross"] += trade.pnl

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Reference)
    cerebro.broker.setcash(1e9)
    cerebro.broker.setcommission(commission=commission)
    cerebro.run()
    return {"fills": fills, **result}


def run_backtesting_py(path: Path, commission: float) -> dict[str, Any]:
    import pandas as pd
    from backtesting import Backtest, Strategy

    rows, closes = load(path)
    orders = signals(closes)
    frame = pd.DataFrame(
        {k.capitalize(): [float(r[k]) for r in rows] for k in ("open", "high", "low", "close")},
        index=pd.to_datetime([r["timestamp"] for r in rows], utc=True).tz_localize(None),
    )

    class Reference(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            if orders[i]:
                if self.position.size:
                    self.position.close()
                (self.buy if orders[i] > 0 else self.sell)(size=QTY)

    with warnings.catch_warnings():  # the open position is kept open on purpose
        warnings.simplefilter("ignore")
        stats = Backtest(frame, Reference, cash=1e9, commission=commission, finalize_trades=False).run()
    trades = stats["_trades"]
    fills = []
    for t in trades.itertuples():
        side_in, side_out = ("BUY", "SELL") if t.Size > 0 else ("SELL", "BUY")
        fills.append(
            (
                int(t.EntryBar),
                side_in,
                abs(int(t.Size)),
                Decimal(str(float(t.EntryPrice))).quantize(Decimal("0.001")),
            )
        )
        fills.append(
            (
                int(t.ExitBar),
                side_out,
                abs(int(t.Size)),
                Decimal(str(float(t.ExitPrice))).quantize(Decimal("0.001")),
            )
        )
    # an open trade's entry fee is not in the closed-trade table: the commission rate on its entry value
    open_fees = sum(commission * abs(t.size) * t.entry_price for t in stats["_strategy"].trades)
    for t in stats["_strategy"].trades:  # still open at the end: its entry only
        side = "BUY" if t.size > 0 else "SELL"
        fills.append(
            (
                int(t.entry_bar),
                side,
                abs(int(t.size)),
                Decimal(str(float(t.entry_price))).quantize(Decimal("0.001")),
            )
        )
    gross = float(sum((t.ExitPrice - t.EntryPrice) * t.Size for t in trades.itertuples()))
    return {
        "fills": sorted(fills),
        "gross": gross,
        "fees": float(trades["Commission"].sum()) + open_fees,
        "open": stats["_strategy"].position.size,
    }
