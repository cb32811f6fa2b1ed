"""Issue 13, defect 1 in the distributed shape: risk and orders are separate `meltica run`
services reading Kafka topics, and an amend still reaches the order book only through risk."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from meltica.domain.orders.commands import AmendOrder, SubmitOrder
from meltica.domain.orders.events import OrderAmendAccepted, OrderAmendRejected, OrderReplaced
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderSide, OrderType
from meltica.events.mapping import from_record
from meltica.log.partitioner import partition_for
from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS
from tests.distributed.cluster import PARTITIONS, T0, Cluster
from tests.e2e.stack import BTC
from tests.waiting import wait_until

pytestmark = pytest.mark.distributed


def order_events(cluster: Cluster, account: str, order_id: str) -> list[Any]:
    p = partition_for(account.encode(), PARTITIONS)
    out = []
    for rec in cluster.log.read(ORDER_EVENTS, p, 0, 10_000):
        name, fields = cluster.codec.decode_record(rec)
        event = from_record(name, fields)
        if getattr(event, "order_id", None) == order_id:
            out.append(event)
    return out


def test_an_amend_passes_risk_between_services(cluster: Cluster) -> None:
    cluster.start_all()
    cluster.setup_market()  # BTC at 100.00 / 100.02, price band 90%
    cluster.wait_ready()
    spec = OrderSpec(
        "AMD-1",
        "AMD-1",
        "ACC-1",
        BTC.instrument_id,
        OrderSide.BUY,
        OrderType.LIMIT,
        Decimal("1"),
        Decimal("95"),
    )
    cluster.publisher.publish(ORDER_COMMANDS, SubmitOrder(spec, T0 + 1))
    wait_until(
        lambda: "OrderAcknowledged" in [type(e).__name__ for e in order_events(cluster, "ACC-1", "AMD-1")],
        120,
        "AMD-1 acknowledged",
        every=0.2,
    )
    amends = [
        AmendOrder("AMD-1", "ACC-1", BTC.instrument_id, T0 + 2, price=Decimal("250")),  # beyond the band
        AmendOrder("AMD-1", "ACC-1", BTC.instrument_id, T0 + 3, quantity=Decimal("0.00001")),
        AmendOrder("AMD-1", "ACC-1", BTC.instrument_id, T0 + 4, price=Decimal("96")),
    ]
    cluster.publisher.publish_many(ORDER_COMMANDS, amends)
    wait_until(
        lambda: any(isinstance(e, OrderReplaced) for e in order_events(cluster, "ACC-1", "AMD-1")),
        120,
        "AMD-1 replaced",
        every=0.2,
    )
    events = order_events(cluster, "ACC-1", "AMD-1")
    assert [e.reason for e in events if isinstance(e, OrderAmendRejected)] == [
        "price_band",
        "quantity_precision",
    ]
    assert [e.price for e in events if isinstance(e, OrderAmendAccepted)] == [Decimal("96")]
    assert [(e.quantity, e.price) for e in events if isinstance(e, OrderReplaced)] == [
        (Decimal("1"), Decimal("96"))
    ]
