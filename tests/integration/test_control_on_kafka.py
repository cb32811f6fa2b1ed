"""The venue registry and a configuration reload on the Kafka log: the venues service's manager
runs connections from commands in Kafka, and the API's reloader writes the file's changes there."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from meltica.config import load_settings
from meltica.control.reload import Reloader
from meltica.control.venues import VenueManager
from meltica.domain.control import ConfigurationApplied, VenueStateChanged
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.kafka import KafkaLog
from meltica.runtime.publisher import Publisher
from meltica.topics import CONTROL_EVENTS, QUOTES, VENUE_EVENTS, topic_specs
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka
DATA = Path(__file__).parents[1] / "data"
CONFIG = f"""
venues:
  - name: fx-a
    adapter: replay
    params: {{path: {DATA / "usdjpy-ticks.csv"}, format: truefx, symbol: USDJPY}}
"""
ALIAS = """  - name: fx-b
    adapter: replay
    params: {{path: {path}, format: truefx, symbol: USDJPY}}
"""


def read_all(log: KafkaLog, codec: Codec, topic: str) -> list[Any]:
    out = []
    for p in range(log.partitions(topic)):
        offset = 0
        while batch := log.read(topic, p, offset, 5000):
            offset = batch[-1].offset + 1
            out += [from_record(*codec.decode_record(r)) for r in batch]
    return out


def test_venues_and_reload_on_kafka(kafka_bootstrap: str, tmp_path: Path) -> None:
    log = KafkaLog(kafka_bootstrap, client_id="control-test", namespace=f"c{uuid.uuid4().hex[:8]}")
    for spec in topic_specs(2):
        log.create_topic(spec)
    codec = Codec(registry=EmbeddedSchemaRegistry(log))
    publisher = Publisher(log, codec)
    config = tmp_path / "meltica.yaml"
    config.write_text(CONFIG)
    reloader = Reloader(config, load_settings(config), log, codec, publisher)
    manager = VenueManager(log, codec, publisher, report_every=0.1)
    stop = threading.Event()
    runner = threading.Thread(target=manager.run, args=(stop, 0.05))
    runner.start()
    try:
        assert reloader.apply("test")["applied"] == ["venue fx-a added"]

        def states(name: str) -> list[str]:
            return [
                e.state.value
                for e in read_all(log, codec, VENUE_EVENTS)
                if isinstance(e, VenueStateChanged) and e.venue == name
            ]

        wait_until(lambda: "STOPPED" in states("fx-a")[1:], 60, "fx-a at the end of its data", every=0.2)
        assert states("fx-a")[-1] == "STOPPED"
        assert "LIVE" in states("fx-a")
        config.write_text(CONFIG + ALIAS.format(path=DATA / "usdjpy-ticks.csv"))
        assert reloader.apply("test")["applied"] == ["venue fx-b added"]
        wait_until(lambda: "STOPPED" in states("fx-b")[1:], 60, "fx-b at the end of its data", every=0.2)
        assert states("fx-b")[-1] == "STOPPED"
    finally:
        stop.set()
        runner.join(timeout=30)
    quotes = read_all(log, codec, QUOTES)
    assert len(quotes) == 1000  # the alias's 1,000 quotes were all duplicates
    final = [e for e in read_all(log, codec, VENUE_EVENTS) if e.venue == "fx-b"][-1]
    assert (final.received, final.duplicates) == (1000, 1000)
    applied = [e for e in read_all(log, codec, CONTROL_EVENTS) if isinstance(e, ConfigurationApplied)]
    assert [e.applied for e in applied] == [("venue fx-a added",), ("venue fx-b added",)]
    log.close()
