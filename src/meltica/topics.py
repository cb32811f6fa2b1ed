"""The topic list, as data: names, keys, retention. Drives `meltica topics create`."""

from __future__ import annotations

from dataclasses import dataclass

from meltica.log.base import TopicSpec

DLQ_SUFFIX = ".dlq"

_FOREVER = {"retention.ms": "-1", "cleanup.policy": "delete"}
_WEEK = {"retention.ms": str(7 * 24 * 3600 * 1000), "cleanup.policy": "delete"}
_COMPACT = {"cleanup.policy": "compact"}


@dataclass(frozen=True, slots=True)
class TopicDef:
    """One topic of the system: what it holds and how it is keyed and kept."""

    name: str
    key: str
    config: dict[str, str]
    doc: str


TOPICS: tuple[TopicDef, ...] = (
    TopicDef(
        "orders.commands", "account_id", _FOREVER, "SubmitOrder, CancelOrder, AmendOrder, CancelAllOrders"
    ),
    TopicDef("orders.events", "account_id", _FOREVER, "OrderAccepted, OrderDenied, ... OrderFilled"),
    TopicDef("venue.requests", "account_id", _FOREVER, "VenueSubmitOrder, VenueCancelOrder, VenueAmendOrder"),
    TopicDef("venue.reports", "account_id", _FOREVER, "ExecutionReport"),
    TopicDef("portfolio.commands", "account_id", _FOREVER, "AdjustBalance"),
    TopicDef("portfolio.events", "account_id", _FOREVER, "PositionChanged, BalanceChanged, PnLMarked"),
    TopicDef("risk.commands", "scope_id", _FOREVER, "SetRiskLimits, SetTradingState, TripKillSwitch, ..."),
    TopicDef("risk.events", "scope_id", _FOREVER, "RiskLimitsChanged, TradingStateChanged, KillSwitch*"),
    TopicDef("instruments", "instrument_id", _COMPACT, "InstrumentDefined"),
    TopicDef("marketdata.quotes", "instrument_id", _WEEK, "QuoteTick"),
    TopicDef("marketdata.trades", "instrument_id", _WEEK, "TradeTick"),
    TopicDef("marketdata.book", "instrument_id", _WEEK, "OrderBookDelta, OrderBookSnapshot"),
    TopicDef("marketdata.bars", "instrument_id", _FOREVER, "Bar"),
)


def dead_letter_topic(topic: str) -> str:
    """Where undecodable records of `topic` go."""
    return f"{topic}{DLQ_SUFFIX}"


def topic_specs(partitions: int) -> list[TopicSpec]:
    """Every topic with `partitions` partitions, plus its dead-letter topic."""
    specs = []
    for t in TOPICS:
        specs.append(TopicSpec(t.name, partitions, t.config))
        specs.append(TopicSpec(dead_letter_topic(t.name), partitions, _FOREVER))
    return specs
