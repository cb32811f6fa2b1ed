"""Execution analytics of the accounts a key may read: aggregates of the fills' `ExecutionAnalyzed`
(slippage against the arrival mid, venue latencies) per venue, instrument or strategy."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from meltica.api.deps import ReadKey, ReadModels
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.problems import Problem
from meltica.api.schemas import Page
from meltica.projections import queries
from meltica.projections.execution_stats import Aggregate

router = APIRouter(tags=["portfolio"])

Nanos = Annotated[int | None, Query(ge=0, lt=2**63, description="Event time, ns since the epoch.")]
Text = str | None


class ExecutionGroup(BaseModel):
    key: str | None = Field(description="The venue, instrument or strategy id (null: orders of no strategy).")
    fills: int
    quantity: str = Field(description="Exact decimal: the fills' quantity.")
    notional: str = Field(description="Exact decimal: sum of quantity x fill price (in each quote's units).")
    slipped: int = Field(description="Fills with a slippage (an arrival mid was known).")
    mean_slippage_bps: Text = Field(description="Positive: worse for the order. Half-even to 0.0001 bps.")
    median_slippage_bps: Text
    p95_slippage_bps: Text = Field(description="Nearest rank: one fill's own slippage.")
    weighted_slippage_bps: Text = Field(description="Mean weighted by each fill's notional.")
    mean_submit_to_ack_ns: int | None = Field(description="Sent to the venue -> acknowledged.")
    mean_ack_to_fill_ns: int | None = Field(description="Acknowledged -> filled.")


class ExecutionAnalytics(BaseModel):
    group_by: str
    start: int | None
    end: int | None
    groups: list[ExecutionGroup]


def _text(value: Decimal | None) -> str | None:
    """Fixed-point text without trailing zeros (no rounding: the value may exceed the context)."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _group(a: Aggregate) -> ExecutionGroup:
    return ExecutionGroup(
        key=a.key,
        fills=a.fills,
        quantity=str(_text(a.quantity)),
        notional=str(_text(a.notional)),
        slipped=a.slipped,
        mean_slippage_bps=_text(a.mean_slippage_bps),
        median_slippage_bps=_text(a.median_slippage_bps),
        p95_slippage_bps=_text(a.p95_slippage_bps),
        weighted_slippage_bps=_text(a.weighted_slippage_bps),
        mean_submit_to_ack_ns=a.mean_submit_to_ack_ns,
        mean_ack_to_fill_ns=a.mean_ack_to_fill_ns,
    )


@router.get("/v1/analytics/execution", response_model=ExecutionAnalytics)
def execution(
    k: ReadKey,
    db: ReadModels,
    group_by: Literal["venue", "instrument", "strategy"] = "venue",
    start: Nanos = None,
    end: Nanos = None,
    account_id: Annotated[str | None, Query(max_length=128)] = None,
) -> ExecutionAnalytics:
    """Fills in [start, end) of the accounts the key may read (or of one), aggregated per group."""
    _window(start, end)
    found = queries.execution_analytics(
        db, group_by, start=start, end=end, accounts=k.visible, account_id=account_id
    )
    return ExecutionAnalytics(group_by=group_by, start=start, end=end, groups=[_group(a) for a in found])


@router.get("/v1/analytics/execution/fills", response_model=Page)
def execution_fills(
    k: ReadKey,
    db: ReadModels,
    start: Nanos = None,
    end: Nanos = None,
    account_id: Annotated[str | None, Query(max_length=128)] = None,
    order_id: Annotated[str | None, Query(max_length=128)] = None,
    latest: Annotated[bool, Query(description="The last `limit` fills of the range (no next page).")] = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    """Each fill's execution analytics in [start, end), oldest first, as exact decimal text."""
    _window(start, end)
    found = queries.execution_fills(
        db,
        limit=limit,
        after=None if latest else after(queries.EXECUTION_FILLS, cursor),
        accounts=k.visible,
        account_id=account_id,
        order_id=order_id,
        start=start,
        end=end,
        latest=latest,
    )
    return page(queries.EXECUTION_FILLS, found)


def _window(start: int | None, end: int | None) -> None:
    if start is not None and end is not None and start > end:
        raise Problem(422, "validation", "Empty range", f"start {start} is after end {end}")
