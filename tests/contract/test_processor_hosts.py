"""Contract of the processor hosts: the same inputs, given uninterrupted, give the same outputs.

Meltica hosts its processors three ways: the embedded engine (one process, every processor
stepped together), the confluent-kafka services (`meltica run <processor>`: one consumer group
per processor, exactly-once transactions) and the faust-streaming agents (`meltica run
--host faust`). One scripted scenario — instruments, funds, risk limits, quotes and a trade,
orders that fill at once, a limit that rests and then fills, a cancel, an amend, a denial — is
published one input at a time, each host settling before the next, and every output topic is
compared key by key, in order, with the embedded engine's.

The hosts are built in the three small helpers below, through the composition root (`bootstrap`),
exactly as `meltica up` and `meltica run` build them; nothing else in this file knows how a host
is wired. The Kafka and faust variants run in this process (threads), on a fresh namespace each.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meltica.bootstrap import App, build
from meltica.clock import SimulatedClock
from meltica.config import Settings
from meltica.domain.instruments import spot
from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.domain.orders.commands import AmendOrder, CancelOrder, SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import OrderSide, OrderType, RiskScope
from meltica.log.base import EventLog, TopicPartition
from meltica.log.partitioner import partition_for
from meltica.runtime.partitions import keyed_and_broadcast
from meltica.runtime.publisher import Publisher
from meltica.topics import (
    INSTRUMENTS,
    ORDER_COMMANDS,
    PORTFOLIO_COMMANDS,
    QUOTES,
    RISK_COMMANDS,
    TRADES,
    dead_letter_topic,
    topic_specs,
)
from meltica.topology import NODES

# What every host runs: the faust host has no bar builder (it reads no keyed topic), and no
# strategy is configured, so these four are the processors all three hosts have in common.
PROCESSORS = ("risk", "orders", "venue", "portfolio")
PARTITIONS = 2
T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000


@dataclass
class Running:
    """A host running the processors on `app.log`; `settle()` returns once it has applied everything."""

    app: App
    settle: Callable[[], Any]


def settings_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """The settings of a host, from the environment as `meltica up` and `meltica run` read it."""
    monkeypatch.setenv("MELTICA_DATA_DIR", str(tmp_path / "data"))  # the snapshot key lives here too
    monkeypatch.setenv("MELTICA_PARTITIONS", str(PARTITIONS))
    for name, value in env.items():
        monkeypatch.setenv(f"MELTICA_{name.upper()}", value)
    return Settings()


def on_kafka(settings: Settings) -> App:
    """`build`, its ~50 topics created side by side (one by one they take 5-15 s on a busy broker)."""
    app = build(settings, create_topics=False, clock=SimulatedClock(T0))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(app.log.create_topic, topic_specs(settings.partitions)))
    return app


# -- the three hosts ------------------------------------------------------------------------------
@contextmanager
def embedded_host(settings: Settings) -> Iterator[Running]:
    """`meltica up`'s engine on an in-memory log."""
    app = build(settings, clock=SimulatedClock(T0))
    engine = app.engine()
    try:
        yield Running(app, engine.drain)
    finally:
        app.close()


@contextmanager
def kafka_host(settings: Settings) -> Iterator[Running]:
    """Each processor as `meltica run <processor>` builds it, each on a thread of this process."""
    app = on_kafka(settings)
    services = [app.processor_service(name) for name in PROCESSORS]
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,), name=s.name) for s in services]
    for t in threads:
        t.start()
    keyed = {s.group: s.keyed for s in services}
    unread = Unread(app.log)

    def busy() -> bool:
        if not all(s.ready.is_set() for s in services):
            return True
        states = [state for s in services for state in list(s.states.values())]
        ends = app.log.end_offsets(list({tp for state in states for tp in state.broadcast_pos}))
        behind = any(  # a state that has not applied a broadcast record (a quote, a limit) yet
            unread(tp, pos, ends[tp]) for state in states for tp, pos in list(state.broadcast_pos.items())
        )
        return behind or lagging(app.log, keyed, unread)

    try:
        yield Running(app, lambda: settle(app.log, busy))
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        app.close()


@contextmanager
def faust_host(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Running]:
    """The processors as faust agents of one app (`meltica run --host faust`), on a thread of
    this process with its own event loop. faust commits (and so makes outputs visible) every
    `BROKER_COMMIT_INTERVAL`, 2.8 s by default: a tenth of a second keeps the scenario short."""
    monkeypatch.setenv("BROKER_COMMIT_INTERVAL", "0.1")
    monkeypatch.setenv("APP_DATADIR", str(tmp_path / "faust"))  # not the working directory
    app = on_kafka(settings)
    group = f"meltica-faust-{'-'.join(PROCESSORS)}"  # the app id is the consumer group
    stop, started = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # faust takes the loop current when the app is made

        async def main() -> None:
            agents = app.faust_app(list(PROCESSORS))
            await agents.start()
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)
            await agents.stop()

        try:
            loop.run_until_complete(main())
        except BaseException as err:  # reported by the test, not lost in the thread
            failed.append(err)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name="faust")
    thread.start()
    keyed = {group: [t for n in PROCESSORS for t in keyed_and_broadcast(NODES[n].inputs)[0]]}
    unread = Unread(app.log)
    try:
        assert started.wait(120), "the faust app did not start"
        assert not failed, failed
        # An agent applies market data, limits and instruments when the next keyed record of its
        # partition arrives (see runtime/faust_host.py): settled means every keyed input committed.
        # A record of a transaction still open reads as none (read_committed), so a commit that a
        # busy machine holds up can look settled for a moment: the quiet window is ten commits long.
        busy = lambda: bool(failed) or lagging(app.log, keyed, unread)  # noqa: E731
        yield Running(app, lambda: settle(app.log, busy, quiet_s=1.0))
        assert not failed, failed
    finally:
        stop.set()
        thread.join(60)
        app.close()


# -- settling -------------------------------------------------------------------------------------
class Unread:
    """Whether a partition holds a record in [start, end): the offsets there may hold only
    transaction markers. Remembered, as committed records do not change (reads take ~70 ms)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.known: dict[tuple[TopicPartition, int, int], bool] = {}

    def __call__(self, tp: TopicPartition, start: int, end: int) -> bool:
        if end <= start:
            return False
        if (tp, start, end) not in self.known:
            found = self.log.read(tp.topic, tp.partition, start, 1)
            self.known[(tp, start, end)] = bool(found) and found[0].offset < end
        return self.known[(tp, start, end)]


def lagging(log: EventLog, keyed: Mapping[str, Sequence[str]], unread: Unread) -> bool:
    """Whether any group has a record of its keyed inputs it has not committed yet."""
    for group, topics in keyed.items():
        tps = [TopicPartition(t, p) for t in set(topics) for p in range(PARTITIONS)]
        for tp, end in log.end_offsets(tps).items():
            if unread(tp, log.committed(group, tp) or 0, end):
                return True
    return False


def settle(log: EventLog, busy: Callable[[], bool], quiet_s: float = 0.1, timeout_s: float = 60) -> None:
    """Until no output topic grew for `quiet_s` and the host is not `busy`."""
    tps = [TopicPartition(t, p) for t in OUTPUTS for p in range(PARTITIONS)]
    deadline = time.monotonic() + timeout_s
    last: dict[TopicPartition, int] = {}
    since = time.monotonic()
    while time.monotonic() < deadline:
        ends = log.end_offsets(tps)
        if ends != last:
            last, since = ends, time.monotonic()
        elif time.monotonic() - since >= quiet_s and not busy():
            return
        time.sleep(0.05)
    raise AssertionError(f"the host did not settle within {timeout_s} s")


# -- the scenario ---------------------------------------------------------------------------------
BTC = spot("BTCUSDT", "SIM", "BTC", "USDT", price_increment="0.01", size_increment="0.001", taker_fee="0.001")
# ALICE and CAROL share a partition, BOB has the other: outputs of both partitions are compared, and
# CAROL's order after the quote that crosses ALICE's resting limit reaches the same venue partition.
ALICE, CAROL, BOB = "ALICE", "CAROL", "BOB"
LOOSE = RiskLimits(
    throttle_rate=Decimal(1000),
    throttle_burst=1000,
    max_order_notional=Decimal(10**9),
    max_position=Decimal(10**6),
    max_gross_exposure=Decimal(10**12),
    max_net_exposure=Decimal(10**12),
    max_open_orders=100,
    price_band=Decimal("0.5"),
    circuit_breaker_breaches=1000,
)


def order(n: int, account: str, side: OrderSide, qty: str, price: str | None = None) -> OrderSpec:
    return OrderSpec(
        order_id=f"O{n}",
        client_order_id=f"C{n}",
        account_id=account,
        instrument_id=BTC.instrument_id,
        side=side,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        quantity=Decimal(qty),
        price=None if price is None else Decimal(price),
    )


def quote(bid: str, ask: str, ts: int) -> QuoteTick:
    return QuoteTick(BTC.instrument_id, Decimal(bid), Decimal(10), Decimal(ask), Decimal(10), ts)


Step = list[tuple[str, Any]]  # inputs published together; the host settles after each step


def scenario() -> list[Step]:
    """The inputs, in order. The set-up is one step (no two of its inputs meet in one processor's
    decision); from then on every input is a step of its own, as the outcome of an order depends on
    what the orders before it did. Every quote is followed by orders of both partitions' accounts:
    the faust host applies market data with the next keyed record of a partition (its documented
    limit), so each host gets the same inputs in the same order."""
    ts = iter(range(T0, T0 + 100 * SEC, SEC // 4))
    buy, sell = OrderSide.BUY, OrderSide.SELL
    small = RiskLimits(max_order_notional=Decimal(100)).over(LOOSE)  # BOB: orders up to 100 USDT
    setup: Step = [
        (INSTRUMENTS, BTC),
        *[
            (RISK_COMMANDS, SetRiskLimits(RiskScope.ACCOUNT, a, LOOSE, "ops", next(ts)))
            for a in (ALICE, CAROL)
        ],
        (RISK_COMMANDS, SetRiskLimits(RiskScope.ACCOUNT, BOB, small, "ops", next(ts))),
        *[
            (PORTFOLIO_COMMANDS, AdjustBalance(a, asset, Decimal(amount), "deposit", next(ts)))
            for a in (ALICE, CAROL, BOB)
            for asset, amount in (("USDT", "100000"), ("BTC", "10"))
        ],
    ]
    flow: Step = [
        (QUOTES, quote("100.00", "100.02", next(ts))),
        (
            TRADES,
            TradeTick(BTC.instrument_id, Decimal("100.01"), Decimal(1), AggressorSide.BUYER, "T1", next(ts)),
        ),
        (ORDER_COMMANDS, SubmitOrder(order(1, ALICE, buy, "1"), next(ts))),  # fills at once
        (ORDER_COMMANDS, SubmitOrder(order(2, ALICE, buy, "2", "99.50"), next(ts))),  # rests
        (ORDER_COMMANDS, SubmitOrder(order(3, ALICE, sell, "1", "101.00"), next(ts))),  # rests ...
        (ORDER_COMMANDS, CancelOrder("O3", ALICE, BTC.instrument_id, next(ts))),  # ... and is cancelled
        (ORDER_COMMANDS, SubmitOrder(order(4, CAROL, buy, "1", "99.00"), next(ts))),  # rests ...
        (ORDER_COMMANDS, AmendOrder("O4", CAROL, BTC.instrument_id, next(ts), price=Decimal("99.20"))),
        (ORDER_COMMANDS, SubmitOrder(order(5, BOB, buy, "5", "100.00"), next(ts))),  # over 100 USDT: denied
        (QUOTES, quote("99.30", "99.45", next(ts))),  # crosses O2: it fills
        (ORDER_COMMANDS, SubmitOrder(order(6, CAROL, sell, "1"), next(ts))),
        (ORDER_COMMANDS, SubmitOrder(order(7, BOB, buy, "0.5"), next(ts))),
    ]
    return [setup, *[[one] for one in flow]]


# -- what is compared -----------------------------------------------------------------------------
OUTPUTS = sorted({t for n in PROCESSORS for t in NODES[n].outputs})
DEAD_LETTERS = sorted({dead_letter_topic(t) for n in PROCESSORS for t in NODES[n].inputs})
Outputs = dict[str, dict[str, list[str]]]  # topic -> key -> canonical events, in order


def play(host: Running) -> Outputs:
    """Publish the scenario step by step, letting the host settle after each; its outputs."""
    publisher = Publisher(host.app.log, host.app.codec, SimulatedClock(T0), id_seed="contract")
    steps = scenario()
    for step in steps:
        for topic, event in step:
            publisher.publish(topic, event)
        host.settle()
    return outputs_of(host.app, sorted({t for step in steps for t, _ in step}))


def outputs_of(app: App, inputs: list[str]) -> Outputs:
    """Every output and dead letter, decoded, per topic and key in log order.

    Left out of the envelope, as each host legitimately writes its own: `ts_init` (the host's clock
    when it recorded the output), `source` (the embedded engine names the external record a step
    began with, a service the record it read; the offsets are those of each log) and the event id
    (derived from the producer's name, which a Kafka service suffixes with its partition); record
    headers (trace context, the producer's name) are not part of the event either. The
    causation id is kept as *which* input or output caused the event (its topic, key and position),
    not as that host-specific id."""
    label: dict[str, str] = {}
    decoded: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for topic in [*inputs, *OUTPUTS]:
        for key, records in _by_key(app.log, topic).items():
            for i, rec in enumerate(records):
                name, fields = app.codec.decode_record(rec)
                label[fields["meta"]["event_id"]] = f"{topic}/{key}#{i}"
                if topic in OUTPUTS:
                    decoded.setdefault(topic, {}).setdefault(key, []).append({"type": name, **fields})
    out: Outputs = {}
    for topic, keys in decoded.items():
        for key, events in keys.items():
            for e in events:
                meta = e["meta"]
                e["meta"] = {
                    "causation": label.get(meta["causation_id"], "unknown"),
                    "correlation": label.get(meta["correlation_id"], "unknown"),
                    **{k: meta[k] for k in ("ts_event", "key", "version")},
                }
            out.setdefault(topic, {})[key] = [json.dumps(e, sort_keys=True, default=str) for e in events]
    for topic in DEAD_LETTERS:
        for key, records in _by_key(app.log, topic).items():
            reasons = [dict(r.headers).get("meltica.dlq.reason", b"").decode() for r in records]
            out.setdefault(topic, {})[key] = reasons
    return out


def _by_key(log: EventLog, topic: str) -> dict[str, list[Any]]:
    """The records of `topic` per key, in order (empty partitions not read: a read waits ~0.5 s there)."""
    by_key: dict[str, list[Any]] = {}
    ends = log.end_offsets([TopicPartition(topic, p) for p in range(log.partitions(topic))])
    for tp in (tp for tp, end in ends.items() if end > 0):
        for rec in log.read(tp.topic, tp.partition, 0, 100_000):
            by_key.setdefault((rec.key or b"").decode(), []).append(rec)
    return by_key


def differences(got: Outputs, want: Outputs) -> str:
    """The first difference of every topic and key, readable."""
    lines = []
    for topic in sorted({*got, *want}):
        g, w = got.get(topic, {}), want.get(topic, {})
        for key in sorted({*g, *w}):
            a, b = g.get(key, []), w.get(key, [])
            if a != b:
                i = next(
                    (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
                )
                lines.append(
                    f"{topic}/{key}: {len(a)} events, embedded {len(b)}; first difference at #{i}:\n"
                    f"  host:     {a[i] if i < len(a) else '(none)'}\n"
                    f"  embedded: {b[i] if i < len(b) else '(none)'}"
                )
    return "\n".join(lines)


# -- the tests ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    """The embedded engine's outputs: what every other host must write."""
    with pytest.MonkeyPatch.context() as mp:
        settings = settings_for(tmp_path_factory.mktemp("embedded"), mp, log_backend="memory")
        with embedded_host(settings) as host:
            return play(host)


def test_the_scenario_exercises_what_it_claims(embedded: Outputs) -> None:
    """Fills (at once and after resting), a cancel, an amend, a denial, balances; no dead letter."""
    types = [
        json.loads(e)["type"].rsplit(".", 1)[-1]
        for keys in embedded.values()
        for es in keys.values()
        for e in es
    ]
    for name in (
        "OrderFilled",
        "OrderCanceled",
        "OrderReplaced",
        "OrderDenied",
        "BalanceChanged",
        "RiskLimitsChanged",
    ):
        assert name in types, f"no {name} in {sorted(set(types))}"
    assert partition_for(ALICE.encode(), PARTITIONS) == partition_for(CAROL.encode(), PARTITIONS)
    assert partition_for(ALICE.encode(), PARTITIONS) != partition_for(BOB.encode(), PARTITIONS)
    filled = [e for e in embedded["orders.events"][ALICE] if "OrderFilled" in e]
    assert any('"O2"' in e for e in filled), "the resting limit did not fill"
    assert not any(embedded.get(t) for t in DEAD_LETTERS)


@pytest.mark.kafka
def test_the_kafka_services_write_what_the_embedded_engine_writes(
    embedded: Outputs, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(
        tmp_path, monkeypatch, log_backend="kafka", kafka_bootstrap=kafka_bootstrap, namespace=_namespace()
    )
    with kafka_host(settings) as host:
        got = play(host)
    assert got == embedded, differences(got, embedded)


@pytest.mark.kafka
def test_the_faust_agents_write_what_the_embedded_engine_writes(
    embedded: Outputs, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(
        tmp_path, monkeypatch, log_backend="kafka", kafka_bootstrap=kafka_bootstrap, namespace=_namespace()
    )
    with faust_host(settings, monkeypatch, tmp_path) as host:
        got = play(host)
    assert got == embedded, differences(got, embedded)


def _namespace() -> str:
    return f"c{uuid.uuid4().hex[:10]}"
