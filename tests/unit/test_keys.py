"""Partition keys: account first (venue requests included), then instrument, scope, venue, path."""

from __future__ import annotations

from decimal import Decimal

from meltica.domain.control import (
    ConfigurationApplied,
    ControlStrategy,
    ControlVenue,
    StrategyAction,
    VenueAction,
)
from meltica.domain.orders.events import VenueSubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderSide, OrderType
from meltica.topics import key_of


def test_keys() -> None:
    spec = OrderSpec("O1", "C1", "ACC-7", "BTCUSDT.SIM", OrderSide.BUY, OrderType.MARKET, Decimal(1))
    assert key_of(VenueSubmitOrder("SIM", spec, 0)) == "ACC-7"  # not the venue: requests follow accounts
    assert key_of(ControlVenue(VenueAction.ADD, "sim-a", "op", 0)) == "sim-a"
    assert key_of(ControlStrategy(StrategyAction.START, "s", "ACC-2", "op", 0)) == "ACC-2"
    assert key_of(ConfigurationApplied("/etc/m.yaml", "", "{}", (), (), "op", 0)) == "/etc/m.yaml"
