"""Snapshots: restoring one and replaying the tail gives the same state as replaying everything,
for the processors and for the read models."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from meltica.cli.app import app
from meltica.control import snapshots
from meltica.domain.control import ControlStrategy, StrategyAction
from meltica.domain.orders.commands import CancelOrder
from meltica.domain.values import OrderSide
from meltica.log.sqlite import SqliteLog
from meltica.projections import migrations
from meltica.projections.projector import READ_MODELS, Projector
from meltica.strategies.operators import DelayStrategy
from meltica.topics import STRATEGY_COMMANDS
from meltica.topology import Wiring, build_engine
from tests.e2e.stack import BTC, Stack
from tests.state import canonical


def workload(stack: Stack, rng: random.Random, steps: int) -> None:
    for _ in range(steps):
        roll = rng.random()
        mid = Decimal(100) + Decimal(rng.randint(-50, 50)) / 100
        if roll < 0.5:
            stack.quote(str(mid - Decimal("0.01")), str(mid + Decimal("0.01")))
        elif roll < 0.65:
            stack.trade(str(mid))
        elif roll < 0.9:
            side = OrderSide.BUY if rng.random() < 0.5 else OrderSide.SELL
            stack.submit(
                side, qty=str(rng.randint(1, 3)), price=str(mid + Decimal(rng.randint(-20, 20)) / 100)
            )
        elif stack._n:
            stack.command(
                CancelOrder(f"O{rng.randint(1, stack._n)}", "ACC-1", BTC.instrument_id, stack.tick())
            )


def strategy(stack: Stack, action: StrategyAction, **kw: Any) -> None:
    cmd = ControlStrategy(action, "later", "ACC-1", "test", stack.tick(), **kw)
    stack.command(cmd, STRATEGY_COMMANDS)


def engine_on(stack: Stack) -> Any:
    return build_engine(stack.log, stack.codec, Wiring(bar_widths=("1s",)), clock=stack.clock)


def rows(db: Any) -> dict[str, list[Any]]:
    with db.connect() as conn:
        return {
            t.name: sorted((canonical(dict(r._mapping)) for r in conn.execute(select(t))), key=repr)
            for t in READ_MODELS
        }


def test_snapshot_plus_tail_equals_full_replay(tmp_path: Path) -> None:
    stack = Stack(log=SqliteLog(tmp_path / "log.db"))
    stack.engine = engine_on(stack)
    urls = [f"sqlite:///{tmp_path / n}" for n in ("live.db", "restored.db")]
    for url in urls:
        migrations.upgrade(url)
    live_db, restored_db = (create_engine(u) for u in urls)
    projector = Projector(stack.log, stack.codec, live_db)
    rng = random.Random(5)
    stack.setup()
    strategy(
        stack,
        StrategyAction.CREATE,
        kind="delay",
        instrument_id=BTC.instrument_id,
        params={"delay_ms": "2000", "repeat_ms": "3000"},
    )
    strategy(stack, StrategyAction.START)
    workload(stack, rng, 150)
    projector.catch_up()

    path = snapshots.save(snapshots.capture(stack.engine, live_db), tmp_path / "s.snap")
    snapshot = snapshots.load(path)
    assert snapshot.processor_names == [
        "bars",
        "risk",
        "orders",
        "venue",
        "router",
        "portfolio",
        "strategies",
    ]

    strategy(stack, StrategyAction.UPDATE, params={"quantity": "2"})
    workload(stack, rng, 150)
    projector.catch_up()
    assert [
        o for o in stack.events("orders.commands") if getattr(getattr(o, "order", None), "strategy_id", None)
    ]

    full = engine_on(stack)
    replayed_all = full.recover()
    tail = engine_on(stack)
    replayed_tail = tail.recover((snapshot.processors, snapshot.positions))
    assert 0 < replayed_tail < replayed_all
    assert stack.events("marketdata.bars")  # the bar builder's state is part of it
    live_state = canonical(stack.engine.processors)
    assert canonical(full.processors) == live_state
    assert canonical(tail.processors) == live_state
    twice = engine_on(stack)  # the check can fail: applying the snapshot's steps twice differs
    twice.recover((snapshots.load(path).processors, dict.fromkeys(snapshot.positions, 0)))
    assert canonical(twice.processors) != live_state

    snapshots.restore_read_models(snapshot, restored_db)
    Projector(stack.log, stack.codec, restored_db).catch_up()
    assert rows(restored_db) == rows(live_db)
    assert rows(live_db)["orders"]


def test_a_snapshot_of_another_log_or_topology_is_refused(tmp_path: Path) -> None:
    stack = Stack(log=SqliteLog(tmp_path / "log.db"))
    stack.setup()
    snapshot = snapshots.capture(stack.engine)
    with pytest.raises(Exception, match="other processors"):
        engine_on(stack).recover((snapshot.processors, snapshot.positions))
    other = Stack(log=SqliteLog(tmp_path / "other.db"))
    with pytest.raises(Exception, match="ahead of this log"):
        build_engine(other.log, other.codec).recover((snapshot.processors, snapshot.positions))


def test_cli_create_list_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MELTICA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MELTICA_DATABASE_URL", raising=False)
    monkeypatch.delenv("MELTICA_KAFKA_BOOTSTRAP", raising=False)  # else the log is the cluster's
    stack = Stack(log=SqliteLog(tmp_path / "log.db"))
    stack.setup()
    workload(stack, random.Random(1), 40)
    runner = CliRunner()
    created = runner.invoke(app, ["snapshot", "create", "--no-demo"])
    assert created.exit_code == 0, created.output
    [made] = list((tmp_path / "snapshots").glob("*.snap"))
    assert "replaying" in created.output
    again = runner.invoke(app, ["snapshot", "create", "--no-demo", "--out", str(tmp_path / "second.snap")])
    assert again.exit_code == 0
    assert f"from {made.name}" in again.output
    listed = runner.invoke(app, ["snapshot", "list"])
    assert made.name[:12] in listed.output
    restored = runner.invoke(app, ["snapshot", "restore", str(tmp_path / "second.snap")])
    assert restored.exit_code == 0, restored.output
    bad = tmp_path / "bad.snap"
    bad.write_bytes(b"not a snapshot")
    refused = runner.invoke(app, ["snapshot", "restore", str(bad)])
    assert refused.exit_code == 1
    assert "not a Meltica snapshot" in refused.output


def test_a_snapshot_is_only_used_by_an_engine_set_up_the_same_way(tmp_path: Path) -> None:
    stack = Stack(log=SqliteLog(tmp_path / "log.db"))
    stack.engine = engine_on(stack)  # bars of 1 second
    stack.setup()
    directory = tmp_path / "snapshots"
    snapshots.save(snapshots.capture(stack.engine), directory / "a.snap")
    assert snapshots.latest(directory, engine_on(stack).processors) is not None
    other_widths = build_engine(stack.log, stack.codec, Wiring(bar_widths=("1m",)), clock=stack.clock)
    assert snapshots.latest(directory, other_widths.processors) is None
    with_strategy = build_engine(
        stack.log, stack.codec, Wiring(bar_widths=("1s",), strategies=(DelayStrategy("X.SIM"),))
    )
    assert snapshots.latest(directory, with_strategy.processors) is None
