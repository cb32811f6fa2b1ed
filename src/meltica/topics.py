"""The topic list, as data: names, keys, retention. Drives `meltica topics create`. Which processor
reads and writes which topic is the topology's (`meltica.topology`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meltica.log.base import TopicSpec

DLQ_SUFFIX = ".dlq"

ORDER_COMMANDS = "orders.commands"
ORDER_EVENTS = "orders.events"
VENUE_REQUESTS = "venue.requests"
VENUE_REPORTS = "venue.reports"
PORTFOLIO_COMMANDS = "portfolio.commands"
PORTFOLIO_EVENTS = "portfolio.events"
RISK_COMMANDS = "risk.commands"
RISK_EVENTS = "risk.events"
INSTRUMENTS = "instruments"
QUOTES = "marketdata.quotes"
TRADES = "marketdata.trades"
BOOK = "marketdata.book"
BARS = "marketdata.bars"
MARKET_DATA = (QUOTES, TRADES, BOOK, BARS)
AUDIT = "audit.events"
STRATEGY_COMMANDS = "strategies.commands"
STRATEGY_EVENTS = "strategies.events"
VENUE_COMMANDS = "venues.commands"
VENUE_EVENTS = "venues.events"
CONTROL_EVENTS = "control.events"

# Topics written from outside the processors (clients, feeds, operators): the runtime's inputs.
EXTERNAL = (
    INSTRUMENTS,
    RISK_COMMANDS,
    PORTFOLIO_COMMANDS,
    ORDER_COMMANDS,
    STRATEGY_COMMANDS,
    *MARKET_DATA,
    VENUE_EVENTS,  # the registry's connections: which venues a gateway executes for
    VENUE_REPORTS,  # a live venue's gateway writes its reports here (the engine's own are skipped)
)

_FOREVER = {"retention.ms": "-1", "cleanup.policy": "delete"}
_WEEK = {"retention.ms": str(7 * 24 * 3600 * 1000), "cleanup.policy": "delete"}
_COMPACT = {"cleanup.policy": "compact"}
# The latest snapshot per partition is what counts; states can be large (64 MiB a record).
_SNAPSHOTS = {"cleanup.policy": "compact", "max.message.bytes": str(64 * 1024 * 1024)}
SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TopicDef:
    """One topic of the system: what it holds and how it is keyed and kept."""

    name: str
    key: str
    config: dict[str, str]
    doc: str
    dead_letters: bool = True


TOPICS: tuple[TopicDef, ...] = (
    TopicDef(ORDER_COMMANDS, "account_id", _FOREVER, "SubmitOrder, CancelOrder, AmendOrder, CancelAllOrders"),
    TopicDef(ORDER_EVENTS, "account_id", _FOREVER, "OrderAccepted, OrderDenied, ... OrderFilled"),
    TopicDef(VENUE_REQUESTS, "account_id", _FOREVER, "VenueSubmitOrder, VenueCancelOrder, VenueAmendOrder"),
    TopicDef(VENUE_REPORTS, "account_id", _FOREVER, "ExecutionReport"),
    TopicDef(PORTFOLIO_COMMANDS, "account_id", _FOREVER, "AdjustBalance, VenueBalanceReported"),
    TopicDef(PORTFOLIO_EVENTS, "account_id", _FOREVER, "PositionChanged, BalanceChanged, PnLMarked, ..."),
    TopicDef(RISK_COMMANDS, "scope_id", _FOREVER, "SetRiskLimits, SetTradingState, TripKillSwitch, ..."),
    TopicDef(RISK_EVENTS, "scope_id", _FOREVER, "RiskLimitsChanged, TradingStateChanged, KillSwitch*"),
    TopicDef(INSTRUMENTS, "instrument_id", _COMPACT, "InstrumentDefined"),
    TopicDef(AUDIT, "key_id", _FOREVER, "ApiCallAudited"),
    TopicDef(STRATEGY_COMMANDS, "account_id", _FOREVER, "ControlStrategy"),
    TopicDef(STRATEGY_EVENTS, "account_id", _FOREVER, "StrategyStateChanged"),
    TopicDef(VENUE_COMMANDS, "venue", _FOREVER, "ControlVenue"),
    TopicDef(VENUE_EVENTS, "venue", _FOREVER, "VenueStateChanged"),
    TopicDef(CONTROL_EVENTS, "path", _FOREVER, "ConfigurationApplied"),
    TopicDef(QUOTES, "instrument_id", _WEEK, "QuoteTick"),
    TopicDef(TRADES, "instrument_id", _WEEK, "TradeTick"),
    TopicDef(BOOK, "instrument_id", _WEEK, "OrderBookDelta, OrderBookSnapshot"),
    TopicDef(BARS, "instrument_id", _FOREVER, "Bar"),
)
TOPIC_BY_NAME = {t.name: t for t in TOPICS}


def processor_topics(processors: Sequence[str]) -> tuple[TopicDef, ...]:
    """The topics a Kafka service of each of `processors` keeps for itself: its journal, its snapshots."""
    journals = tuple(
        TopicDef(journal_topic(p), "partition", _FOREVER, f"InputJournal of the {p} service", False)
        for p in processors
    )
    snapshots = tuple(
        TopicDef(snapshot_topic(p), "partition", _SNAPSHOTS, f"ProcessorSnapshot of {p}", False)
        for p in processors
    )
    return journals + snapshots


def all_topics() -> tuple[TopicDef, ...]:
    """Every topic: the data topics and those of every processor of the topology."""
    from meltica.topology import NODES  # the topology is built on these names: imported late

    return TOPICS + processor_topics(list(NODES))


def journal_topic(processor: str) -> str:
    """Where the Kafka service of `processor` journals the order it applied its inputs in."""
    return f"processors.{processor}.journal"


def snapshot_topic(processor: str) -> str:
    """Where the Kafka service of `processor` keeps the latest state of each partition."""
    return f"processors.{processor}.snapshots"


def dead_letter_topic(topic: str) -> str:
    """Where undecodable records of `topic` go."""
    return f"{topic}{DLQ_SUFFIX}"


def topic_specs(partitions: int) -> list[TopicSpec]:
    """Every topic with `partitions` partitions, plus its dead-letter topic."""
    specs = []
    for t in all_topics():
        specs.append(TopicSpec(t.name, partitions, t.config))
        if t.dead_letters:
            specs.append(TopicSpec(dead_letter_topic(t.name), partitions, _FOREVER))
    return specs


def key_of(event: Any) -> str:
    """The partition key of an event (DESIGN §3): its account, else instrument, else risk scope."""
    for attr in ("account_id", "instrument_id", "scope_id"):
        value = getattr(event, attr, None)
        if value:
            return str(value)
    order = getattr(event, "order", None)
    if order is not None:
        return str(order.account_id)  # before `venue`: venue requests belong to the account
    for attr in ("venue", "path"):  # venue connections, configuration loads
        value = getattr(event, attr, None)
        if value:
            return str(value)
    return "*"


def order_id_of(event: Any) -> str | None:
    """The order an event is about, if any."""
    order_id = getattr(event, "order_id", None)
    if order_id is None and getattr(event, "order", None) is not None:
        order_id = event.order.order_id
    return order_id if isinstance(order_id, str) else None
