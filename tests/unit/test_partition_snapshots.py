"""A Kafka service's partition state restored from its latest snapshot plus the journal after it
equals the state rebuilt from the whole journal (on the memory log, which behaves like Kafka)."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from meltica.clock import SimulatedClock
from meltica.domain.marketdata import QuoteTick
from meltica.domain.portfolio.events import AdjustBalance
from meltica.events.codec import Codec
from meltica.log.base import Message, TopicPartition
from meltica.log.memory import MemoryLog
from meltica.processors.portfolio import PortfolioProcessor
from meltica.runtime.partitions import PartitionedProcessor, PartitionState
from meltica.runtime.publisher import Publisher
from meltica.topics import PORTFOLIO_COMMANDS, QUOTES, snapshot_topic, topic_specs
from meltica.topology import inputs_of
from tests.e2e.stack import BTC
from tests.state import canonical

P = 1  # the partition under test


def service(log: MemoryLog, codec: Codec) -> PartitionedProcessor:
    def make(partition: int) -> PortfolioProcessor:
        return PortfolioProcessor()

    return PartitionedProcessor(
        "portfolio", make, inputs_of("portfolio"), codec=codec, reader=log, clock=SimulatedClock(0)
    )


class Host:
    """What a Kafka host does with one partition: apply new inputs in log order, journal them."""

    def __init__(self, log: MemoryLog, codec: Codec) -> None:
        self.log, self.codec = log, codec
        self.core = self.make()
        self.state = self.core.restore(P)
        self.seen: dict[tuple[str, int], int] = {}

    def make(self) -> PartitionedProcessor:
        return service(self.log, self.codec)

    def poll(self) -> None:
        records = []
        for topic in [*self.core.keyed, *self.core.broadcast]:
            for part in range(self.log.partitions(topic)):
                if topic in self.core.keyed and part != P:
                    continue
                start = self.seen.get((topic, part), 0)
                got = self.log.read(topic, part, start, 100_000)
                if got:
                    self.seen[(topic, part)] = got[-1].offset + 1
                records += got
        outputs: list[Message] = []
        for rec in sorted(records, key=lambda r: r.seq):
            outputs += self.core.apply(self.state, rec, live=True)
            tp = TopicPartition(rec.topic, rec.partition)
            if tp in self.state.broadcast_pos:
                self.state.broadcast_pos[tp] = rec.offset + 1  # as the Kafka host does
        journal = self.core.journal_message(self.state)
        positions = self.log.append([*outputs, *([journal] if journal else [])])
        if journal:  # the host learns its journal entry's offset from the delivery report
            self.state.journal_end = positions[-1].offset + 1

    def snapshot(self) -> None:
        self.log.append([self.core.snapshot_message(self.state)])


def traffic(publisher: Publisher, rng: random.Random, n: int, t0: int) -> None:
    for i in range(n):
        if rng.random() < 0.3:
            account = f"ACC-{rng.randint(1, 6)}"
            amount = Decimal(rng.randint(1, 1000))
            publisher.publish(PORTFOLIO_COMMANDS, AdjustBalance(account, "USDT", amount, "t", t0 + i))
        else:
            px = Decimal(100) + Decimal(rng.randint(-100, 100)) / 100
            publisher.publish(
                QUOTES, QuoteTick(BTC.instrument_id, px, Decimal(1), px + 1, Decimal(1), t0 + i)
            )


def rebuilt(log: MemoryLog, codec: Codec, use_snapshots: bool) -> tuple[PartitionState, int]:
    core = service(log, codec)
    if not use_snapshots:
        core.latest_snapshot = lambda partition: None  # type: ignore[method-assign]
    state = core.restore(P)
    return state, core.replayed


def test_snapshot_plus_journal_tail_equals_the_whole_journal() -> None:
    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(4):
        log.create_topic(spec)
    publisher = Publisher(log, codec, SimulatedClock(0))
    publisher.define([BTC])
    rng = random.Random(3)
    host = Host(log, codec)
    for round_ in range(6):
        traffic(publisher, rng, 80, round_ * 1000)
        host.poll()
        if round_ in (1, 3):
            host.snapshot()
    live = canonical(host.state.processor)
    from_snapshot, tail = rebuilt(log, codec, True)
    from_journal, everything = rebuilt(log, codec, False)
    assert canonical(from_snapshot.processor) == live == canonical(from_journal.processor)
    assert from_snapshot.broadcast_pos == from_journal.broadcast_pos == host.state.broadcast_pos
    assert 0 < tail < everything / 2

    # a damaged newest snapshot is passed over: the newest readable one gives the same state
    log.append([Message(snapshot_topic("portfolio"), b"\x00garbage", str(P).encode(), (), P)])
    damaged, same_tail = rebuilt(log, codec, True)
    assert canonical(damaged.processor) == live
    assert same_tail == tail


def test_a_restored_partition_goes_on_like_the_original() -> None:
    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(4):
        log.create_topic(spec)
    publisher = Publisher(log, codec, SimulatedClock(0))
    publisher.define([BTC])
    rng = random.Random(9)
    host = Host(log, codec)
    traffic(publisher, rng, 100, 0)
    host.poll()
    host.snapshot()
    successor = Host(log, codec)  # a new owner of the partition, starting from the snapshot
    successor.seen = dict(host.seen)
    traffic(publisher, rng, 100, 10_000)
    before = log.end_offset("portfolio.events", P)
    host.poll()
    written_by_original = log.read("portfolio.events", P, before, 10_000)
    successor.poll()
    written_by_successor = log.read("portfolio.events", P, before + len(written_by_original), 10_000)

    def payloads(records: list[Any]) -> list[Any]:
        return [codec.decode_record(r).record for r in records]

    assert written_by_original
    assert payloads(written_by_successor) == payloads(written_by_original)


def test_a_snapshot_of_other_processors_is_not_restored() -> None:
    """A fused pipeline snapshotted before a member joined it (the router, say) is not this
    build's state: the partition is rebuilt from the whole journal instead."""
    from meltica.processors.pipeline import Pipeline
    from meltica.processors.risk import RiskProcessor

    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(2):
        log.create_topic(spec)
    inputs = {"portfolio": inputs_of("portfolio"), "risk": inputs_of("risk")}

    def core(members: list[str]) -> PartitionedProcessor:
        def make(partition: int) -> Pipeline:
            built = {"portfolio": PortfolioProcessor, "risk": RiskProcessor}
            return Pipeline([built[m]() for m in members], inputs)

        return PartitionedProcessor(
            "pipeline", make, inputs_of("portfolio"), codec=codec, reader=log, clock=SimulatedClock(0)
        )

    old = core(["portfolio"])
    log.append([old.snapshot_message(old.restore(P))])
    assert old.latest_snapshot(P) is not None
    assert core(["risk", "portfolio"]).latest_snapshot(P) is None
