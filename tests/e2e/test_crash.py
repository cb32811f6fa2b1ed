"""SIGKILL the engine process at random points while orders flow; restart it; the order,
venue, fill, position and balance events equal those of an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.domain.orders.commands import AmendOrder, CancelOrder, SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.values import OrderSide, OrderType, TimeInForce, TriggerType
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.base import Message
from meltica.log.sqlite import SqliteLog
from meltica.runtime.publisher import Publisher
from meltica.topics import (
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PORTFOLIO_COMMANDS,
    PORTFOLIO_EVENTS,
    QUOTES,
    RISK_EVENTS,
    TRADES,
    VENUE_REPORTS,
    VENUE_REQUESTS,
    topic_specs,
)
from meltica.topology import build_engine
from tests.e2e.stack import BTC, T0
from tests.soak import compare, report, seeds

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("crash_engine.py")
OUTPUTS = (ORDER_EVENTS, VENUE_REQUESTS, VENUE_REPORTS, PORTFOLIO_EVENTS, RISK_EVENTS)


def write_inputs(path: Path, seed: int, n: int = 300) -> None:
    """A random but reproducible session: ticks, submissions of every kind, cancels, amends, junk."""
    rng = random.Random(seed)
    with SqliteLog(path) as log:
        for spec in topic_specs(2):
            log.create_topic(spec)
        pub = Publisher(log, Codec(registry=EmbeddedSchemaRegistry(log)))
        pub.define([BTC])
        ts = T0
        for account in ("A", "B"):
            pub.publish(PORTFOLIO_COMMANDS, AdjustBalance(account, "USDT", Decimal(10**7), "seed", ts))
            pub.publish(PORTFOLIO_COMMANDS, AdjustBalance(account, "BTC", Decimal(1000), "seed", ts))
        mid, orders = 10_000, []
        for i in range(n):
            ts += rng.randint(50, 400) * 1_000_000
            mid += rng.randint(-3, 3)
            roll = rng.random()
            if roll < 0.35:
                bid, ask = Decimal(mid) / 100, Decimal(mid + rng.randint(1, 3)) / 100
                pub.publish(
                    QUOTES,
                    QuoteTick(
                        BTC.instrument_id,
                        bid,
                        Decimal(rng.randint(1, 20)),
                        ask,
                        Decimal(rng.randint(1, 20)),
                        ts,
                    ),
                )
            elif roll < 0.55:
                pub.publish(
                    TRADES,
                    TradeTick(
                        BTC.instrument_id,
                        Decimal(mid + rng.randint(-2, 2)) / 100,
                        Decimal(rng.randint(1, 5)),
                        AggressorSide.BUYER,
                        f"X{i}",
                        ts,
                    ),
                )
            elif roll < 0.85:
                kind = rng.choice([OrderType.LIMIT, OrderType.LIMIT, OrderType.MARKET, OrderType.STOP_MARKET])
                side = rng.choice([OrderSide.BUY, OrderSide.SELL])
                price = Decimal(mid + rng.randint(-5, 5)) / 100
                spec = OrderSpec(
                    f"O{i}",
                    f"O{i}",
                    rng.choice(["A", "B"]),
                    BTC.instrument_id,
                    side,
                    kind,
                    Decimal(rng.randint(1, 4)),
                    price=price if kind is OrderType.LIMIT else None,
                    trigger_price=price if kind is OrderType.STOP_MARKET else None,
                    trigger_type=TriggerType.LAST,
                    time_in_force=rng.choice([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC]),
                )
                orders.append(spec)
                pub.publish(ORDER_COMMANDS, SubmitOrder(spec, ts))
            elif orders and roll < 0.93:
                o = rng.choice(orders)
                pub.publish(ORDER_COMMANDS, CancelOrder(o.order_id, o.account_id, o.instrument_id, ts))
            elif orders and roll < 0.99:
                o = rng.choice(orders)
                pub.publish(
                    ORDER_COMMANDS,
                    AmendOrder(
                        o.order_id, o.account_id, o.instrument_id, ts, quantity=Decimal(rng.randint(1, 6))
                    ),
                )
            else:
                log.append([Message(ORDER_COMMANDS, b"\xc3\x01corrupt", b"A")])


def outputs(path: Path) -> dict[tuple[str, int], list[Any]]:
    """Every output record's key and fields, but the wall-clock `ts_init`."""
    with SqliteLog(path) as log:
        codec = Codec(registry=EmbeddedSchemaRegistry(log))
        result = {}
        for topic in OUTPUTS:
            for p in range(log.partitions(topic)):
                rows = []
                for rec in log.read(topic, p, 0, 1_000_000):
                    name, fields = codec.decode_record(rec)
                    fields["meta"].pop("ts_init")
                    rows.append((rec.offset, rec.key, name, fields))
                result[(topic, p)] = rows
        return result


def run_uninterrupted(path: Path) -> None:
    with SqliteLog(path) as log:
        engine = build_engine(log, Codec(registry=EmbeddedSchemaRegistry(log)))
        engine.drain(max_steps=3)


def run_with_kills(path: Path, seed: int) -> int:
    """Restart the engine until it finishes, killing it after a random number of commits."""
    rng = random.Random(seed * 7919)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    kills = 0
    for _attempt in range(200):
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None
        budget = rng.randint(1, 25)
        done = False
        for line in proc.stdout:
            if line.startswith(b"DONE"):
                done = True
                break
            budget -= 1
            if budget == 0:
                proc.send_signal(signal.SIGKILL)  # lands while the next batch is being processed
                kills += 1
                break
        _, err = proc.communicate()
        if done:
            assert proc.returncode == 0, err.decode()
            return kills
        assert proc.returncode == -signal.SIGKILL, err.decode()
    raise AssertionError("the engine never finished")


def _canonical(rows: dict[tuple[str, int], list[Any]]) -> list[str]:
    """Every output as text, without its offset (what `compare` counts as lost or doubled)."""
    return [
        json.dumps([tp[0], r[1], r[2], r[3]], sort_keys=True, default=str)
        for tp, v in rows.items()
        for r in v
    ]


@pytest.mark.parametrize("seed", seeds(range(1, 9)))
def test_sigkill_at_random_points_changes_nothing(tmp_path: Path, seed: int) -> None:
    inputs = tmp_path / "inputs.db"
    write_inputs(inputs, seed)
    calm, crashed = tmp_path / "calm.db", tmp_path / "crashed.db"
    shutil.copy(inputs, calm)
    shutil.copy(inputs, crashed)
    run_uninterrupted(calm)
    started = time.monotonic()
    kills = run_with_kills(crashed, seed)
    expected, got = outputs(calm), outputs(crashed)
    lost, doubled = compare(_canonical(expected), _canonical(got))
    elapsed = time.monotonic() - started
    report(
        "embedded",
        seed,
        lost=lost,
        doubled=doubled,
        diverged=int(got != expected),
        kills=kills,
        seconds=elapsed,
    )
    assert sum(len(v) for v in expected.values()) > 100, "the session produced real traffic"
    assert got == expected, f"differs after {kills} kills ({time.monotonic() - started:.1f}s)"
    assert kills >= 2, "the run was interrupted"
