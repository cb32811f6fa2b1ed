"""Orders through risk -> orders -> sim venue -> portfolio on the embedded SQLite log.

- throughput: orders pre-written, then processed as fast as the engine goes;
- latency: an engine process, a writer submitting at a fixed rate, and a watcher that sees
  each order's OrderAcknowledged / OrderFilled appear in the log (commit included).
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from opentelemetry.trace import Tracer

from meltica import telemetry
from meltica.clock import LiveClock
from meltica.config import Settings
from meltica.domain.marketdata import QuoteTick
from meltica.domain.orders.commands import SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import OrderSide, OrderType, RiskScope
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.sqlite import SqliteLog
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.runtime.engine import Engine
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, PORTFOLIO_COMMANDS, QUOTES, RISK_COMMANDS, topic_specs
from meltica.topology import build_engine

BTC = DEFAULT_INSTRUMENTS[0]
ACCOUNTS = [f"B{i}" for i in range(20)]


def default_tracer() -> Tracer:
    """Tracing as `meltica up` configures it: every event carries context, a sample is recorded."""
    return telemetry.tracer_provider(sample_ratio=Settings().trace_sample_ratio).get_tracer("meltica.bench")


def prepare(path: Path) -> Publisher:
    """Topics, instruments, funded accounts, a market, and limits that let the load through."""
    log = SqliteLog(path)
    for spec in topic_specs(4):
        log.create_topic(spec)
    pub = Publisher(log, Codec(registry=EmbeddedSchemaRegistry(log)))
    pub.define(DEFAULT_INSTRUMENTS)
    now = LiveClock().now_ns()
    fast = RiskLimits(
        throttle_rate=Decimal(100_000),
        throttle_burst=100_000,
        max_position=Decimal(10**9),
        max_open_orders=100_000,
    )
    pub.publish(RISK_COMMANDS, SetRiskLimits(RiskScope.GLOBAL, "", fast, "bench", now))
    for account in ACCOUNTS:
        pub.publish(PORTFOLIO_COMMANDS, AdjustBalance(account, "USDT", Decimal(10**9), "bench", now))
        pub.publish(PORTFOLIO_COMMANDS, AdjustBalance(account, "BTC", Decimal(10**6), "bench", now))
    pub.publish(
        QUOTES,
        QuoteTick(
            BTC.instrument_id, Decimal("43000.00"), Decimal(10**6), Decimal("43000.10"), Decimal(10**6), now
        ),
    )
    return pub


def order(i: int, ts: int) -> SubmitOrder:
    side = OrderSide.BUY if (i // len(ACCOUNTS)) % 2 == 0 else OrderSide.SELL  # each account buys, then sells
    price = Decimal("43000.10") if side is OrderSide.BUY else Decimal("43000.00")  # marketable: fills at once
    spec = OrderSpec(
        f"P{i}",
        f"P{i}",
        ACCOUNTS[i % len(ACCOUNTS)],
        BTC.instrument_id,
        side,
        OrderType.LIMIT,
        Decimal("0.01"),
        price,
    )
    return SubmitOrder(spec, ts)


def loaded(path: Path, n: int) -> tuple[Publisher, Engine]:
    """A log at `path` prepared with `n` orders waiting, and the engine on it, recovered."""
    pub = prepare(path)
    now = LiveClock().now_ns()
    for start in range(0, n, 1000):
        pub.log.append(
            [pub.message(ORDER_COMMANDS, order(i, now + i)) for i in range(start, min(n, start + 1000))]
        )
    engine = build_engine(pub.log, pub.codec, tracer=default_tracer())
    engine.recover()
    return pub, engine


def throughput(n: int = 5000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        pub, engine = loaded(Path(tmp) / "log.db", n)
        began = time.perf_counter()
        steps = engine.drain(max_steps=1000)
        elapsed = time.perf_counter() - began
        pub.log.close()
        return {"orders_per_s": n / elapsed, "events_per_s": engine.stats.outputs / elapsed, "steps": steps}


def latency(rate: int = 1000, seconds: float = 6.0) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.db"
        pub = prepare(path)
        worker = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.engine_worker", str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None
        worker.stdout.readline()  # READY
        sent: dict[str, float] = {}
        seen: dict[tuple[str, str], float] = {}
        stop = threading.Event()

        def watch() -> None:
            with SqliteLog(path) as log:
                positions = dict.fromkeys(range(log.partitions("orders.events")), 0)
                while not stop.is_set():
                    got = False
                    for p, pos in positions.items():
                        for rec in log.read("orders.events", p, pos, 5000):
                            positions[p] = rec.offset + 1
                            got = True
                            entry = pub.codec.catalog.by_fingerprint(rec.value[2:10])
                            if entry is not None and entry.short_name in ("OrderAcknowledged", "OrderFilled"):
                                name, fields = pub.codec.decode_record(rec)
                                seen.setdefault((name, fields["order_id"]), time.perf_counter())
                    if not got:
                        time.sleep(0.0002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        total = int(rate * seconds)
        began = time.perf_counter()
        for i in range(total):
            due = began + i / rate
            while (wait := due - time.perf_counter()) > 0:
                time.sleep(min(wait, 0.001))
            cmd = order(i, LiveClock().now_ns())
            sent[cmd.order.order_id] = time.perf_counter()
            pub.log.append([pub.message(ORDER_COMMANDS, cmd)])
        achieved = total / (time.perf_counter() - began)
        deadline = time.perf_counter() + 10
        while len(seen) < 2 * total and time.perf_counter() < deadline:
            time.sleep(0.05)
        stop.set()
        watcher.join()
        worker.terminate()
        worker.wait(timeout=30)
        pub.log.close()

    def pct(kind: str) -> dict[str, float]:
        lat = sorted((seen[(kind, oid)] - t) * 1000 for oid, t in sent.items() if (kind, oid) in seen)
        if not lat:
            return {}
        q = statistics.quantiles(lat, n=1000, method="inclusive")
        return {"p50_ms": q[499], "p99_ms": q[989], "p999_ms": q[998], "count": len(lat)}

    return {"offered_per_s": achieved, "ack": pct("OrderAcknowledged"), "fill": pct("OrderFilled")}  # type: ignore[dict-item]


def sqlite_commit(n: int = 1000) -> dict[str, float]:
    """The anchor beside the embedded figures: one-row transactions on a bare SQLite connection
    (WAL, synchronous=FULL, as the log): BEGIN IMMEDIATE, INSERT, COMMIT, no Meltica code."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "anchor.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        value = b"x" * 300  # about an order event
        took = []
        for _ in range(n):
            began = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (v) VALUES (?)", (value,))
            db.execute("COMMIT")
            took.append((time.perf_counter() - began) * 1000)
        db.close()
    q = statistics.quantiles(took, n=100, method="inclusive")
    return {"p50_ms": q[49], "p99_ms": q[98]}


def results() -> list[Any]:
    from benchmarks.run import Result

    t = throughput()
    lat = latency()
    anchor = sqlite_commit()
    out = [
        Result(
            "pipeline (SQLite, FULL)",
            "orders/s sustained, risk->orders->venue->portfolio",
            t["orders_per_s"],
            5000,
        ),
        Result("pipeline (SQLite, FULL)", "events/s written", t["events_per_s"]),
        Result("pipeline latency @1000/s", "offered orders/s (achieved)", lat["offered_per_s"]),
    ]
    for kind in ("ack", "fill"):
        for q in ("p50_ms", "p99_ms", "p999_ms"):
            value = lat[kind].get(q, float("nan"))
            target = 10.0 if (kind, q) == ("ack", "p99_ms") else None
            out.append(
                Result("pipeline latency @1000/s", f"submit->{kind} {q}", value, target, lower_is_better=True)
            )
    for q in ("p50_ms", "p99_ms"):
        name = f"raw SQLite commit {q} (anchor: WAL, FULL, one row)"
        out.append(Result("pipeline latency @1000/s", name, anchor[q], lower_is_better=True))
    return out
