"""Control-plane commands and events: strategy and venue lifecycles, applied configurations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class StrategyAction(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    START = "START"
    STOP = "STOP"
    REMOVE = "REMOVE"


class StrategyState(StrEnum):
    STOPPED = "STOPPED"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    REMOVED = "REMOVED"


@dataclass(frozen=True, slots=True)
class ControlStrategy:
    """Command: create, reconfigure, start, stop or remove a strategy instance."""

    action: StrategyAction
    strategy_id: str
    account_id: str
    operator: str
    ts: int
    kind: str = ""
    instrument_id: str = ""
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StrategyStateChanged:
    """Event: where a strategy instance is now, and why (a refused command keeps the state)."""

    strategy_id: str
    account_id: str
    kind: str
    instrument_id: str
    params: dict[str, str]
    state: StrategyState
    reason: str
    operator: str
    ts: int


class VenueAction(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    START = "START"
    STOP = "STOP"
    REMOVE = "REMOVE"


class VenueState(StrEnum):
    STOPPED = "STOPPED"
    CONNECTING = "CONNECTING"
    LIVE = "LIVE"
    DEGRADED = "DEGRADED"
    FAILED = "FAILED"
    REMOVED = "REMOVED"


def venue_down(feeds: Mapping[str, str | None]) -> str | None:
    """Why a venue is down, given why each connection feeding it is (None: that one is up): the
    venue is down only while every one of them is. None when it is up, or has no connection."""
    if feeds and all(why is not None for why in feeds.values()):
        return "; ".join(why for why in feeds.values() if why)
    return None


@dataclass(frozen=True, slots=True)
class ControlVenue:
    """Command: add, reconfigure, start, stop or remove a named venue/market-data connection."""

    action: VenueAction
    venue: str
    operator: str
    ts: int
    adapter: str = ""
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VenueStateChanged:
    """Event: a connection's state and reason, with its market-data counters so far."""

    venue: str
    adapter: str
    params: dict[str, str]
    state: VenueState
    reason: str
    received: int
    published: int
    duplicates: int
    gaps: int
    out_of_order: int
    resyncs: int
    ts: int


@dataclass(frozen=True, slots=True)
class ConfigurationApplied:
    """Event: a configuration file was (re)loaded; what changed and what waits for a restart."""

    path: str
    sha256: str
    document: str
    applied: tuple[str, ...]
    restart_required: tuple[str, ...]
    operator: str
    ts: int
