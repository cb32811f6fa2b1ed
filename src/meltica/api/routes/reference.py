"""Reference data: the instruments."""

from __future__ import annotations

from fastapi import APIRouter

from meltica.api.deps import ReadKey, ReadModels
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.schemas import Page
from meltica.projections import queries

router = APIRouter(tags=["reference"])


@router.get("/v1/instruments", response_model=Page)
def instruments(_: ReadKey, db: ReadModels, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Page:
    found = queries.instruments(db, limit=limit, after=after(queries.INSTRUMENTS, cursor))
    return page(queries.INSTRUMENTS, found)
