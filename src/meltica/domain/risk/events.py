"""Risk commands and events: limits, trading state and the kill switch change at run time."""

from __future__ import annotations

from dataclasses import dataclass

from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import RiskScope, TradingState


@dataclass(frozen=True, slots=True)
class SetRiskLimits:
    scope: RiskScope
    scope_id: str
    limits: RiskLimits
    operator: str
    ts: int
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskLimitsChanged:
    scope: RiskScope
    scope_id: str
    limits: RiskLimits
    operator: str
    ts: int
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SetTradingState:
    scope: RiskScope
    scope_id: str
    state: TradingState
    operator: str
    ts: int


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    scope: RiskScope
    scope_id: str
    state: TradingState
    reason: str
    operator: str
    ts: int


@dataclass(frozen=True, slots=True)
class TripKillSwitch:
    scope: RiskScope
    scope_id: str
    reason: str
    operator: str
    ts: int


@dataclass(frozen=True, slots=True)
class KillSwitchTripped:
    scope: RiskScope
    scope_id: str
    reason: str
    operator: str
    ts: int


@dataclass(frozen=True, slots=True)
class ResetKillSwitch:
    scope: RiskScope
    scope_id: str
    operator: str
    ts: int


@dataclass(frozen=True, slots=True)
class KillSwitchReset:
    scope: RiskScope
    scope_id: str
    operator: str
    ts: int


RiskCommand = SetRiskLimits | SetTradingState | TripKillSwitch | ResetKillSwitch
RiskEvent = RiskLimitsChanged | TradingStateChanged | KillSwitchTripped | KillSwitchReset
