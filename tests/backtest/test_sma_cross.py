"""The SMA(10)/SMA(30) reference rule set on 28,761 FXCM USD/JPY minute bars: Meltica's fills,
realized PnL and fees equal an independent, exact implementation of the rules; and a backtest
is deterministic to the byte."""

from __future__ import annotations

import csv
import functools
import itertools
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from meltica.backtest.engine import BacktestResult, run_backtest
from meltica.domain.marketdata import Bar
from meltica.events.codec import Codec
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.marketdata.replay import ohlc_bars
from meltica.strategies.sma_cross import SmaCross

DATA = Path(__file__).resolve().parents[1] / "data" / "usdjpy-m1-bid-2013.csv"
USDJPY = DEFAULT_INSTRUMENTS[2]
QTY = Decimal(1000)


@functools.cache
def full_year(commission: Decimal) -> tuple[list[Bar], BacktestResult]:
    """The 28,761 bars and Meltica's SMA(10)/SMA(30) backtest of them, run once per commission for
    the session: this module and tests/backtest/test_independent_engines.py check the same run
    (deterministic, a test below holds it) against different references."""
    bars = list(ohlc_bars(DATA, USDJPY.instrument_id))
    result = run_backtest(
        bars, USDJPY, SmaCross(USDJPY.instrument_id, fast=10, slow=30), commission=commission
    )
    return bars, result


def reference(commission: Decimal) -> tuple[list[tuple[str, Decimal, Decimal]], Decimal, Decimal, Decimal]:
    """The rules computed from the CSV: fills (side, qty, price), realized PnL, fees, open position."""
    with DATA.open() as f:
        rows = list(csv.DictReader(f))
    opens = [Decimal(r["open"]) for r in rows]
    closes = [Decimal(r["close"]) for r in rows]
    fills: list[tuple[str, Decimal, Decimal]] = []
    sign, position, entry, realized, fees = 0, Decimal(0), Decimal(0), Decimal(0), Decimal(0)
    pending: list[tuple[str, Decimal]] = []
    for i in range(len(rows)):
        for side, qty in pending:  # orders from the previous bar fill at this bar's open
            px = opens[i]
            fills.append((side, qty, px))
            fees += qty * px * commission
            signed = qty if side == "BUY" else -qty
            if position and (position > 0) != (signed > 0):
                realized += (px - entry) * qty * (1 if position > 0 else -1)
                position += signed
            else:
                position, entry = position + signed, px
        pending = []
        if i + 1 < 30:
            continue
        window = closes[i - 29 : i + 1]
        diff = sum(window[-10:], Decimal(0)) * 30 - sum(window, Decimal(0)) * 10
        new = 1 if diff > 0 else -1 if diff < 0 else sign
        if sign not in (0, new):
            target = QTY * new
            current = sum(((q if s == "BUY" else -q) for s, q, _ in fills), Decimal(0)) + sum(
                ((q if s == "BUY" else -q) for s, q in pending), Decimal(0)
            )
            if current:
                pending.append(("SELL" if current > 0 else "BUY", abs(current)))
            pending.append(("BUY" if target > 0 else "SELL", QTY))
        sign = new
    return fills, realized, fees, position


@pytest.mark.parametrize("commission", [Decimal(0), Decimal("0.001")], ids=["no-commission", "0.1%"])
def test_meltica_fills_and_pnl_equal_the_reference(commission: Decimal) -> None:
    bars, result = full_year(commission)
    assert len(bars) == 28_761
    expected_fills, expected_realized, expected_fees, expected_position = reference(commission)
    got = [(f.side.value, f.last_qty, f.last_px) for _, f in result.fills]
    assert len(got) > 500
    assert got == expected_fills
    assert result.realized_pnl == expected_realized
    assert result.stats.fees == expected_fees
    assert result.open_position == expected_position, "the last position is reported, not closed"


def test_same_inputs_same_bytes() -> None:
    bars = list(itertools.islice(ohlc_bars(DATA, USDJPY.instrument_id), 2000))
    a = run_backtest(bars, USDJPY, SmaCross(USDJPY.instrument_id), commission=Decimal("0.001"))
    b = run_backtest(bars, USDJPY, SmaCross(USDJPY.instrument_id), commission=Decimal("0.001"))
    assert a.output == b.output
    # handing the engine the appended events gives what decoding their records gives
    c = run_backtest(
        bars, USDJPY, SmaCross(USDJPY.instrument_id), commission=Decimal("0.001"), decode_data=True
    )
    assert c.output == a.output
    assert len(a.output) > 100


def test_marks_follow_the_interval_and_leave_the_trading_alone() -> None:
    bars = list(itertools.islice(ohlc_bars(DATA, USDJPY.instrument_id), 3000))
    hourly = run_backtest(bars, USDJPY, SmaCross(USDJPY.instrument_id))
    every = run_backtest(bars, USDJPY, SmaCross(USDJPY.instrument_id), mark_interval_ns=0)
    assert hourly.fills == every.fills
    assert (hourly.realized_pnl, hourly.stats) == (every.realized_pnl, every.stats)
    codec = Codec()

    def marks(result: BacktestResult) -> list[int]:
        decoded = (codec.decode(value) for value in result.output)
        return [fields["meta"]["ts_event"] for name, fields in decoded if name.endswith("PnLMarked")]

    hourly_ts, every_ts = marks(hourly), marks(every)
    hours = (bars[-1].ts - bars[0].ts) / (3600 * 10**9)
    assert 0 < len(hourly_ts) <= hours + 1
    assert all(b - a >= 3600 * 10**9 for a, b in itertools.pairwise(hourly_ts))
    assert len(every_ts) > 20 * len(hourly_ts)  # a mark for nearly every bar while in the market


def test_backtest_command_writes_statistics_and_a_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "meltica",
            "backtest",
            "run",
            str(DATA.with_name("ADABTC-1m-2021-11-27.csv")),
            "--format",
            "binance-klines",
            "--instrument",
            "ADABTC.BINANCE",
            "--param",
            "fast=2",
            "--param",
            "slow=4",
            "--param",
            "quantity=100",
            "--report",
            str(report),
            "--png",
            str(report.with_suffix(".png")),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["fills"] >= 1
    page = report.read_text()
    assert page.startswith("<!doctype html>")
    assert "<svg" in page
    assert "http" not in page.split("<body>")[1], "self-contained"
    png = report.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 20_000  # three charts, not an empty canvas


def test_bad_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bars.csv"
    bad.write_text("timestamp,open,high,low,close\n2013-02-01 00:00:00+00:00,91.7,91.7,91.6,x\n")
    done = subprocess.run(
        [sys.executable, "-m", "meltica", "backtest", "run", str(bad), "--format", "fxcm"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1
    assert "bars.csv:2: a value is not a decimal number" in done.stderr
