"""Who may call: API keys (X-API-Key or Bearer), the scopes a route requires, and rate limits: per
key and scope, and on failed authentications per client address (a brute-force guard)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from meltica.api.keys import ApiKey, KeyStore
from meltica.api.problems import Problem
from meltica.api.ratelimit import Buckets, Rate, parse_rate, retry_after
from meltica.clock import Clock
from meltica.config import Settings


class RateLimited(Problem):
    """429 `rate-limited`, with Retry-After in seconds."""

    def __init__(self, seconds: float, detail: str) -> None:
        self.retry_after = retry_after(seconds)
        super().__init__(429, "rate-limited", "Too many requests", detail, retry_after=self.retry_after)

    def response(self, instance: str) -> JSONResponse:
        answer = super().response(instance)
        answer.headers["Retry-After"] = str(self.retry_after)
        return answer


@dataclass(frozen=True)
class Limits:
    """Requests per key for each scope a route requires, and failed authentications per address."""

    read: Rate
    trade: Rate
    admin: Rate
    auth_failures: Rate

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            parse_rate(settings.api_rate_read),
            parse_rate(settings.api_rate_trade),
            parse_rate(settings.api_rate_admin),
            parse_rate(settings.api_rate_auth_failures),
        )

    def for_scope(self, scope: str) -> Rate:
        rate: Rate = getattr(self, scope)
        return rate


class Guard:
    """The keys, the limits and the buckets of one application."""

    def __init__(
        self, db: Engine, limits: Limits, cache_seconds: float = 1.0, clock: Clock | None = None
    ) -> None:
        self.keys = KeyStore(db, cache_seconds, wall=clock)
        self.limits = limits
        self.buckets = Buckets()

    def authenticate(self, presented: str, address: str) -> ApiKey:
        failures = ("auth-failures", address)
        waiting = self.buckets.wait(failures, self.limits.auth_failures)
        if waiting:
            raise RateLimited(waiting, "too many failed authentications from this address")
        found, why = self.keys.verify(presented) if presented else (None, "a valid API key is required")
        if found is None:
            self.buckets.take(failures, self.limits.auth_failures)
            raise Problem(401, "unauthorized", "Unauthorized", why)
        return found

    def admit(self, key: ApiKey, scope: str) -> None:
        """Take a token of `key`'s bucket for `scope` (its own rate if it has one), else 429."""
        waiting = self.buckets.take((key.key_id, scope), key.rate or self.limits.for_scope(scope))
        if waiting:
            raise RateLimited(waiting, f"this key's {scope} requests are over its rate")


def install(app: FastAPI, db: Engine, settings: Settings | None = None, clock: Clock | None = None) -> Guard:
    """Give `app` its guard (limits from `settings`, default the environment's; key expiry by `clock`)."""
    settings = settings or Settings()
    guard = Guard(db, Limits.of(settings), settings.api_key_cache_seconds, clock)
    app.state.guard = guard
    return guard


def guard_of(request: Request) -> Guard:
    found: Any = getattr(request.app.state, "guard", None)
    if found is None:
        raise RuntimeError("the application has no guard: call meltica.api.auth.install")
    guard: Guard = found
    return guard


def api_key(request: Request) -> ApiKey:
    """The caller's API key (X-API-Key, or Authorization: Bearer)."""
    presented = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
        "Bearer "
    )
    address = request.client.host if request.client else ""
    found = guard_of(request).authenticate(presented, address)
    request.state.api_key = found
    return found


def require(scope: str) -> Callable[..., ApiKey]:
    """A dependency admitting keys with `scope` (or admin), within the key's rate for `scope`."""

    def check(request: Request, key: Annotated[ApiKey, Depends(api_key)]) -> ApiKey:
        guard_of(request).admit(key, scope)
        if scope not in key.scopes and "admin" not in key.scopes:
            raise Problem(403, "forbidden", "Forbidden", f"this key lacks the '{scope}' scope")
        return key

    return check


ReadKey = Annotated[ApiKey, Depends(require("read"))]
TradeKey = Annotated[ApiKey, Depends(require("trade"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
