"""A `client_order_id` is claimed by the first request checked under it: a second request with
another body, checked before the first one's order reaches the log or the read models (two
concurrent submits), is a 409 naming the differences, never a second 202."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine

from meltica.api.idempotency import Keys, terms
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderSide, OrderType
from meltica.projections import migrations


def _spec(side: OrderSide, quantity: str) -> OrderSpec:
    return OrderSpec(
        order_id="order-1",
        client_order_id="c-1",
        account_id="ACC-1",
        instrument_id="BTCUSDT.SIM",
        side=side,
        order_type=OrderType.LIMIT,
        quantity=Decimal(quantity),
        price=Decimal("42800"),
    )


def test_the_second_of_two_concurrent_bodies_under_one_key_differs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    keys = Keys(create_engine(url))
    buy, sell = _spec(OrderSide.BUY, "0.01"), _spec(OrderSide.SELL, "0.05")

    assert keys.differences(buy.order_id, terms(buy)) == []  # checked; not yet published
    assert keys.differences(sell.order_id, terms(sell)) == ["side", "quantity"]
    assert keys.differences(buy.order_id, terms(buy)) == []  # the same body again is the same order
