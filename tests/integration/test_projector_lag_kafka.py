"""The projector's lag on a real broker: records written in transactions leave a commit marker after
them, which the end offset counts; once projected, the lag is 0, not the markers."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import create_engine

from meltica.clock import SimulatedClock
from meltica.domain.orders.commands import SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderSide, OrderType
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.base import TopicPartition
from meltica.log.kafka import KafkaLog
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, topic_specs
from tests.e2e.stack import BTC

pytestmark = pytest.mark.kafka


def test_projected_transactions_leave_no_lag(kafka_bootstrap: str) -> None:
    namespace = f"pl{uuid.uuid4().hex[:8]}"
    log = KafkaLog(kafka_bootstrap, client_id="lag-test", namespace=namespace)
    for spec in topic_specs(1):
        log.create_topic(spec)
    codec = Codec(registry=EmbeddedSchemaRegistry(log))
    publisher = Publisher(log, codec, SimulatedClock(1))
    db = create_engine("sqlite://")
    t.metadata.create_all(db)
    projector = Projector(log, codec, db)
    projector.catch_up()
    for i in range(3):  # three transactions: three records and three commit markers
        spec = OrderSpec(
            f"O{i}", f"C{i}", "ACC-1", BTC.instrument_id, OrderSide.BUY, OrderType.MARKET, Decimal(1)
        )
        message = publisher.message(ORDER_COMMANDS, SubmitOrder(spec, i + 1))
        log.append_and_commit([message], "lag-test", {})
    publisher.define([BTC])  # and a plain append, with no marker
    assert (projector.lag() or {})["instruments"] == 1
    assert (projector.lag() or {})["orders.commands"] >= 3
    projector.catch_up()
    projector.poll_once()  # an idle poll notes the markers
    commands = TopicPartition(ORDER_COMMANDS, 0)
    assert log.end_offset(commands.topic, 0) > 3  # the markers are past the last record
    assert projector.lag() == dict.fromkeys(projector.lag() or {}, 0)
    projector.reset()  # positions read back from the database: the markers not noted yet
    projector.poll_once()
    assert projector.lag() == dict.fromkeys(projector.lag() or {}, 0)
    log.close()
