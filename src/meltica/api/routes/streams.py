"""`/v1/stream`: order and portfolio changes as Server-Sent Events."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from meltica.api import auth
from meltica.api.deps import AppServices, ReadKey, Streams
from meltica.api.problems import Problem
from meltica.api.stream import KINDS, events

router = APIRouter(tags=["stream"])


@router.get("/v1/stream", response_class=StreamingResponse)
async def stream(
    request: Request,
    key: ReadKey,
    services: AppServices,
    slots: Streams,
    account_id: str | None = None,
    kinds: Annotated[str, Query(description="Comma-separated: orders, portfolio.")] = "orders,portfolio",
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="Close after this many events.")] = None,
) -> StreamingResponse:
    """Order, fill, position and balance changes as Server-Sent Events, from now on."""
    asked = kinds.split(",")
    unknown = [k for k in asked if k not in KINDS]
    if unknown:
        raise Problem(
            422,
            "validation",
            "Unknown kinds",
            f"kinds is a comma-separated list of orders, portfolio; not {', '.join(unknown)[:200]}",
        )
    wanted = tuple(dict.fromkeys(KINDS[k] for k in asked))
    allowed = None if key.all_accounts else key.accounts
    alive = partial(auth.guard_of(request).keys.live, key.key_id)  # a revoked key's stream ends
    body = events(services.log, services.publisher.codec, wanted, account_id, limit, allowed, alive)
    slots.admit(key.key_id, body)  # 429 past the key's open streams
    return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
