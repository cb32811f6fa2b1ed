"""Administration: API keys (list, create, revoke, rotate) and the configuration file's reload.
A key's secret is in the answer to its create or rotate only; it is never stored, logged or
written to the event log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field

from meltica.api.auth import guard_of
from meltica.api.deps import AdminKey, AppServices, Now
from meltica.api.keys import (
    KeyExistsError,
    KeyNotFoundError,
    choose_accounts,
    create_key,
    find_key,
    list_keys,
    now_of,
    parse_duration,
    parse_expiry,
    revoke_key,
    rotate_key,
)
from meltica.api.problems import Problem, not_found
from meltica.api.ratelimit import parse_rate
from meltica.config_file import ConfigFileError
from meltica.control.specs import Id, Strict

Scope = Literal["read", "trade", "admin"]

router = APIRouter(tags=["admin"])


class KeyRequest(Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    accounts: list[Id] | None = Field(
        default=None, max_length=1000, description="The accounts the key may act on."
    )
    all_accounts: bool = Field(default=False, description="A trade key acting on every account.")
    expires_at: datetime | None = Field(default=None, description="ISO time (UTC unless given).")
    ttl: str | None = Field(default=None, max_length=16, description="Time to live instead: 30d, 12h.")
    rate: str | None = Field(default=None, max_length=16, description="Overrides the scope rates: 50/s.")


class RotateRequest(Strict):
    overlap: str = Field(default="0s", max_length=16, description="How long the old secret still works.")


def _invalid(err: ValueError) -> Problem:
    return Problem(422, "validation", "Invalid key", str(err))


@router.post("/v1/admin/reload")
def reload_configuration(request: Request, k: AdminKey, services: AppServices) -> dict[str, Any]:
    """Reload the configuration file: risk limits, instruments, venues and strategies change
    without a restart (as commands in the log); other changed settings are reported, not applied."""
    if services.reload is None:
        raise Problem(
            409, "no-configuration", "No configuration file", "this process was not started with --config"
        )
    try:
        return services.reload(k.name)
    except ConfigFileError as err:
        raise Problem(422, "invalid-configuration", "Invalid configuration", str(err)) from None


@router.get("/v1/admin/keys")
def list_api_keys(request: Request, _: AdminKey) -> list[dict[str, Any]]:
    """Every key: name, prefix, scopes, accounts, created, last used, expiry, revoked."""
    return [k.document() for k in list_keys(guard_of(request).keys.db)]


@router.post("/v1/admin/keys", status_code=201)
def create_api_key(
    request: Request, response: Response, body: KeyRequest, _: AdminKey, clock: Now
) -> dict[str, Any]:
    """A new key; `key` (the secret) is in this answer only."""
    db = guard_of(request).keys.db
    now = now_of(clock)
    try:
        if body.expires_at is not None and body.ttl:
            raise ValueError("give expires_at or ttl, not both")
        expires = body.expires_at
        if expires is not None:
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
            if expires <= now:
                raise ValueError(f"the expiry {expires.isoformat()} is in the past")
        else:
            expires = parse_expiry(None, body.ttl, now)
        accounts = choose_accounts(body.scopes, body.accounts, body.all_accounts)
        rate = None if body.rate is None else parse_rate(body.rate)
        secret = create_key(db, body.name, list(body.scopes), accounts, expires, rate, clock)
    except KeyExistsError as err:
        raise Problem(409, "exists", "Key exists", str(err)) from None
    except ValueError as err:
        raise _invalid(err) from None
    response.headers["Cache-Control"] = "no-store"
    return {"key": secret, **find_key(db, secret.split("_", 2)[1]).document()}


@router.delete("/v1/admin/keys/{name_or_id}")
def revoke_api_key(request: Request, name_or_id: str, _: AdminKey, clock: Now) -> dict[str, Any]:
    """Revoke a key: answered 401 from now on (elsewhere within the key cache's time)."""
    guard = guard_of(request)
    try:
        record = revoke_key(guard.keys.db, name_or_id, clock)
    except KeyNotFoundError:
        raise not_found(f"key {name_or_id}") from None
    guard.keys.forget(record.key_id)
    return record.document()


@router.post("/v1/admin/keys/{name_or_id}/rotate")
def rotate_api_key(
    request: Request, response: Response, name_or_id: str, body: RotateRequest, _: AdminKey, clock: Now
) -> dict[str, Any]:
    """A new secret for the key; the old one works for `overlap` more, then is 401."""
    guard = guard_of(request)
    try:
        secret = rotate_key(guard.keys.db, name_or_id, parse_duration(body.overlap), clock)
    except KeyNotFoundError:
        raise not_found(f"live key {name_or_id}") from None
    except ValueError as err:
        raise _invalid(err) from None
    key_id = secret.split("_", 2)[1]
    guard.keys.forget(key_id)
    response.headers["Cache-Control"] = "no-store"
    return {"key": secret, **find_key(guard.keys.db, key_id).document()}
