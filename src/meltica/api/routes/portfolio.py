"""Fills, positions, balances and P&L of the accounts a key may read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from meltica.api.deps import ReadKey, ReadModels
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.params import invalid
from meltica.api.schemas import Page
from meltica.projections import queries

router = APIRouter(tags=["portfolio"])


@router.get("/v1/fills", response_model=Page)
def fills(
    k: ReadKey,
    db: ReadModels,
    account_id: str | None = None,
    order_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    found = queries.fills(
        db,
        limit=limit,
        after=after(queries.FILLS, cursor),
        accounts=k.visible,
        account_id=account_id,
        order_id=order_id,
    )
    return page(queries.FILLS, found)


def _per_account(
    kind: str, k: ReadKey, db: ReadModels, account_id: str | None, limit: int, cursor: str | None
) -> Page:
    keyset, _ = queries.PER_ACCOUNT[kind]
    found = queries.per_account(
        kind, db, limit=limit, after=after(keyset, cursor), accounts=k.visible, account_id=account_id
    )
    return page(keyset, found)


@router.get("/v1/positions", response_model=Page)
def positions(
    k: ReadKey,
    db: ReadModels,
    account_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    return _per_account("positions", k, db, account_id, limit, cursor)


@router.get("/v1/balances", response_model=Page)
def balances(
    k: ReadKey,
    db: ReadModels,
    account_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    return _per_account("balances", k, db, account_id, limit, cursor)


@router.get("/v1/equity")
def equity(
    k: ReadKey,
    db: ReadModels,
    account_id: str | None = None,
    start: Annotated[int | None, Query(ge=0, description="From this time (ns since the epoch).")] = None,
    end: Annotated[int | None, Query(ge=0, description="Before this time (ns).")] = None,
    limit: Annotated[int, Query(ge=1, le=5000, description="The latest this many points.")] = 500,
) -> dict[str, Any]:
    """Each visible account's equity at its marks, the latest `limit` in [start, end), oldest first."""
    if start is not None and end is not None and start > end:
        raise invalid("start is after end")
    found = queries.equity_history(
        db, limit=limit, accounts=k.visible, account_id=account_id, start=start, end=end
    )
    return {"items": [{**r, **{c: str(r[c]) for c in _AMOUNTS}} for r in found]}


_AMOUNTS = ("equity",)


@router.get("/v1/pnl", response_model=Page)
def pnl(
    k: ReadKey,
    db: ReadModels,
    account_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    return _per_account("pnl", k, db, account_id, limit, cursor)
