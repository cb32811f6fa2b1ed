"""Risk: its events, the limits in force and their changes, and the kill switch."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from meltica.api.deps import AdminKey, Commands, Now, ReadKey, ReadModels
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.schemas import KillSwitchRequest, LimitsBody, Page
from meltica.domain.risk.events import ResetKillSwitch, TripKillSwitch
from meltica.domain.risk.limits import DEFAULT_LIMITS, RiskLimits
from meltica.domain.values import RiskScope
from meltica.projections import queries
from meltica.topics import RISK_COMMANDS

router = APIRouter(tags=["risk"])


def limits_json(limits: RiskLimits) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None and not isinstance(v, int | tuple) else v)
        for k, v in dataclasses.asdict(limits).items()
    }


@router.get("/v1/risk/events", response_model=Page)
def risk_events(k: ReadKey, db: ReadModels, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Page:
    found = queries.risk_events(db, limit=limit, after=after(queries.RISK_EVENTS, cursor), accounts=k.visible)
    return page(queries.RISK_EVENTS, found)


@router.get("/v1/risk/limits")
def risk_limits(k: ReadKey, db: ReadModels) -> list[dict[str, Any]]:
    """The limits in force per scope (the latest change of each), over the built-in defaults."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for payload in queries.risk_limit_changes(db):
        if payload["scope"] != RiskScope.ACCOUNT.value or k.may_use(payload["scope_id"]):
            latest[(payload["scope"], payload["scope_id"])] = payload
    defaults = {"scope": "DEFAULT", "scope_id": "", "limits": limits_json(DEFAULT_LIMITS)}
    return [defaults, *latest.values()]


@router.put("/v1/risk/limits", status_code=202)
def set_risk_limits(body: LimitsBody, k: AdminKey, commands: Commands, clock: Now) -> dict[str, str]:
    commands.publish(RISK_COMMANDS, body.command(k.name, clock.now_ns()))
    return {"scope": body.scope, "scope_id": body.scope_id, "status": "limits change requested"}


@router.post("/v1/risk/kill-switch", status_code=202)
def kill_switch(body: KillSwitchRequest, k: AdminKey, commands: Commands, clock: Now) -> dict[str, str]:
    scope, scope_id = (RiskScope.ACCOUNT, body.account_id) if body.account_id else (RiskScope.GLOBAL, "")
    now = clock.now_ns()
    cmd: TripKillSwitch | ResetKillSwitch = (
        TripKillSwitch(scope, scope_id, body.reason, k.name, now)
        if body.action == "trip"
        else ResetKillSwitch(scope, scope_id, k.name, now)
    )
    commands.publish(RISK_COMMANDS, cmd)
    return {"kill_switch": body.action, "scope": scope.value, "scope_id": scope_id}
