"""Who may call: API keys (X-API-Key or Bearer) and the scopes a route requires."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from meltica.api.keys import ApiKey, verify
from meltica.api.problems import Problem


def api_key(request: Request) -> ApiKey:
    """The caller's API key (X-API-Key, or Authorization: Bearer)."""
    presented = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
        "Bearer "
    )
    found = verify(request.app.state.services.db, presented) if presented else None
    if found is None:
        raise Problem(401, "unauthorized", "Unauthorized", "a valid API key is required (X-API-Key)")
    request.state.api_key = found
    return found


def require(scope: str) -> Callable[[ApiKey], ApiKey]:
    """A dependency admitting keys with `scope` (or admin)."""

    def check(key: Annotated[ApiKey, Depends(api_key)]) -> ApiKey:
        if scope not in key.scopes and "admin" not in key.scopes:
            raise Problem(403, "forbidden", "Forbidden", f"this key lacks the '{scope}' scope")
        return key

    return check


ReadKey = Annotated[ApiKey, Depends(require("read"))]
TradeKey = Annotated[ApiKey, Depends(require("trade"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
