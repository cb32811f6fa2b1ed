"""`/v1/strategies`: strategy instances. Changes go into the log as commands (202); the strategy
processor answers with state events the read models show."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import Engine

from meltica.api.deps import AppServices, Commands, Now, ReadKey, ReadModels, TradeKey
from meltica.api.keys import ApiKey
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.params import ParamsRequest, checked_params, invalid
from meltica.api.problems import Problem, not_found, strategy_not_allowed
from meltica.api.schemas import Page
from meltica.clock import Clock
from meltica.control.specs import StrategySpec
from meltica.domain.control import ControlStrategy, StrategyAction, StrategyState
from meltica.projections import queries
from meltica.runtime.publisher import Publisher
from meltica.strategies import catalog
from meltica.topics import STRATEGY_COMMANDS

router = APIRouter(tags=["strategies"])


def seen_strategy(db: Engine, strategy_id: str, k: ApiKey) -> dict[str, Any]:
    """The strategy, unless removed and if `k` may use its account; else 404, as if it did not exist."""
    found = queries.strategy(db, strategy_id)
    if found is None or found["state"] == StrategyState.REMOVED or not k.may_use(found["account_id"]):
        raise not_found(f"strategy {strategy_id}")
    return found


def command(
    commands: Publisher,
    clock: Clock,
    action: StrategyAction,
    strategy_id: str,
    account_id: str,
    k: ApiKey,
    **kw: Any,
) -> dict[str, str]:
    k.require_account(account_id)
    commands.publish(
        STRATEGY_COMMANDS, ControlStrategy(action, strategy_id, account_id, k.name, clock.now_ns(), **kw)
    )
    return {"strategy_id": strategy_id, "status": f"{action.value.lower()} requested"}


@router.get("/v1/strategies", response_model=Page)
def list_strategies(
    k: ReadKey,
    db: ReadModels,
    account_id: str | None = None,
    include_removed: bool = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    """Every strategy instance with its state (stopped, running, failed), parameters and reason."""
    found = queries.strategies(
        db,
        limit=limit,
        after=after(queries.STRATEGIES, cursor),
        accounts=k.visible,
        account_id=account_id,
        include_removed=include_removed,
    )
    return page(queries.STRATEGIES, found)


@router.get("/v1/strategies/catalog")
def strategy_catalog(_: ReadKey) -> dict[str, dict[str, str]]:
    """The strategies one can create, with their parameters and defaults ("" = required)."""
    return {name: catalog.parameters(name) for name in catalog.STRATEGIES}


@router.get("/v1/strategies/{strategy_id}")
def get_strategy(strategy_id: str, k: ReadKey, db: ReadModels) -> dict[str, Any]:
    return seen_strategy(db, strategy_id, k)


@router.post("/v1/strategies", status_code=202)
def create_strategy(
    body: StrategySpec,
    k: TradeKey,
    db: ReadModels,
    commands: Commands,
    clock: Now,
    services: AppServices,
) -> dict[str, str]:
    """Create (and by default start) a strategy: a shipped kind, or `module:Class` of a module under
    the operator's `strategy_modules` prefixes (else 403 `strategy-not-allowed`)."""
    k.require_account(body.account_id)
    if not queries.instrument_defined(db, body.instrument_id):
        raise Problem(422, "unknown-instrument", "Unknown instrument", f"{body.instrument_id} is not defined")
    try:
        params = checked_params(body.params)
        catalog.build(body.kind, body.instrument_id, params, modules=services.strategy_modules)
    except catalog.StrategyNotAllowedError as err:
        raise strategy_not_allowed(str(err)) from None
    except ValueError as err:
        raise invalid(str(err)) from None
    existing = queries.strategy(db, body.strategy_id)
    if existing and existing["state"] not in (StrategyState.REMOVED, StrategyState.FAILED):
        raise Problem(409, "exists", "Strategy exists", f"strategy {body.strategy_id} exists")
    answer = command(
        commands,
        clock,
        StrategyAction.CREATE,
        body.strategy_id,
        body.account_id,
        k,
        kind=body.kind,
        instrument_id=body.instrument_id,
        params=params,
    )
    if body.start:
        command(commands, clock, StrategyAction.START, body.strategy_id, body.account_id, k)
    return answer


@router.patch("/v1/strategies/{strategy_id}", status_code=202)
def update_strategy(
    strategy_id: str,
    body: ParamsRequest,
    k: TradeKey,
    db: ReadModels,
    commands: Commands,
    clock: Now,
    services: AppServices,
) -> dict[str, str]:
    s = seen_strategy(db, strategy_id, k)
    try:
        params = checked_params(body.params)
        catalog.build(
            s["kind"], s["instrument_id"], {**s["params"], **params}, modules=services.strategy_modules
        )
    except catalog.StrategyNotAllowedError as err:
        raise strategy_not_allowed(str(err)) from None
    except ValueError as err:
        raise invalid(str(err)) from None
    return command(commands, clock, StrategyAction.UPDATE, strategy_id, s["account_id"], k, params=params)


@router.post("/v1/strategies/{strategy_id}/start", status_code=202)
def start_strategy(
    strategy_id: str, k: TradeKey, db: ReadModels, commands: Commands, clock: Now
) -> dict[str, str]:
    account_id = seen_strategy(db, strategy_id, k)["account_id"]
    return command(commands, clock, StrategyAction.START, strategy_id, account_id, k)


@router.post("/v1/strategies/{strategy_id}/stop", status_code=202)
def stop_strategy(
    strategy_id: str, k: TradeKey, db: ReadModels, commands: Commands, clock: Now
) -> dict[str, str]:
    account_id = seen_strategy(db, strategy_id, k)["account_id"]
    return command(commands, clock, StrategyAction.STOP, strategy_id, account_id, k)


@router.delete("/v1/strategies/{strategy_id}", status_code=202)
def remove_strategy(
    strategy_id: str, k: TradeKey, db: ReadModels, commands: Commands, clock: Now
) -> dict[str, str]:
    account_id = seen_strategy(db, strategy_id, k)["account_id"]
    return command(commands, clock, StrategyAction.REMOVE, strategy_id, account_id, k)
