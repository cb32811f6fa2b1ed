"""A live venue's gateway on the real broker: the engine's processors and the gateway share a Kafka
log; orders reach the (paper) venue, its answers come back, and under the seeded fault schedules
Meltica's orders and fills equal the venue's, across gateway restarts."""

from __future__ import annotations

import uuid

import pytest

from meltica.log.kafka import KafkaLog
from tests.e2e.stack import Stack
from tests.venues.test_gateway import Harness, run_fault_schedule

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("seed", [3, 7])
def test_no_fill_is_lost_or_doubled_on_kafka(kafka_bootstrap: str, seed: int) -> None:
    log = KafkaLog(kafka_bootstrap, client_id="gateway-test", namespace=f"g{uuid.uuid4().hex[:8]}")
    try:
        run_fault_schedule(seed, Harness(stack=Stack(log=log), timeout=90))
    finally:
        log.close()
