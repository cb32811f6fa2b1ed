"""Applying a configuration to a running system: what changed becomes commands in the log.

Risk limits, instruments, venues and strategies are declarations; `plan` compares two of them
and says which commands take the system from one to the other. Every other setting (ports,
backends, paths) needs a restart: a reload reports those and leaves them alone, so nothing is
half-applied. Each load is recorded as a `ConfigurationApplied` event, whose declarations are
what the next start or reload compares against.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from meltica.config import RELOADABLE, Settings, load_settings
from meltica.control.specs import InstrumentSpec, LimitsRequest, StrategySpec, VenueSpec, text_params
from meltica.domain.control import (
    ConfigurationApplied,
    ControlStrategy,
    ControlVenue,
    StrategyAction,
    VenueAction,
)
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import RiskScope
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.log.base import EventLog
from meltica.runtime.publisher import Publisher
from meltica.topics import CONTROL_EVENTS, INSTRUMENTS, RISK_COMMANDS, STRATEGY_COMMANDS, VENUE_COMMANDS


class Declared(BaseModel):
    """The reloadable part of a configuration."""

    risk: list[LimitsRequest] = Field(default_factory=list)
    instruments: list[InstrumentSpec] = Field(default_factory=list)
    venues: list[VenueSpec] = Field(default_factory=list)
    strategies: list[StrategySpec] = Field(default_factory=list)

    @classmethod
    def of(cls, settings: Settings) -> Declared:
        return cls.model_validate(settings.model_dump(include=set(RELOADABLE)))


@dataclass
class Plan:
    """Commands to publish, and a line for each change."""

    commands: list[tuple[str, Any]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    def add(self, topic: str, command: Any, what: str) -> None:
        self.commands.append((topic, command))
        if what:
            self.applied.append(what)


def plan(old: Declared | None, new: Declared, operator: str, ts: int) -> Plan:
    """The commands that take the declarations `old` (None: nothing declared yet) to `new`."""
    before = old or Declared()
    p = Plan()
    old_risk = {(r.scope, r.scope_id): r for r in before.risk}
    for r in new.risk:
        if old_risk.pop((r.scope, r.scope_id), None) != r:
            p.add(RISK_COMMANDS, r.command(operator, ts), f"risk limits {r.scope} {r.scope_id}".rstrip())
    for scope, scope_id in old_risk:
        cleared = SetRiskLimits(RiskScope(scope), scope_id, RiskLimits(), operator, ts)
        p.add(RISK_COMMANDS, cleared, " ".join(filter(None, ("risk limits", scope, scope_id, "cleared"))))
    old_inst = {(i.symbol, i.venue): i for i in before.instruments}
    for i in new.instruments:
        if old_inst.get((i.symbol, i.venue)) != i:
            p.add(INSTRUMENTS, i.instrument(), f"instrument {i.symbol}.{i.venue}")
    _venues(p, {v.name: v for v in before.venues}, new.venues, operator, ts)
    _strategies(p, {s.strategy_id: s for s in before.strategies}, new.strategies, operator, ts)
    return p


def _venues(p: Plan, old: dict[str, VenueSpec], new: list[VenueSpec], operator: str, ts: int) -> None:
    def cmd(action: VenueAction, name: str, what: str, **kw: Any) -> None:
        p.add(VENUE_COMMANDS, ControlVenue(action, name, operator, ts, **kw), what)

    for v in new:
        was = old.pop(v.name, None)
        if was is None or was.adapter != v.adapter:
            if was is not None:
                cmd(VenueAction.REMOVE, v.name, "")
            cmd(
                VenueAction.ADD,
                v.name,
                f"venue {v.name} added",
                adapter=v.adapter,
                params=text_params(v.params),
            )
            if v.start:
                cmd(VenueAction.START, v.name, "")
            continue
        if was.params != v.params:
            cmd(VenueAction.UPDATE, v.name, f"venue {v.name} parameters", params=text_params(v.params))
        if was.start != v.start:
            action = VenueAction.START if v.start else VenueAction.STOP
            cmd(action, v.name, f"venue {v.name} {action.value.lower()}")
    for name in old:
        cmd(VenueAction.REMOVE, name, f"venue {name} removed")


def _strategies(
    p: Plan, old: dict[str, StrategySpec], new: list[StrategySpec], operator: str, ts: int
) -> None:
    def cmd(action: StrategyAction, s: StrategySpec, what: str, **kw: Any) -> None:
        p.add(
            STRATEGY_COMMANDS, ControlStrategy(action, s.strategy_id, s.account_id, operator, ts, **kw), what
        )

    for s in new:
        was = old.pop(s.strategy_id, None)
        same = was is not None and (was.kind, was.account_id, was.instrument_id) == (
            s.kind,
            s.account_id,
            s.instrument_id,
        )
        if not same:
            if was is not None:
                cmd(StrategyAction.REMOVE, was, "")
            create = {"kind": s.kind, "instrument_id": s.instrument_id, "params": text_params(s.params)}
            cmd(StrategyAction.CREATE, s, f"strategy {s.strategy_id} created", **create)
            if s.start:
                cmd(StrategyAction.START, s, "")
            continue
        assert was is not None  # nosec B101 # typing; `same` implies it
        if was.params != s.params:
            cmd(
                StrategyAction.UPDATE, s, f"strategy {s.strategy_id} parameters", params=text_params(s.params)
            )
        if was.start != s.start:
            action = StrategyAction.START if s.start else StrategyAction.STOP
            cmd(action, s, f"strategy {s.strategy_id} {action.value.lower()}")
    for s in old.values():
        cmd(StrategyAction.REMOVE, s, f"strategy {s.strategy_id} removed")


def restart_required(running: Settings, new: Settings) -> list[str]:
    """The settings that differ but only take effect on a restart."""
    a = running.model_dump(exclude=set(RELOADABLE))
    b = new.model_dump(exclude=set(RELOADABLE))
    return sorted(k for k in b if a.get(k) != b[k])


def last_applied(log: EventLog, codec: Codec) -> Declared | None:
    """The declarations of the latest `ConfigurationApplied` in the log."""
    latest: tuple[int, ConfigurationApplied] | None = None
    for partition in range(log.partitions(CONTROL_EVENTS)):
        end = log.end_offset(CONTROL_EVENTS, partition)
        if end == 0:
            continue
        [rec] = log.read(CONTROL_EVENTS, partition, end - 1, 1)
        try:
            event = from_record(*codec.decode_record(rec))
        except (MelticaError, KeyError, TypeError, ValueError):
            continue
        if isinstance(event, ConfigurationApplied) and (latest is None or rec.seq > latest[0]):
            latest = (rec.seq, event)
    return None if latest is None else Declared.model_validate_json(latest[1].document)


class Reloader:
    """Loads the configuration file and applies its declarations to the running system."""

    def __init__(
        self, path: Path, running: Settings, log: EventLog, codec: Codec, publisher: Publisher
    ) -> None:
        self.path = path
        self.running = running
        self.log = log
        self.codec = codec
        self.publisher = publisher
        self._lock = threading.Lock()

    def apply(self, operator: str, settings: Settings | None = None) -> dict[str, Any]:
        """Load the file (a `ConfigFileError` applies nothing), publish what changed, record it."""
        with self._lock:
            new = settings or load_settings(self.path)
            declared = Declared.of(new)
            ts = self.publisher.clock.now_ns()
            changes = plan(last_applied(self.log, self.codec), declared, operator, ts)
            later = restart_required(self.running, new)
            for topic, command in changes.commands:
                self.publisher.publish(topic, command)
            document = declared.model_dump_json()
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
            record = ConfigurationApplied(
                str(self.path), digest, document, tuple(changes.applied), tuple(later), operator, ts
            )
            self.publisher.publish(CONTROL_EVENTS, record)
            return {
                "path": str(self.path),
                "sha256": digest,
                "applied": changes.applied,
                "restart_required": later,
                "unchanged": not changes.applied,
            }
