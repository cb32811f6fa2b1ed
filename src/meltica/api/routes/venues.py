"""`/v1/venues`: market-data venue connections. Changes go into the log as commands (202); the
venue manager answers with state events the read models show."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import Engine

from meltica.api.deps import AdminKey, AppServices, Commands, Now, ReadKey, ReadModels
from meltica.api.keys import ApiKey
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.params import ParamsRequest, checked_params, invalid
from meltica.api.problems import Problem, not_found
from meltica.api.schemas import Page
from meltica.clock import Clock
from meltica.control.specs import VenueSpec
from meltica.domain.control import ControlVenue, VenueAction, VenueState
from meltica.marketdata import adapters
from meltica.projections import queries
from meltica.runtime.publisher import Publisher
from meltica.topics import VENUE_COMMANDS
from meltica.venues import live

router = APIRouter(tags=["venues"])


def known(db: Engine, name: str) -> dict[str, Any]:
    """The venue, unless removed; else 404."""
    found = queries.venue(db, name)
    if found is None or found["state"] == VenueState.REMOVED:
        raise not_found(f"venue {name}")
    return found


def checked_venue(services: AppServices, adapter: str, params: dict[str, str]) -> None:
    """422 unless `adapter` takes `params`; a file must be inside the app's replay (or secret) folders."""
    try:
        live.check(adapter, params, replay_roots=services.replay_dirs, secret_roots=services.secret_dirs)
    except (adapters.PathRefusedError, live.SecretPathRefusedError) as err:
        raise Problem(422, "path-not-allowed", "Path not allowed", str(err)) from None
    except ValueError as err:
        raise invalid(str(err)) from None


def command(
    commands: Publisher, clock: Clock, action: VenueAction, name: str, k: ApiKey, **kw: Any
) -> dict[str, str]:
    commands.publish(VENUE_COMMANDS, ControlVenue(action, name, k.name, clock.now_ns(), **kw))
    return {"venue": name, "status": f"{action.value.lower()} requested"}


@router.get("/v1/venues", response_model=Page)
def list_venues(
    _: ReadKey,
    db: ReadModels,
    include_removed: bool = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    """Every venue connection with its state (stopped, connecting, live, degraded, failed), the
    reason, and its market-data counters."""
    found = queries.venues(
        db, limit=limit, after=after(queries.VENUES, cursor), include_removed=include_removed
    )
    return page(queries.VENUES, found)


@router.get("/v1/venues/adapters")
def venue_adapters(_: ReadKey) -> dict[str, list[str]]:
    """The adapters a venue can use, with their parameters."""
    return {
        name: sorted(
            {*getattr(cls, "PARAMS", ()), *(live.GATEWAY_PARAMS if name in live.EXECUTING_KINDS else ())}
        )
        for name, cls in adapters.ADAPTERS.items()
    }


@router.get("/v1/venues/{name}")
def get_venue(name: str, _: ReadKey, db: ReadModels) -> dict[str, Any]:
    return known(db, name)


@router.post("/v1/venues", status_code=202)
def add_venue(
    body: VenueSpec, k: AdminKey, services: AppServices, db: ReadModels, commands: Commands, clock: Now
) -> dict[str, str]:
    try:
        params = checked_params(body.params)
    except ValueError as err:
        raise invalid(str(err)) from None
    checked_venue(services, body.adapter, params)
    existing = queries.venue(db, body.name)
    if existing and existing["state"] not in (VenueState.REMOVED, VenueState.FAILED):
        raise Problem(409, "exists", "Venue exists", f"venue {body.name} exists; PATCH it or DELETE it")
    answer = command(commands, clock, VenueAction.ADD, body.name, k, adapter=body.adapter, params=params)
    if body.start:
        command(commands, clock, VenueAction.START, body.name, k)
    return answer


@router.patch("/v1/venues/{name}", status_code=202)
def update_venue(
    name: str,
    body: ParamsRequest,
    k: AdminKey,
    services: AppServices,
    db: ReadModels,
    commands: Commands,
    clock: Now,
) -> dict[str, str]:
    venue = known(db, name)
    try:
        params = checked_params(body.params)
    except ValueError as err:
        raise invalid(str(err)) from None
    checked_venue(services, venue["adapter"], {**venue["params"], **params})
    return command(commands, clock, VenueAction.UPDATE, name, k, params=params)


@router.post("/v1/venues/{name}/start", status_code=202)
def start_venue(name: str, k: AdminKey, db: ReadModels, commands: Commands, clock: Now) -> dict[str, str]:
    known(db, name)
    return command(commands, clock, VenueAction.START, name, k)


@router.post("/v1/venues/{name}/stop", status_code=202)
def stop_venue(name: str, k: AdminKey, db: ReadModels, commands: Commands, clock: Now) -> dict[str, str]:
    known(db, name)
    return command(commands, clock, VenueAction.STOP, name, k)


@router.delete("/v1/venues/{name}", status_code=202)
def remove_venue(name: str, k: AdminKey, db: ReadModels, commands: Commands, clock: Now) -> dict[str, str]:
    known(db, name)
    return command(commands, clock, VenueAction.REMOVE, name, k)
