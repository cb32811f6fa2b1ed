"""`/v1/admin/keys`: list, create, revoke and rotate API keys (admin scope). A secret is in the
answer to its create or rotate only; it is never stored, logged or written to the event log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field

from meltica.api.auth import AdminKey, guard_of
from meltica.api.keys import (
    KeyExistsError,
    KeyNotFoundError,
    choose_accounts,
    create_key,
    find_key,
    list_keys,
    parse_duration,
    parse_expiry,
    revoke_key,
    rotate_key,
)
from meltica.api.problems import Problem, not_found
from meltica.api.ratelimit import parse_rate
from meltica.control.specs import Id, Strict

Scope = Literal["read", "trade", "admin"]


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


def router() -> APIRouter:
    api = APIRouter(tags=["admin"])

    @api.get("/v1/admin/keys")
    def list_api_keys(request: Request, _: AdminKey) -> list[dict[str, Any]]:
        """Every key: name, prefix, scopes, accounts, created, last used, expiry, revoked."""
        return [k.document() for k in list_keys(guard_of(request).keys.db)]

    @api.post("/v1/admin/keys", status_code=201)
    def create_api_key(request: Request, response: Response, body: KeyRequest, _: AdminKey) -> dict[str, Any]:
        """A new key; `key` (the secret) is in this answer only."""
        db = guard_of(request).keys.db
        try:
            if body.expires_at is not None and body.ttl:
                raise ValueError("give expires_at or ttl, not both")
            expires = body.expires_at
            if expires is not None:
                expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
                if expires <= datetime.now(UTC):
                    raise ValueError(f"the expiry {expires.isoformat()} is in the past")
            else:
                expires = parse_expiry(None, body.ttl)
            accounts = choose_accounts(body.scopes, body.accounts, body.all_accounts)
            rate = None if body.rate is None else parse_rate(body.rate)
            secret = create_key(db, body.name, list(body.scopes), accounts, expires, rate)
        except KeyExistsError as err:
            raise Problem(409, "exists", "Key exists", str(err)) from None
        except ValueError as err:
            raise _invalid(err) from None
        response.headers["Cache-Control"] = "no-store"
        return {"key": secret, **find_key(db, secret.split("_", 2)[1]).document()}

    @api.delete("/v1/admin/keys/{name_or_id}")
    def revoke_api_key(request: Request, name_or_id: str, _: AdminKey) -> dict[str, Any]:
        """Revoke a key: answered 401 from now on (elsewhere within the key cache's time)."""
        guard = guard_of(request)
        try:
            record = revoke_key(guard.keys.db, name_or_id)
        except KeyNotFoundError:
            raise not_found(f"key {name_or_id}") from None
        guard.keys.forget(record.key_id)
        return record.document()

    @api.post("/v1/admin/keys/{name_or_id}/rotate")
    def rotate_api_key(
        request: Request, response: Response, name_or_id: str, body: RotateRequest, _: AdminKey
    ) -> dict[str, Any]:
        """A new secret for the key; the old one works for `overlap` more, then is 401."""
        guard = guard_of(request)
        try:
            secret = rotate_key(guard.keys.db, name_or_id, parse_duration(body.overlap))
        except KeyNotFoundError:
            raise not_found(f"live key {name_or_id}") from None
        except ValueError as err:
            raise _invalid(err) from None
        key_id = secret.split("_", 2)[1]
        guard.keys.forget(key_id)
        response.headers["Cache-Control"] = "no-store"
        return {"key": secret, **find_key(guard.keys.db, key_id).document()}

    return api
