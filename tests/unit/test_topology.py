"""The topology is the one place a processor's wiring is declared: these hold it to that."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from meltica.cli.run import Service
from meltica.clock import Clock
from meltica.runtime.engine import Engine
from meltica.runtime.processor import Output
from meltica.strategies.demo import DemoStrategy
from meltica.topics import (
    EXTERNAL,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    TOPIC_BY_NAME,
    all_topics,
    dead_letter_topic,
)
from meltica.topology import INPUTS, OUTPUTS, TOPOLOGY, Wiring, factory, processors
from tests.e2e.stack import BTC, Stack

SRC = Path(__file__).resolve().parents[2] / "src" / "meltica"


def test_every_topic_a_node_names_is_a_declared_topic() -> None:
    for n in TOPOLOGY:
        assert set(n.inputs) | set(n.outputs) <= set(TOPIC_BY_NAME), n.name
        assert n.key in {"account_id", "instrument_id"}


def test_a_node_builds_the_processor_it_names() -> None:
    for n in TOPOLOGY:
        assert n.build(Wiring(bar_widths=("1m",))).name == n.name


def test_the_engine_runs_bars_only_with_bar_widths() -> None:
    assert [p.name for p in processors(Wiring())] == [n.name for n in TOPOLOGY if n.name != "bars"]
    assert [p.name for p in processors(Wiring(bar_widths=("1s",)))] == [n.name for n in TOPOLOGY]


def test_every_processor_is_a_service_and_has_its_journal_and_snapshot_topics() -> None:
    names = {t.name for t in all_topics()}
    for n in TOPOLOGY:
        assert n.name in [s.value for s in Service]
        assert {f"processors.{n.name}.journal", f"processors.{n.name}.snapshots"} <= names


def test_strategies_are_split_by_the_partition_of_their_account() -> None:
    many = tuple(DemoStrategy(f"s{i}", f"A{i}", sizes={"BTCUSDT.SIM": "0.01"}) for i in range(16))
    make = factory("strategies", Wiring(strategies=many), partitions=4)
    split = [make(p).strategies for p in range(4)]  # type: ignore[attr-defined]
    assert sorted(s.account_id for part in split for s in part) == sorted(s.account_id for s in many)
    assert all(part for part in split)  # 16 accounts land on every one of 4 partitions


def test_nothing_in_the_runtime_imports_what_it_hosts() -> None:
    hosted = ("meltica.processors", "meltica.strategies", "meltica.venues", "meltica.topology", "meltica.cli")
    for path in (SRC / "runtime").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(hosted), f"{path.name} imports {node.module}"


class Stray:
    """Writes order commands, which the topology does not give it."""

    name = "stray"

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        return [Output(ORDER_COMMANDS, "ACC-1", event)]


def test_a_processor_writing_a_topic_not_declared_for_it_fails_its_step() -> None:
    stack = Stack()
    stack.engine = Engine(
        stack.log,
        stack.codec,
        [*processors(Wiring()), Stray()],
        inputs={**INPUTS, "stray": (ORDER_EVENTS,)},
        outputs={**OUTPUTS, "stray": ()},
        external_topics=EXTERNAL,
        clock=stack.clock,
    )
    stack.setup(BTC)
    stack.submit(qty="1", price="100.01", order_id="O1")
    dead = [r for p in range(2) for r in stack.log.read(dead_letter_topic(ORDER_COMMANDS), p, 0, 10)]
    reason = b"processing failed: MelticaError: stray wrote to orders.commands, which the topology does not"
    assert [dict(r.headers)["meltica.dlq.reason"] for r in dead] == [reason + b" give it"]


@pytest.mark.parametrize("name", [n.name for n in TOPOLOGY])
def test_a_processor_built_for_a_partition_of_a_service_is_fresh(name: str) -> None:
    make = factory(name, Wiring(), partitions=2)
    assert make(0) is not make(1)


def test_the_readme_table_is_the_topology() -> None:
    readme = (SRC.parents[1] / "README.md").read_text()
    rows = {
        cells[0].split()[0]: cells
        for line in readme.splitlines()
        if line.startswith("| ") and len(cells := [c.strip() for c in line.strip("|").split("|")]) == 4
    }

    def short(topics: tuple[str, ...]) -> set[str]:
        return {t.removeprefix("marketdata.") for t in topics}

    for n in TOPOLOGY:
        _, reads, writes, key = rows[n.name]
        assert set(reads.split(", ")) == short(n.inputs), n.name
        assert set(writes.split(", ")) == short(n.outputs), n.name
        assert key == n.key.removesuffix("_id"), n.name


def test_partitions_of_a_service_never_share_a_simulated_venue() -> None:
    from meltica.processors.execution import ExecutionProcessor
    from meltica.venues.sim.matching import SimVenue

    make = factory("venue", Wiring(venues=(SimVenue("SIMA"), SimVenue("SIMB"))), partitions=2)
    one, two = make(0), make(1)
    assert isinstance(one, ExecutionProcessor)
    assert isinstance(two, ExecutionProcessor)
    assert list(one.venues) == list(two.venues) == ["SIMA", "SIMB"]
    assert all(one.venues[v] is not two.venues[v] for v in one.venues)
