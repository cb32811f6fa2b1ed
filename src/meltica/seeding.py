"""The demo's starting point on an empty log: instruments, limits, DEMO's funds and a `sim` market.
`meltica up` and `meltica cluster seed` both start from it."""

from __future__ import annotations

from decimal import Decimal

from meltica.clock import Clock
from meltica.domain.control import ControlVenue, VenueAction
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import RiskScope
from meltica.log.base import EventLog
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.runtime.publisher import Publisher
from meltica.topics import INSTRUMENTS, PORTFOLIO_COMMANDS, RISK_COMMANDS, VENUE_COMMANDS

DEMO_FUNDS = {"USDT": "1000000", "BTC": "10", "ETH": "100", "USD": "100000", "JPY": "10000000"}


def empty(log: EventLog, topic: str) -> bool:
    return all(log.end_offset(topic, p) == 0 for p in range(log.partitions(topic)))


def seed_demo(
    log: EventLog, publisher: Publisher, clock: Clock, by: str, demo_limits: RiskLimits
) -> list[str]:
    """On a log without instruments: the default instruments, FX limits for USDJPY.SIM,
    `demo_limits` for DEMO and DEMO's funds, written as `by`; what it wrote."""
    if not empty(log, INSTRUMENTS):
        return []
    publisher.define(DEFAULT_INSTRUMENTS)
    now = clock.now_ns()
    # FX trades in units of 100k: the reference limits (position 250, notional 50,000) are for crypto
    fx = RiskLimits(max_position=Decimal(1_000_000), max_order_notional=Decimal(20_000_000))
    publisher.publish(RISK_COMMANDS, SetRiskLimits(RiskScope.INSTRUMENT, "USDJPY.SIM", fx, by, now))
    publisher.publish(RISK_COMMANDS, SetRiskLimits(RiskScope.ACCOUNT, "DEMO", demo_limits, by, now))
    publisher.publish_many(
        PORTFOLIO_COMMANDS,
        [AdjustBalance("DEMO", a, Decimal(n), "demo funds", now) for a, n in DEMO_FUNDS.items()],
    )
    names = ", ".join(i.instrument_id for i in DEFAULT_INSTRUMENTS)
    return [f"instruments {names}", "limits of DEMO and USDJPY.SIM", "funds of DEMO"]


def seed_market(log: EventLog, publisher: Publisher, clock: Clock, by: str, params: dict[str, str]) -> bool:
    """On a log without venue commands: the synthetic `sim` market with `params`, started."""
    if not empty(log, VENUE_COMMANDS):
        return False
    now = clock.now_ns()
    publisher.publish(VENUE_COMMANDS, ControlVenue(VenueAction.ADD, "sim", by, now, "synthetic", params))
    publisher.publish(VENUE_COMMANDS, ControlVenue(VenueAction.START, "sim", by, now))
    return True
