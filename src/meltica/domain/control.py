"""Control-plane commands and events: strategy and venue lifecycles, applied configurations."""

from __future__ import annotations

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
