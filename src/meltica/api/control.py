"""Control-plane routes: venues, strategies and configuration reload. Changes go into the log as
commands (202); the processors and the venue manager answer with state events the read models show."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy import Engine, Table, select

from meltica.api.auth import AdminKey, ReadKey, TradeKey
from meltica.api.numbers import check_numeric_text
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Keyset, Limit
from meltica.api.problems import Problem, not_found
from meltica.api.schemas import Page
from meltica.clock import LiveClock
from meltica.config_file import ConfigFileError
from meltica.control.specs import ParamValue, StrategySpec, Strict, VenueSpec, text_params
from meltica.domain.control import ControlStrategy, ControlVenue, StrategyAction, VenueAction
from meltica.marketdata import adapters
from meltica.projections import tables as t
from meltica.runtime.publisher import Publisher
from meltica.strategies import catalog
from meltica.topics import STRATEGY_COMMANDS, VENUE_COMMANDS

Reload = Callable[[str], dict[str, Any]]
VENUES = Keyset("venues", (t.venues.c.venue,))
STRATEGIES = Keyset("strategies", (t.strategies.c.strategy_id,))
MAX_PARAMS = 64
MAX_PARAM_TEXT = 1024


class ParamsRequest(Strict):
    params: dict[str, ParamValue] = Field(description="Parameters to change; the others keep their values.")


def checked_params(params: dict[str, ParamValue]) -> dict[str, str]:
    """Parameters as text: at most `MAX_PARAMS`, bounded, printable, numbers in the one decimal
    syntax (`meltica.api.numbers`); a ValueError saying what is wrong."""
    if len(params) > MAX_PARAMS:
        raise ValueError(f"at most {MAX_PARAMS} parameters")
    text = text_params(params)
    for name, value in text.items():
        if len(name) > 64 or len(value) > MAX_PARAM_TEXT or not (name + value).isprintable():
            raise ValueError(
                f"{name[:64]!r}: names are at most 64 and values {MAX_PARAM_TEXT} printable characters"
            )
        try:
            check_numeric_text(value)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    return text


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "params": json.loads(row["params"])}


def router(
    publisher: Publisher, db: Engine, reload: Reload | None, replay_dirs: tuple[Path, ...] = ()
) -> APIRouter:
    """The control-plane routes over `publisher` (commands) and `db` (read models); a venue's file
    must be inside `replay_dirs`."""
    api = APIRouter()
    clock = LiveClock()

    def rows(table: Table, *where: Any) -> list[dict[str, Any]]:
        with db.connect() as conn:
            return [_row(dict(r._mapping)) for r in conn.execute(select(table).where(*where))]

    def one(table: Table, column: Any, value: str, what: str) -> dict[str, Any]:
        found = rows(table, column == value)
        if not found or found[0]["state"] == "REMOVED":
            raise not_found(f"{what} {value}")
        return found[0]

    def invalid(detail: str) -> Problem:
        return Problem(422, "invalid-parameters", "Invalid parameters", detail)

    def checked_venue(adapter: str, params: dict[str, str]) -> None:
        try:
            adapters.check(adapter, params, replay_dirs)
        except adapters.PathRefusedError as err:
            raise Problem(422, "path-not-allowed", "Path not allowed", str(err)) from None
        except ValueError as err:
            raise invalid(str(err)) from None

    # -- venues -----------------------------------------------------------------------------------
    def venue_command(action: VenueAction, name: str, k: Any, **kw: Any) -> dict[str, str]:
        publisher.publish(VENUE_COMMANDS, ControlVenue(action, name, k.name, clock.now_ns(), **kw))
        return {"venue": name, "status": f"{action.value.lower()} requested"}

    @api.get("/v1/venues", tags=["venues"], response_model=Page)
    def list_venues(
        _: ReadKey, include_removed: bool = False, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page:
        """Every venue connection with its state (stopped, connecting, live, degraded, failed), the
        reason, and its market-data counters."""
        where = [] if include_removed else [t.venues.c.state != "REMOVED"]
        return VENUES.page(db, t.venues, where, limit, cursor, _row)

    @api.get("/v1/venues/adapters", tags=["venues"])
    def venue_adapters(_: ReadKey) -> dict[str, list[str]]:
        """The adapters a venue can use, with their parameters."""
        return {name: sorted(getattr(cls, "PARAMS", ())) for name, cls in adapters.ADAPTERS.items()}

    @api.get("/v1/venues/{name}", tags=["venues"])
    def get_venue(name: str, _: ReadKey) -> dict[str, Any]:
        return one(t.venues, t.venues.c.venue, name, "venue")

    @api.post("/v1/venues", status_code=202, tags=["venues"])
    def add_venue(body: VenueSpec, k: AdminKey) -> dict[str, str]:
        try:
            params = checked_params(body.params)
        except ValueError as err:
            raise invalid(str(err)) from None
        checked_venue(body.adapter, params)
        existing = rows(t.venues, t.venues.c.venue == body.name)
        if existing and existing[0]["state"] not in ("REMOVED", "FAILED"):
            raise Problem(409, "exists", "Venue exists", f"venue {body.name} exists; PATCH it or DELETE it")
        answer = venue_command(VenueAction.ADD, body.name, k, adapter=body.adapter, params=params)
        if body.start:
            venue_command(VenueAction.START, body.name, k)
        return answer

    @api.patch("/v1/venues/{name}", status_code=202, tags=["venues"])
    def update_venue(name: str, body: ParamsRequest, k: AdminKey) -> dict[str, str]:
        venue = one(t.venues, t.venues.c.venue, name, "venue")
        try:
            params = checked_params(body.params)
        except ValueError as err:
            raise invalid(str(err)) from None
        checked_venue(venue["adapter"], {**venue["params"], **params})
        return venue_command(VenueAction.UPDATE, name, k, params=params)

    @api.post("/v1/venues/{name}/start", status_code=202, tags=["venues"])
    def start_venue(name: str, k: AdminKey) -> dict[str, str]:
        one(t.venues, t.venues.c.venue, name, "venue")
        return venue_command(VenueAction.START, name, k)

    @api.post("/v1/venues/{name}/stop", status_code=202, tags=["venues"])
    def stop_venue(name: str, k: AdminKey) -> dict[str, str]:
        one(t.venues, t.venues.c.venue, name, "venue")
        return venue_command(VenueAction.STOP, name, k)

    @api.delete("/v1/venues/{name}", status_code=202, tags=["venues"])
    def remove_venue(name: str, k: AdminKey) -> dict[str, str]:
        one(t.venues, t.venues.c.venue, name, "venue")
        return venue_command(VenueAction.REMOVE, name, k)

    # -- strategies -------------------------------------------------------------------------------
    def strategy_command(
        action: StrategyAction, strategy_id: str, account_id: str, k: Any, **kw: Any
    ) -> dict[str, str]:
        k.require_account(account_id)
        cmd = ControlStrategy(action, strategy_id, account_id, k.name, clock.now_ns(), **kw)
        publisher.publish(STRATEGY_COMMANDS, cmd)
        return {"strategy_id": strategy_id, "status": f"{action.value.lower()} requested"}

    def strategy(strategy_id: str) -> dict[str, Any]:
        return one(t.strategies, t.strategies.c.strategy_id, strategy_id, "strategy")

    def seen_strategy(strategy_id: str, k: Any) -> dict[str, Any]:
        """The strategy, if `k` may use its account; else 404, as if it did not exist."""
        found = strategy(strategy_id)
        if not k.may_use(found["account_id"]):
            raise not_found(f"strategy {strategy_id}")
        return found

    @api.get("/v1/strategies", tags=["strategies"], response_model=Page)
    def list_strategies(
        k: ReadKey,
        account_id: str | None = None,
        include_removed: bool = False,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page:
        """Every strategy instance with its state (stopped, running, failed), parameters and reason."""
        where = [] if account_id is None else [t.strategies.c.account_id == account_id]
        where += k.account_filter(t.strategies.c.account_id)
        if not include_removed:
            where.append(t.strategies.c.state != "REMOVED")
        return STRATEGIES.page(db, t.strategies, where, limit, cursor, _row)

    @api.get("/v1/strategies/catalog", tags=["strategies"])
    def strategy_catalog(_: ReadKey) -> dict[str, dict[str, str]]:
        """The strategies one can create, with their parameters and defaults ("" = required)."""
        return {name: catalog.parameters(name) for name in catalog.STRATEGIES}

    @api.get("/v1/strategies/{strategy_id}", tags=["strategies"])
    def get_strategy(strategy_id: str, k: ReadKey) -> dict[str, Any]:
        return seen_strategy(strategy_id, k)

    @api.post("/v1/strategies", status_code=202, tags=["strategies"])
    def create_strategy(body: StrategySpec, k: TradeKey) -> dict[str, str]:
        k.require_account(body.account_id)
        with db.connect() as conn:
            known = conn.execute(
                select(t.instruments.c.instrument_id).where(
                    t.instruments.c.instrument_id == body.instrument_id
                )
            ).first()
        if known is None:
            raise Problem(
                422, "unknown-instrument", "Unknown instrument", f"{body.instrument_id} is not defined"
            )
        try:
            params = checked_params(body.params)
            catalog.build(body.kind, body.instrument_id, params)
        except ValueError as err:
            raise invalid(str(err)) from None
        existing = rows(t.strategies, t.strategies.c.strategy_id == body.strategy_id)
        if existing and existing[0]["state"] not in ("REMOVED", "FAILED"):
            raise Problem(409, "exists", "Strategy exists", f"strategy {body.strategy_id} exists")
        answer = strategy_command(
            StrategyAction.CREATE,
            body.strategy_id,
            body.account_id,
            k,
            kind=body.kind,
            instrument_id=body.instrument_id,
            params=params,
        )
        if body.start:
            strategy_command(StrategyAction.START, body.strategy_id, body.account_id, k)
        return answer

    @api.patch("/v1/strategies/{strategy_id}", status_code=202, tags=["strategies"])
    def update_strategy(strategy_id: str, body: ParamsRequest, k: TradeKey) -> dict[str, str]:
        s = seen_strategy(strategy_id, k)
        try:
            params = checked_params(body.params)
            catalog.build(s["kind"], s["instrument_id"], {**s["params"], **params})
        except ValueError as err:
            raise invalid(str(err)) from None
        return strategy_command(StrategyAction.UPDATE, strategy_id, s["account_id"], k, params=params)

    for action in (StrategyAction.START, StrategyAction.STOP):

        def change(strategy_id: str, k: TradeKey, action: StrategyAction = action) -> dict[str, str]:
            return strategy_command(action, strategy_id, seen_strategy(strategy_id, k)["account_id"], k)

        api.add_api_route(
            f"/v1/strategies/{{strategy_id}}/{action.value.lower()}",
            change,
            methods=["POST"],
            status_code=202,
            tags=["strategies"],
            name=f"{action.value.lower()}_strategy",
        )

    @api.delete("/v1/strategies/{strategy_id}", status_code=202, tags=["strategies"])
    def remove_strategy(strategy_id: str, k: TradeKey) -> dict[str, str]:
        account_id = seen_strategy(strategy_id, k)["account_id"]
        return strategy_command(StrategyAction.REMOVE, strategy_id, account_id, k)

    # -- configuration ----------------------------------------------------------------------------
    @api.post("/v1/admin/reload", tags=["admin"])
    def reload_configuration(request: Request, k: AdminKey) -> dict[str, Any]:
        """Reload the configuration file: risk limits, instruments, venues and strategies change
        without a restart (as commands in the log); other changed settings are reported, not applied."""
        if reload is None:
            raise Problem(
                409, "no-configuration", "No configuration file", "this process was not started with --config"
            )
        try:
            return reload(k.name)
        except ConfigFileError as err:
            raise Problem(422, "invalid-configuration", "Invalid configuration", str(err)) from None

    return api
