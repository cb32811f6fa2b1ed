"""Read queries over the read models: every SELECT the API makes, as typed functions of an engine.

Lists are keyset pages: each list has a unique, stable sort key (a `Keyset`, ascending, oldest
first where rows have a time); a page is up to `limit` rows after a sort key and gives the key of
its last row when more rows follow. Lookups are by primary key or an index of `tables`.
`accounts` narrows a query to the accounts a caller may see (None: every account)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    and_,
    or_,
    select,
    text,
)

from meltica.domain.control import StrategyState, VenueState
from meltica.domain.orders.events import OrderAccepted
from meltica.domain.risk.events import RiskLimitsChanged
from meltica.domain.values import RiskScope
from meltica.projections import execution_stats
from meltica.projections import tables as t

Row = dict[str, Any]
Accounts = frozenset[str] | None
"""The accounts a caller may see; None: every account."""

BATCH = 500  # ids per `IN (...)` lookup
_INT64 = 2**63


class InvalidKeyError(ValueError):
    """Values that cannot be a list's sort key (another shape, a type or range no row has)."""


@dataclass(frozen=True)
class Keyset:
    """One list: its name and its unique sort key, ascending."""

    name: str
    columns: tuple[Column[Any], ...]

    def key(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """`values` (plain JSON: times as ISO text) as a sort key of this list, or `InvalidKeyError`."""
        if len(values) != len(self.columns):
            raise InvalidKeyError(f"not a cursor of {self.name}")
        return tuple(_value(c, v) for c, v in zip(self.columns, values, strict=True))

    def key_of(self, row: Row) -> tuple[Any, ...]:
        return tuple(row[c.name] for c in self.columns)


@dataclass(frozen=True)
class Rows:
    """One page of a list: its rows, and the sort key of the last one when more rows follow."""

    items: list[Row]
    last: tuple[Any, ...] | None = None


def _value(column: Column[Any], value: Any) -> Any:
    kind = column.type
    if isinstance(kind, BigInteger | Integer):
        if type(value) is not int or not -_INT64 <= value < _INT64:
            raise InvalidKeyError(f"{column.name} out of range")
        return value
    if isinstance(kind, DateTime):
        try:
            return datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise InvalidKeyError(f"{column.name} is not a time") from None
    if isinstance(kind, String):
        if not isinstance(value, str) or (kind.length is not None and len(value) > kind.length):
            raise InvalidKeyError(f"{column.name} is not a valid key")
        return value
    raise InvalidKeyError()  # pragma: no cover - a key column of another type


def _after(columns: Sequence[Column[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows whose key (`columns`, ascending) comes after `values`."""
    first, *rest = columns
    if not rest:
        later: ColumnElement[bool] = first > values[0]
        return later
    return or_(first > values[0], and_(first == values[0], _after(rest, values[1:])))


def _page(
    db: Engine,
    keyset: Keyset,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    limit: int,
    after: tuple[Any, ...] | None,
    item: Callable[[Row], Row] = dict,
) -> Rows:
    conditions = list(where)
    if after is not None:
        conditions.append(_after(keyset.columns, after))
    stmt = select(table).where(*conditions).order_by(*keyset.columns).limit(limit + 1)
    with db.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(stmt)]
    last = None
    if len(found) > limit:
        found = found[:limit]
        last = keyset.key_of(found[-1])
    return Rows([item(r) for r in found], last)


def _equal(column: Column[Any], value: str | None) -> list[ColumnElement[bool]]:
    return [] if value is None or value == "" else [column == value]


def _visible(column: Column[Any], accounts: Accounts) -> list[ColumnElement[bool]]:
    return [] if accounts is None else [column.in_(sorted(accounts))]


def _one(db: Engine, table: Table, *where: ColumnElement[bool]) -> Row | None:
    with db.connect() as conn:
        found = conn.execute(select(table).where(*where).limit(1)).first()
    return None if found is None else dict(found._mapping)


# The lists and their unique sort keys.
ORDERS = Keyset("orders", (t.orders.c.ts_created, t.orders.c.order_id))
ORDER_EVENTS = Keyset(
    "order-events", (t.order_events.c.ts_event, t.order_events.c.offset, t.order_events.c.event_id)
)
FILLS = Keyset("fills", (t.fills.c.ts_event, t.fills.c.trade_id))
POSITIONS = Keyset("positions", (t.positions.c.account_id, t.positions.c.instrument_id))
BALANCES = Keyset("balances", (t.balances.c.account_id, t.balances.c.asset))
PNL = Keyset("pnl", (t.pnl.c.account_id, t.pnl.c.instrument_id))
INSTRUMENTS = Keyset("instruments", (t.instruments.c.instrument_id,))
RISK_EVENTS = Keyset("risk-events", (t.risk_events.c.ts_event, t.risk_events.c.event_id))
BACKTESTS = Keyset("backtests", (t.backtests.c.created_at, t.backtests.c.backtest_id))
VENUES = Keyset("venues", (t.venues.c.venue,))
STRATEGIES = Keyset("strategies", (t.strategies.c.strategy_id,))
BARS = Keyset("bars", (t.bars.c.ts_open,))
EXECUTION_FILLS = Keyset(
    "execution-fills",
    (t.execution_analytics.c.ts_event, t.execution_analytics.c.order_id, t.execution_analytics.c.trade_id),
)


def ping(db: Engine) -> None:
    """Raise unless the read-model database answers."""
    with db.connect() as conn:
        conn.execute(text("SELECT 1"))


# -- orders -------------------------------------------------------------------------------------
def order(db: Engine, order_id: str) -> Row | None:
    return _one(db, t.orders, t.orders.c.order_id == order_id)


def order_statuses(db: Engine, order_ids: Sequence[str]) -> dict[str, str]:
    """The status of each of `order_ids` that has a row, in one query per `BATCH` ids."""
    statuses: dict[str, str] = {}
    with db.connect() as conn:
        for i in range(0, len(order_ids), BATCH):
            query = select(t.orders.c.order_id, t.orders.c.status).where(
                t.orders.c.order_id.in_(order_ids[i : i + BATCH])
            )
            statuses.update({row.order_id: row.status for row in conn.execute(query)})
    return statuses


@dataclass(frozen=True)
class Submitted:
    """An order's row and, once accepted, the spec its `OrderAccepted` event carries."""

    row: Row
    accepted_spec: dict[str, Any] | None


def submitted(db: Engine, order_id: str) -> Submitted | None:
    """What the read models know an order was submitted with, if it exists."""
    with db.connect() as conn:
        row = conn.execute(select(t.orders).where(t.orders.c.order_id == order_id)).first()
        if row is None:
            return None
        accepted = conn.execute(
            select(t.order_events.c.payload)
            .where(t.order_events.c.order_id == order_id, t.order_events.c.type == OrderAccepted.__name__)
            .limit(1)
        ).scalar()
    spec = None if accepted is None else json.loads(accepted)["order"]
    return Submitted(dict(row._mapping), spec)


def orders(
    db: Engine,
    *,
    limit: int,
    after: tuple[Any, ...] | None = None,
    accounts: Accounts = None,
    account_id: str | None = None,
    instrument_id: str | None = None,
    status: str | None = None,
    parent_order_id: str | None = None,
) -> Rows:
    where = [
        *_equal(t.orders.c.account_id, account_id),
        *_equal(t.orders.c.instrument_id, instrument_id),
        *_equal(t.orders.c.status, status),
        *_equal(t.orders.c.parent_order_id, parent_order_id),
        *_visible(t.orders.c.account_id, accounts),
    ]
    return _page(db, ORDERS, t.orders, where, limit, after)


def child_order_ids(db: Engine, parent: Row) -> list[str]:
    """The ids of the orders whose parent is the order `parent` (a row), oldest first. Children
    share their parent's account (an order list has one account; a routed order's slices trade
    for its account), which keeps the lookup on the `(account_id, parent_order_id)` index."""
    o = t.orders.c
    query = (
        select(o.order_id)
        .where(o.account_id == parent["account_id"], o.parent_order_id == parent["order_id"])
        .order_by(*ORDERS.columns)
    )
    with db.connect() as conn:
        return list(conn.execute(query).scalars())


def order_events(db: Engine, order_id: str, *, limit: int, after: tuple[Any, ...] | None = None) -> Rows:
    return _page(db, ORDER_EVENTS, t.order_events, [t.order_events.c.order_id == order_id], limit, after)


# -- portfolio and reference data -----------------------------------------------------------------
def fills(
    db: Engine,
    *,
    limit: int,
    after: tuple[Any, ...] | None = None,
    accounts: Accounts = None,
    account_id: str | None = None,
    order_id: str | None = None,
) -> Rows:
    where = [
        *_equal(t.fills.c.account_id, account_id),
        *_equal(t.fills.c.order_id, order_id),
        *_visible(t.fills.c.account_id, accounts),
    ]
    return _page(db, FILLS, t.fills, where, limit, after)


# Lists of one row per account and asset or instrument: their sort key and table.
PER_ACCOUNT: dict[str, tuple[Keyset, Table]] = {
    "positions": (POSITIONS, t.positions),
    "balances": (BALANCES, t.balances),
    "pnl": (PNL, t.pnl),
}


def per_account(
    kind: str,
    db: Engine,
    *,
    limit: int,
    after: tuple[Any, ...] | None = None,
    accounts: Accounts = None,
    account_id: str | None = None,
) -> Rows:
    """A page of positions, balances or pnl (`kind`) of the `accounts` visible, or of one."""
    keyset, table = PER_ACCOUNT[kind]
    where = [*_visible(table.c.account_id, accounts), *_equal(table.c.account_id, account_id)]
    return _page(db, keyset, table, where, limit, after)


def equity_history(
    db: Engine,
    *,
    limit: int,
    accounts: Accounts = None,
    account_id: str | None = None,
    start: int | None = None,
    end: int | None = None,
) -> list[dict[str, Any]]:
    """The latest `limit` equity points in [start, end) of the visible accounts (or one), oldest first."""
    e = t.equity
    where = [*_visible(e.c.account_id, accounts), *_equal(e.c.account_id, account_id)]
    if start is not None:
        where.append(e.c.ts_event >= start)
    if end is not None:
        where.append(e.c.ts_event < end)
    query = select(e).where(*where).order_by(e.c.ts_event.desc(), e.c.account_id, e.c.currency).limit(limit)
    with db.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return rows[::-1]


# -- execution analytics ----------------------------------------------------------------------------
EXECUTION_GROUPS: dict[str, Column[Any]] = {
    "venue": t.execution_analytics.c.venue,
    "instrument": t.execution_analytics.c.instrument_id,
    "strategy": t.execution_analytics.c.strategy_id,
}


def execution_analytics(
    db: Engine,
    group_by: str,
    *,
    start: int | None = None,
    end: int | None = None,
    accounts: Accounts = None,
    account_id: str | None = None,
) -> list[execution_stats.Aggregate]:
    """Execution aggregates of the fills in [start, end) of the `accounts` visible (or of one), per
    venue, instrument or strategy (`group_by`); every fill of the window counts (none left out)."""
    ea = t.execution_analytics.c
    key = EXECUTION_GROUPS[group_by]
    where = [*_visible(ea.account_id, accounts), *_equal(ea.account_id, account_id)]
    if start is not None:
        where.append(ea.ts_event >= start)
    if end is not None:
        where.append(ea.ts_event < end)
    stmt = select(key, ea.quantity, ea.fill_px, ea.slippage_bps, ea.submit_to_ack_ns, ea.ack_to_fill_ns)
    with db.connect() as conn:
        rows = conn.execute(stmt.where(*where))
        return execution_stats.aggregate(execution_stats.Fill(*r) for r in rows)


def execution_fills(
    db: Engine,
    *,
    limit: int,
    after: tuple[Any, ...] | None = None,
    accounts: Accounts = None,
    account_id: str | None = None,
    order_id: str | None = None,
    start: int | None = None,
    end: int | None = None,
    latest: bool = False,
) -> Rows:
    """A page of the fills' execution analytics in [start, end), oldest first, of the `accounts`
    visible (or of one, or of one order); `latest`: the last `limit` of them (no next page)."""
    ea = t.execution_analytics.c
    where = [
        *_visible(ea.account_id, accounts),
        *_equal(ea.account_id, account_id),
        *_equal(ea.order_id, order_id),
    ]
    where += [] if start is None else [ea.ts_event >= start]
    where += [] if end is None else [ea.ts_event < end]
    if not latest:
        return _page(db, EXECUTION_FILLS, t.execution_analytics, where, limit, after)
    newest = [c.desc() for c in EXECUTION_FILLS.columns]
    stmt = select(t.execution_analytics).where(*where).order_by(*newest).limit(limit)
    with db.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(stmt)]
    return Rows(found[::-1])


def instruments(db: Engine, *, limit: int, after: tuple[Any, ...] | None = None) -> Rows:
    return _page(db, INSTRUMENTS, t.instruments, [], limit, after)


def instrument_defined(db: Engine, instrument_id: str) -> bool:
    with db.connect() as conn:
        found = conn.execute(
            select(t.instruments.c.instrument_id).where(t.instruments.c.instrument_id == instrument_id)
        ).first()
    return found is not None


def instrument(db: Engine, instrument_id: str) -> Row | None:
    return _one(db, t.instruments, t.instruments.c.instrument_id == instrument_id)


# -- bars ---------------------------------------------------------------------------------------
def bars(
    db: Engine,
    instrument_id: str,
    width: str,
    source: str,
    *,
    start: int | None = None,
    end: int | None = None,
    limit: int,
    after: tuple[Any, ...] | None = None,
    latest: bool = False,
) -> Rows:
    """A page of one instrument's bars of `width` and `source` opened in [start, end), oldest
    first; `latest`: the last `limit` of them (oldest first, no next page)."""
    c = t.bars.c
    where = [c.instrument_id == instrument_id, c.width == width, c.source == source]
    where += [] if start is None else [c.ts_open >= start]
    where += [] if end is None else [c.ts_open < end]
    if not latest:
        return _page(db, BARS, t.bars, where, limit, after)
    stmt = select(t.bars).where(*where).order_by(c.ts_open.desc()).limit(limit)
    with db.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(stmt)]
    return Rows(found[::-1])


def bar_series(db: Engine, instrument_id: str | None = None) -> list[tuple[str, str]]:
    """The (width, source) pairs that have bars (of one instrument, or of any)."""
    c = t.bars.c
    stmt = select(c.width, c.source).where(*_equal(c.instrument_id, instrument_id)).distinct()
    with db.connect() as conn:
        return sorted((r.width, r.source) for r in conn.execute(stmt))


# -- risk ---------------------------------------------------------------------------------------
def risk_events(
    db: Engine, *, limit: int, after: tuple[Any, ...] | None = None, accounts: Accounts = None
) -> Rows:
    """Risk events; with `accounts`, those of other scopes and of these accounts."""
    mine = _visible(t.risk_events.c.scope_id, accounts)
    where = [or_(t.risk_events.c.scope != RiskScope.ACCOUNT.value, *mine)] if mine else []
    return _page(db, RISK_EVENTS, t.risk_events, where, limit, after)


def risk_limit_changes(db: Engine) -> list[dict[str, Any]]:
    """Every `RiskLimitsChanged` payload, oldest first."""
    stmt = (
        select(t.risk_events.c.payload)
        .where(t.risk_events.c.type == RiskLimitsChanged.__name__)
        .order_by(t.risk_events.c.ts_event)
    )
    with db.connect() as conn:
        return [json.loads(payload) for payload in conn.execute(stmt).scalars()]


# -- backtests ----------------------------------------------------------------------------------
def backtests(
    db: Engine, *, limit: int, after: tuple[Any, ...] | None = None, strategy: str | None = None
) -> Rows:
    return _page(db, BACKTESTS, t.backtests, _equal(t.backtests.c.strategy, strategy), limit, after)


def backtest(db: Engine, backtest_id: str) -> Row | None:
    return _one(db, t.backtests, t.backtests.c.backtest_id == backtest_id)


def backtest_report(db: Engine, backtest_id: str) -> str | None:
    """A stored backtest's HTML report (None: no such backtest, or it was stored without one)."""
    found = _one(db, t.backtest_reports, t.backtest_reports.c.backtest_id == backtest_id)
    return None if found is None else str(found["html"])


BACKTEST_JOBS = Keyset("backtest-jobs", (t.backtest_jobs.c.submitted_at, t.backtest_jobs.c.job_id))


def backtest_jobs(
    db: Engine, *, limit: int, after: tuple[Any, ...] | None = None, status: str | None = None
) -> Rows:
    where = _equal(t.backtest_jobs.c.status, status)
    return _page(db, BACKTEST_JOBS, t.backtest_jobs, where, limit, after, _job)


def backtest_job(db: Engine, job_id: str) -> Row | None:
    """A backtest job submitted over the API, with its status and progress."""
    found = _one(db, t.backtest_jobs, t.backtest_jobs.c.job_id == job_id)
    return None if found is None else _job(found)


def _job(row: Row) -> Row:
    """A job as callers see it: its stored request and the server running it are the runner's."""
    return _params({k: v for k, v in row.items() if k not in ("request", "runner")})


# -- control plane: rows with their `params` decoded --------------------------------------------
def _params(row: Row) -> Row:
    return {**row, "params": json.loads(row["params"])}


def venues(
    db: Engine, *, limit: int, after: tuple[Any, ...] | None = None, include_removed: bool = False
) -> Rows:
    where = [] if include_removed else [t.venues.c.state != VenueState.REMOVED.value]
    return _page(db, VENUES, t.venues, where, limit, after, _params)


def venue(db: Engine, name: str) -> Row | None:
    found = _one(db, t.venues, t.venues.c.venue == name)
    return None if found is None else _params(found)


def strategies(
    db: Engine,
    *,
    limit: int,
    after: tuple[Any, ...] | None = None,
    accounts: Accounts = None,
    account_id: str | None = None,
    include_removed: bool = False,
) -> Rows:
    where = [] if account_id is None else [t.strategies.c.account_id == account_id]
    where += _visible(t.strategies.c.account_id, accounts)
    if not include_removed:
        where.append(t.strategies.c.state != StrategyState.REMOVED.value)
    return _page(db, STRATEGIES, t.strategies, where, limit, after, _params)


def strategy(db: Engine, strategy_id: str) -> Row | None:
    found = _one(db, t.strategies, t.strategies.c.strategy_id == strategy_id)
    return None if found is None else _params(found)
