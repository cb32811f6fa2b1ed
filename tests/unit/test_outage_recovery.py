"""Riding out a log outage without a broker: `KafkaLog.end_offset` retries while a restarted
broker's metadata comes back, and the venue manager retries connections the log failed (and its
own reads) by its policy instead of giving up."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from meltica.control.venues import RetryPolicy, VenueManager
from meltica.domain.control import ControlVenue, VenueAction, VenueState, VenueStateChanged
from meltica.errors import LogError
from meltica.events.codec import Codec
from meltica.log.base import Message, Position, TopicPartition
from meltica.log.kafka import KafkaLog
from meltica.log.memory import MemoryLog
from meltica.runtime.publisher import Publisher
from meltica.topics import MARKET_DATA, VENUE_COMMANDS, VENUE_EVENTS, topic_specs
from tests.waiting import wait_until


class _Watermarks:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION, "Failed to get watermark offsets"))
        return 0, 42


def test_end_offset_waits_for_a_restarted_brokers_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    log = KafkaLog("127.0.0.1:1", client_id="test")
    log._topic_cache["orders.events"] = 4
    reader = _Watermarks(failures=3)
    monkeypatch.setattr(log, "_reader_consumer", lambda: reader)
    assert log.end_offset("orders.events", 2) == 42
    assert reader.calls == 4


def test_retry_delays_double_to_a_maximum_with_jitter() -> None:
    policy = RetryPolicy(first_s=1.0, max_s=30.0, jitter=0.5)
    rng = random.Random(3)
    delays = [policy.delay(n, rng) for n in range(1, 10) for _ in range(20)]
    assert all(0.5 <= d <= 30.0 for d in delays)
    assert max(policy.delay(1, rng) for _ in range(50)) <= 1.0
    assert min(policy.delay(9, rng) for _ in range(50)) >= 15.0  # capped at 30 s, less up to half
    assert len({round(d, 6) for d in delays[:20]}) > 1  # jittered


class _FlakyLog(MemoryLog):
    """A memory log whose appends of market data (or every read) fail while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = threading.Event()
        self.reads_down = threading.Event()
        self.failed_reads = 0

    def append(self, messages: Sequence[Message]) -> list[Position]:
        if self.down.is_set() and any(m.topic in MARKET_DATA for m in messages):
            raise LogError("3 records not acknowledged within 30.0s")
        return super().append(messages)

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if self.reads_down.is_set():
            self.failed_reads += 1
            raise LogError("Failed to get watermark offsets: Local: Unknown partition")
        return super().end_offsets(partitions)


def _states(log: MemoryLog, codec: Codec) -> list[tuple[str, str]]:
    from meltica.events.mapping import from_record

    out = []
    for p in range(log.partitions(VENUE_EVENTS)):
        for rec in log.read(VENUE_EVENTS, p, 0, 10_000):
            event = from_record(*codec.decode_record(rec))
            if isinstance(event, VenueStateChanged):
                out.append((event.state.value, event.reason))
    return out


def test_a_connection_the_log_failed_is_retried_until_it_is_live_again() -> None:
    log = _FlakyLog()
    for spec in topic_specs(2):
        log.create_topic(spec)
    codec = Codec()
    publisher = Publisher(log, codec)
    manager = VenueManager(log, codec, publisher, retry=RetryPolicy(first_s=0.05, max_s=0.2))
    params = {"seed": "7", "tick_ms": "10"}
    publisher.publish(VENUE_COMMANDS, ControlVenue(VenueAction.ADD, "sim", "t", 1, "synthetic", params))
    publisher.publish(VENUE_COMMANDS, ControlVenue(VenueAction.START, "sim", "t", 2))
    stop = threading.Event()
    thread = threading.Thread(target=manager.run, args=(stop, 0.01))
    thread.start()
    try:
        wait_until(lambda: manager.states().get("sim") is VenueState.LIVE, 60, "sim live")
        log.down.set()  # the broker goes away
        wait_until(lambda: manager.connections["sim"].attempts >= 2, 60, "two attempts to reconnect")
        log.reads_down.set()  # and the manager's reads fail too: it waits, it does not exit
        wait_until(lambda: log.failed_reads >= 3, 60, "the manager reading again after failed reads")
        assert thread.is_alive()
        log.reads_down.clear()
        log.down.clear()  # the broker is back
        wait_until(
            lambda: (
                manager.states().get("sim") is VenueState.LIVE and manager.connections["sim"].attempts == 0
            ),
            60,
            "sim live again",
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    states = _states(log, codec)
    failed = [reason for state, reason in states if state == "FAILED"]
    assert failed
    assert all("not acknowledged" in r and "retrying in" in r for r in failed), failed
    assert any(state == "CONNECTING" and reason.startswith("retry 1 ") for state, reason in states), states
    assert states[-1][0] in ("LIVE", "STOPPED")


def test_a_failure_of_the_adapter_itself_is_not_retried(tmp_path: Any) -> None:
    log = _FlakyLog()
    for spec in topic_specs(2):
        log.create_topic(spec)
    codec = Codec()
    publisher = Publisher(log, codec)
    manager = VenueManager(log, codec, publisher, retry=RetryPolicy(first_s=0.01, max_s=0.01))
    params = {"path": str(tmp_path / "missing.csv"), "format": "truefx", "symbol": "USDJPY"}
    publisher.publish(VENUE_COMMANDS, ControlVenue(VenueAction.ADD, "fx", "t", 1, "replay", params))
    publisher.publish(VENUE_COMMANDS, ControlVenue(VenueAction.START, "fx", "t", 2))
    manager.recover()
    wait_until(lambda: manager.states().get("fx") is VenueState.FAILED, 60, "fx failed")
    for _ in range(20):  # time passes, many times the 10 ms retry delay: a retry would start here
        manager.poll()
        time.sleep(0.01)
    assert manager.states()["fx"] is VenueState.FAILED
    assert [s for s, _ in _states(log, codec)].count("CONNECTING") == 1
