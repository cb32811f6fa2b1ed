"""Contract: one log projected into SQLite and into PostgreSQL gives the same rows, cell for cell, in
every read model (and the same projector offsets).

The log is a trading day run through the embedded stack: instruments, limits and funds; a grid
strategy created, started and stopped; market, limit, stop, stop-limit, iceberg, IOC, FOK and
post-only orders; fills partial and full; amends accepted and refused; cancels; OCO and a bracket;
denials; a kill switch tripped and reset; a market-data connection's states. The reference is the
whole log projected into SQLite in one go; each backend projects it a few records per poll, so
order rows are read back from the database and folded on between polls.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, create_engine, select, text, update

from meltica.clock import SimulatedClock
from meltica.domain.control import (
    ControlStrategy,
    StrategyAction,
    VenueState,
    VenueStateChanged,
)
from meltica.domain.instruments import spot
from meltica.domain.marketdata import Bar
from meltica.domain.orders.commands import AmendOrder, CancelOrder, SubmitOrderList
from meltica.domain.orders.model import OrderSpec
from meltica.domain.risk.events import ResetKillSwitch, SetRiskLimits, TripKillSwitch
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import ContingencyType, OrderSide, OrderType, RiskScope, TimeInForce, TriggerType
from meltica.projections import migrations
from meltica.projections import tables as t
from meltica.projections.projector import READ_MODELS, Projector
from meltica.topics import BARS, RISK_COMMANDS, STRATEGY_COMMANDS, VENUE_EVENTS
from tests.e2e.stack import BTC, T0, Stack

TABLES: tuple[Table, ...] = (*READ_MODELS, t.projection_offsets)
ETH = spot("ETHUSDT", "SIM", "ETH", "USDT", price_increment="0.01", size_increment="0.0001")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
Rows = dict[str, list[tuple[str, ...]]]


def trading_day() -> Stack:
    """The log of a day of trading on ACC-1, built by the embedded stack."""
    s = Stack()
    s.setup(BTC, ETH)
    limits = RiskLimits(
        throttle_rate=Decimal(100),
        throttle_burst=100,
        max_open_orders=100,
        circuit_breaker_breaches=100,
        price_band=Decimal("0.05"),
    )
    s.command(SetRiskLimits(RiskScope.ACCOUNT, "ACC-1", limits, "ops", s.tick()), RISK_COMMANDS)
    grid = {"step": "0.05", "levels": "2", "quantity": "0.1"}
    s.command(
        ControlStrategy(
            StrategyAction.CREATE, "grid-1", "ACC-1", "ops", s.tick(), "grid", BTC.instrument_id, grid
        ),
        STRATEGY_COMMANDS,
    )
    s.command(ControlStrategy(StrategyAction.START, "grid-1", "ACC-1", "ops", s.tick()), STRATEGY_COMMANDS)
    s.publisher.publish(  # as the market-data connection manager reports a connection
        VENUE_EVENTS,
        VenueStateChanged(
            "sim", "synthetic", {"seed": "7"}, VenueState.LIVE, "started", 10, 9, 1, 0, 0, 0, s.tick()
        ),
    )
    # bars as the bars processor closes them; the third replaces the first (a replay)
    for i, close in enumerate(("100.01", "100.000000000000000001", "100.02")):
        opened = T0 + (i % 2) * 60 * 10**9
        bar = Bar(
            BTC.instrument_id,
            "1-MINUTE-LAST",
            *map(Decimal, ("100", "100.5", "99.5", close, "0.3")),
            opened,
            opened + 60 * 10**9,
        )
        s.publisher.publish(BARS, bar)
    s.quote("100.00", "100.02")  # the grid places its orders

    s.submit(qty="2", price="100.02")  # marketable limit: filled
    s.submit(OrderSide.SELL, qty="15", price=None, order_type=OrderType.MARKET)  # walks the book
    s.quote("100.00", "100.02")
    s.submit(price="150.00")  # denied: price band
    amended = s.submit(qty="1", price="99.90")
    s.command(AmendOrder(amended.order_id, "ACC-1", BTC.instrument_id, s.tick(), quantity=Decimal(2)))
    s.command(CancelOrder(amended.order_id, "ACC-1", BTC.instrument_id, s.tick()))
    s.command(CancelOrder(amended.order_id, "ACC-1", BTC.instrument_id, s.tick()))  # already canceled
    s.submit(qty="15", price="100.02", time_in_force=TimeInForce.IOC)
    s.quote("100.00", "100.02")
    s.submit(qty="15", price="100.02", time_in_force=TimeInForce.FOK)
    s.submit(qty="1", price="100.02", post_only=True)  # rejected by the venue
    s.submit(qty="1", price="99.80")  # resting until the kill switch cancels it
    s.command(TripKillSwitch(RiskScope.ACCOUNT, "ACC-1", "test", "ops", s.tick()), RISK_COMMANDS)
    s.submit(qty="1", price="100.00")  # denied: kill switch
    s.command(ResetKillSwitch(RiskScope.ACCOUNT, "ACC-1", "ops", s.tick()), RISK_COMMANDS)
    s.command(ControlStrategy(StrategyAction.STOP, "grid-1", "ACC-1", "ops", s.tick()), STRATEGY_COMMANDS)

    s.submit(qty="1", price="99.00")  # stays partially filled
    replaced = s.submit(qty="1", price="99.00")
    s.trade("99.00", size="0.4")  # both partially filled
    s.command(AmendOrder(replaced.order_id, "ACC-1", BTC.instrument_id, s.tick(), quantity=Decimal("0.3")))
    s.command(AmendOrder(replaced.order_id, "ACC-1", BTC.instrument_id, s.tick(), quantity=Decimal(2)))
    s.submit(qty="3", price="99.10", display_quantity=Decimal(1))  # iceberg, resting
    s.quote("100.00", "100.02")
    stop: dict[str, Any] = {
        "trigger_type": TriggerType.LAST,
        "price": None,
        "order_type": OrderType.STOP_MARKET,
    }
    s.submit(OrderSide.SELL, qty="1", trigger_price=Decimal("99.50"), **stop)
    s.submit(
        OrderSide.SELL,
        qty="1",
        price="98.00",
        order_type=OrderType.STOP_LIMIT,
        trigger_price=Decimal("98.50"),
    )  # never triggers: stays ACCEPTED
    oco: dict[str, Any] = {"contingency_type": ContingencyType.OCO}
    s.submit(OrderSide.SELL, qty="1", price="100.50", order_id="TP", linked_order_ids=("SL",), **oco)
    s.submit(
        OrderSide.SELL,
        qty="1",
        order_id="SL",
        trigger_price=Decimal("99.40"),
        linked_order_ids=("TP",),
        **oco,
        **stop,
    )
    s.command(SubmitOrderList("B1", "ACC-1", bracket(), s.tick()))
    s.trade("99.80")
    s.trade("99.50")  # the stop fires
    s.trade("100.60")  # through the take-profit: its OCO stop is canceled
    s.quote("100.20", "100.24")
    return s


def bracket() -> tuple[OrderSpec, ...]:
    common: dict[str, Any] = {
        "account_id": "ACC-1",
        "instrument_id": BTC.instrument_id,
        "quantity": Decimal(1),
    }
    return (
        OrderSpec(
            "E",
            "E",
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            price=Decimal("99.90"),
            contingency_type=ContingencyType.OTO,
            **common,
        ),
        OrderSpec(
            "E-TP",
            "E-TP",
            side=OrderSide.SELL,
            order_type=OrderType.LIMIT,
            price=Decimal("100.40"),
            parent_order_id="E",
            contingency_type=ContingencyType.OCO,
            linked_order_ids=("E-SL",),
            **common,
        ),
        OrderSpec(
            "E-SL",
            "E-SL",
            side=OrderSide.SELL,
            order_type=OrderType.STOP_MARKET,
            trigger_price=Decimal("99.60"),
            parent_order_id="E",
            contingency_type=ContingencyType.OCO,
            linked_order_ids=("E-TP",),
            **common,
        ),
    )


@pytest.fixture(scope="module")
def day() -> Stack:
    return trading_day()


# -- the read models as comparable rows -------------------------------------------------------------
def _cell(table: Table, column: str, value: Any) -> str:
    """A cell as exact text with its type: `Decimal('1.0')` and `Decimal('1')` differ."""
    if table is t.projection_offsets and column == "updated_at" and isinstance(value, datetime):
        # the one backend difference: SQLite keeps no time zone and reads back a naive UTC datetime,
        # PostgreSQL's timestamptz an aware one in the session's zone; the instant is what counts
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{type(value).__name__}:{value!s}"


def read_models(db: Engine) -> Rows:
    """Every row of every read model, as text, in primary-key order (sorted here, not in SQL:
    the backends collate text differently)."""
    out: Rows = {}
    with db.connect() as conn:
        for table in TABLES:
            keys = [c.name for c in table.primary_key.columns]
            rows = sorted(conn.execute(select(table)), key=lambda r: tuple(r._mapping[k] for k in keys))
            out[table.name] = [tuple(_cell(table, c, v) for c, v in r._mapping.items()) for r in rows]
    return out


def differences(expected: Rows, actual: Rows) -> list[str]:
    """Each table whose rows differ, with the first row that does."""
    found = []
    for name, rows in expected.items():
        got = actual.get(name, [])
        if got != rows:
            first = next(
                (i for i, (a, b) in enumerate(zip(rows, got, strict=False)) if a != b),
                min(len(rows), len(got)),
            )
            found.append(
                f"{name}: {len(rows)} rows expected, {len(got)} projected; first difference at row {first}: "
                f"{rows[first] if first < len(rows) else None} != {got[first] if first < len(got) else None}"
            )
    return found


def project(day: Stack, db: Engine, per_poll: int) -> Rows:
    projector = Projector(day.log, day.codec, db, clock=SimulatedClock(T0))
    while projector.poll_once(max_records=per_poll):
        pass
    return read_models(db)


# -- the databases ----------------------------------------------------------------------------------
@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / f'rm-{uuid.uuid4().hex[:8]}.db'}"


@pytest.fixture
def postgres_url(database_url: str) -> Iterator[str]:
    """A database of its own on the test server: other tests migrate the shared one up and down."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"meltica_rm_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield database_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The read-model database of one backend, migrated to the head revision."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    migrations.upgrade(url)
    db = create_engine(url)
    yield db
    db.dispose()


@pytest.fixture
def reference(day: Stack, tmp_path: Path) -> Rows:
    """The whole log projected into SQLite in one go."""
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    migrations.upgrade(url)
    db = create_engine(url)
    try:
        return project(day, db, per_poll=100_000)
    finally:
        db.dispose()


# -- the contract -----------------------------------------------------------------------------------
def test_the_day_covers_every_read_model(reference: Rows) -> None:
    """The log is worth comparing: no read model is empty, and the orders end in many statuses."""
    assert [name for name, rows in reference.items() if not rows] == []
    status = [c.name for c in t.orders.columns].index("status")
    statuses = {row[status].partition(":")[2] for row in reference["orders"]}
    assert statuses == {
        "ACCEPTED",
        "NEW",
        "PARTIALLY_FILLED",
        "REPLACED",
        "FILLED",
        "CANCELED",
        "DENIED",
        "REJECTED",
    }


def test_one_log_gives_the_same_rows_in_every_backend(day: Stack, backend: Engine, reference: Rows) -> None:
    assert differences(reference, project(day, backend, per_poll=5)) == []


def test_a_changed_cell_is_a_difference(day: Stack, backend: Engine, reference: Rows) -> None:
    """The comparison can fail: one cell changed in the database is reported, with its table."""
    assert differences(reference, project(day, backend, per_poll=5)) == []
    with backend.begin() as conn:
        order_id = conn.scalars(select(t.orders.c.order_id).where(t.orders.c.status == "FILLED")).first()
        conn.execute(
            update(t.orders).where(t.orders.c.order_id == order_id).values(filled_qty=Decimal("0.001"))
        )
    found = differences(reference, read_models(backend))
    assert [line.partition(":")[0] for line in found] == ["orders"]
