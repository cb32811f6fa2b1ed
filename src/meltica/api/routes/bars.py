"""Closed OHLCV bars per instrument, width and source (the `bars` read model)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from meltica.api.deps import AppServices, ReadKey, ReadModels
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.problems import Problem
from meltica.api.schemas import Page
from meltica.processors.bars import parse_width
from meltica.projections import queries

router = APIRouter(tags=["market data"])
PREFERRED = ("LAST", "MID")  # the series a chart takes when no source is named: trades, then quote mids

Nanos = Annotated[int | None, Query(ge=0, lt=2**63, description="Event time, ns since the epoch.")]


class BarSeries(BaseModel):
    width: str = Field(description="e.g. 1m, 15s, 4h")
    source: str = Field(description="LAST (trades), MID (quote mids), or a replayed series' own")


class BarWidths(BaseModel):
    configured: list[str] | None = Field(
        description="The widths the bar builder makes (settings bar_widths; empty: none; null: not known)."
    )
    series: list[BarSeries] = Field(description="The series that have bars, narrowest first.")


def _width_ns(width: str) -> int:
    try:
        return parse_width(width)[1]
    except ValueError:
        return 2**63  # a replayed series of another unit: after the others


def checked_width(width: str) -> str:
    """`width` as stored (`1m`), or 422 naming the widths accepted."""
    try:
        parse_width(width)
    except ValueError as err:
        raise Problem(422, "validation", "Unknown width", str(err)) from None
    return width.strip()


@router.get("/v1/bars/widths", response_model=BarWidths)
def bar_widths(
    _: ReadKey, db: ReadModels, services: AppServices, instrument_id: str | None = None
) -> BarWidths:
    """Which bars there are: the configured widths and the stored series (of one instrument)."""
    found = sorted(queries.bar_series(db, instrument_id), key=lambda ws: (_width_ns(ws[0]), ws))
    configured = services.bar_widths
    return BarWidths(
        configured=None if configured is None else sorted(configured, key=_width_ns),
        series=[BarSeries(width=w, source=s) for w, s in found],
    )


@router.get("/v1/bars", response_model=Page)
def bars(
    _: ReadKey,
    db: ReadModels,
    instrument_id: Annotated[str, Query(min_length=1, max_length=128)],
    width: Annotated[str, Query(max_length=16, description="e.g. 1m, 15s, 4h.")] = "1m",
    source: Annotated[
        str | None,
        Query(max_length=16, description="LAST, MID, ... (default: LAST if there are such bars, else MID)."),
    ] = None,
    start: Nanos = None,
    end: Nanos = None,
    latest: Annotated[bool, Query(description="The last `limit` bars of the range (no next page).")] = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    """Bars opened in [start, end), oldest first, as exact decimal text."""
    width = checked_width(width)
    if start is not None and end is not None and start > end:
        raise Problem(422, "validation", "Empty range", f"start {start} is after end {end}")
    if source is None:
        sources = {s for w, s in queries.bar_series(db, instrument_id) if w == width}
        source = next((s for s in PREFERRED if s in sources), min(sources, default=PREFERRED[0]))
    found = queries.bars(
        db,
        instrument_id,
        width,
        source,
        start=start,
        end=end,
        limit=limit,
        after=None if latest else after(queries.BARS, cursor),
        latest=latest,
    )
    return page(queries.BARS, found)
