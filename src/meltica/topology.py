"""The topology, declared once: which processors run, in which order, on which topics.

Every host builds from this table — the embedded engine (`meltica up`, backtests, tests), the Kafka
services (`meltica run <processor>`), the faust-streaming agents — so a processor's inputs, its
factory and its key cannot differ between them. The order of `TOPOLOGY` is the order of delivery in
a step. The runtime hosts whatever it is given and imports no processor; this module is where the
processors meet it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from opentelemetry.trace import Tracer

from meltica.clock import Clock
from meltica.domain.portfolio.decider import PortfolioState
from meltica.domain.risk.state import RiskState
from meltica.events.codec import Codec
from meltica.log.base import EventLog
from meltica.log.partitioner import partition_for
from meltica.processors.bars import BarBuilder
from meltica.processors.execution import ExecutionProcessor
from meltica.processors.orders import OrderProcessor
from meltica.processors.pipeline import Pipeline
from meltica.processors.portfolio import PortfolioProcessor
from meltica.processors.risk import RiskProcessor
from meltica.processors.router import RouterProcessor
from meltica.processors.strategies import StrategyHost
from meltica.runtime.engine import Engine
from meltica.runtime.processor import Processor
from meltica.strategies.base import Strategy
from meltica.topics import (
    BARS,
    BOOK,
    EXTERNAL,
    INSTRUMENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PORTFOLIO_COMMANDS,
    PORTFOLIO_EVENTS,
    QUOTES,
    RISK_COMMANDS,
    RISK_EVENTS,
    STRATEGY_COMMANDS,
    STRATEGY_EVENTS,
    TRADES,
    VENUE_EVENTS,
    VENUE_REPORTS,
    VENUE_REQUESTS,
)
from meltica.venues.sim.matching import SimVenue

DEFAULT_BAR_WIDTHS = ("1m",)  # what the bars service builds when no widths are configured


@dataclass(frozen=True, slots=True)
class Wiring:
    """What a processor is built with: the run's choices, and which partition it serves (of how many)."""

    venues: tuple[SimVenue, ...] | None = None  # None: one simulated venue, "SIM"
    strategies: tuple[Strategy, ...] = ()
    risk: RiskState | None = None
    bar_widths: tuple[str, ...] = ()
    mark_interval_ns: int = 0  # positions marked at most once per this much event time (0: every move)
    partition: int = 0
    partitions: int = 1
    strategy_modules: tuple[str, ...] = ()  # module prefixes a strategy command may load (module:Class)

    def fresh_venues(self) -> list[SimVenue]:
        """The simulated venues for one processor: copies of the configured ones, so partitions
        (and processors built from one wiring) never share a book or a resting order."""
        return [copy.deepcopy(v) for v in self.venues] if self.venues is not None else [SimVenue("SIM")]

    def strategies_here(self) -> list[Strategy]:
        """The strategies whose account falls on this partition (all of them, unpartitioned)."""
        if self.partitions == 1:
            return list(self.strategies)
        return [
            s
            for s in self.strategies
            if partition_for(s.account_id.encode(), self.partitions) == self.partition
        ]


@dataclass(frozen=True, slots=True)
class Node:
    """One processor of the topology."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    key: str  # what its outputs (and its keyed inputs) are partitioned by
    build: Callable[[Wiring], Processor] = field(repr=False)
    doc: str = ""
    runs_in: Callable[[Wiring], bool] = field(default=lambda w: True, repr=False)
    """Whether the embedded engine runs it for a wiring (a service always runs what it is told)."""


MARKET = (QUOTES, TRADES)
TOPOLOGY: tuple[Node, ...] = (
    Node(
        "bars",
        MARKET,
        (BARS,),
        "instrument_id",
        lambda w: BarBuilder(list(w.bar_widths or DEFAULT_BAR_WIDTHS)),
        "quotes and trades into OHLCV bars of the configured widths",
        runs_in=lambda w: bool(w.bar_widths),
    ),
    Node(
        "risk",
        (INSTRUMENTS, *MARKET, BARS, RISK_COMMANDS, ORDER_COMMANDS, ORDER_EVENTS, PORTFOLIO_EVENTS),
        (ORDER_EVENTS, RISK_EVENTS),
        "account_id",
        lambda w: RiskProcessor(w.risk),
        "pre-trade checks: order commands become accepted or denied; limits, states, kill switches",
    ),
    Node(
        "orders",
        (*MARKET, ORDER_COMMANDS, ORDER_EVENTS, VENUE_REPORTS, RISK_EVENTS),
        (ORDER_EVENTS, VENUE_REQUESTS),
        "account_id",
        lambda w: OrderProcessor(),
        "the order state machine: accepted orders to venue requests, venue reports to order events",
    ),
    Node(
        "venue",
        (INSTRUMENTS, *MARKET, BOOK, BARS, VENUE_REQUESTS, VENUE_EVENTS),
        (VENUE_REPORTS,),
        "account_id",
        lambda w: ExecutionProcessor(w.fresh_venues()),
        "execution: venue requests to the simulated matching engine (live venues: a gateway), reports back",
    ),
    Node(
        "router",
        (INSTRUMENTS, QUOTES, BOOK, VENUE_REQUESTS, ORDER_EVENTS, VENUE_EVENTS),
        (ORDER_COMMANDS, VENUE_REPORTS),
        "account_id",
        lambda w: RouterProcessor(),
        "smart order routing: an order at venue SOR worked as child orders at the venues listing it",
    ),
    Node(
        "portfolio",
        (INSTRUMENTS, *MARKET, BARS, PORTFOLIO_COMMANDS, ORDER_EVENTS),
        (PORTFOLIO_EVENTS,),
        "account_id",
        lambda w: PortfolioProcessor(PortfolioState(mark_interval_ns=w.mark_interval_ns)),
        "balances, positions and PnL from fills, fees, deposits and marks",
    ),
    Node(
        "strategies",
        (INSTRUMENTS, *MARKET, BARS, ORDER_EVENTS, PORTFOLIO_EVENTS, STRATEGY_COMMANDS),
        (ORDER_COMMANDS, STRATEGY_EVENTS),
        "account_id",
        lambda w: StrategyHost(w.strategies_here(), modules=w.strategy_modules),
        "strategies: market data and their orders' events in, order commands out",
    ),
)
FUSED = ("risk", "orders", "venue", "router", "portfolio", "strategies")
"""The account-keyed processors the fused service (`meltica run pipeline`) hosts as one task per partition."""


def _fused() -> Node:
    members = [n for n in TOPOLOGY if n.name in FUSED]
    writers = {t for n in members for t in n.outputs}
    outside = {t for n in TOPOLOGY if n.name not in FUSED for t in n.outputs}
    # read from the log: what the members read and someone else writes (commands, market data, bars,
    # a live venue's reports); what only members write is delivered in memory, never read back
    inputs = tuple(
        dict.fromkeys(
            t for n in members for t in n.inputs if t not in writers or t in EXTERNAL or t in outside
        )
    )
    return Node(
        "pipeline",
        inputs,
        tuple(dict.fromkeys(t for n in members for t in n.outputs)),
        "account_id",
        lambda w: Pipeline(processors(w, FUSED), {n.name: n.inputs for n in members}),
        "the account-keyed processors fused: one task and one transaction per partition",
    )


PIPELINE = _fused()
NODES = {n.name: n for n in (*TOPOLOGY, PIPELINE)}
INPUTS = {n.name: n.inputs for n in NODES.values()}
OUTPUTS = {n.name: n.outputs for n in NODES.values()}


def node(name: str) -> Node:
    """The processor called `name` (a KeyError names the known ones)."""
    try:
        return NODES[name]
    except KeyError:
        raise KeyError(f"no processor {name!r} (known: {', '.join(NODES)})") from None


def inputs_of(name: str) -> tuple[str, ...]:
    """The topics processor `name` reads."""
    return node(name).inputs


def processors(wiring: Wiring, names: Sequence[str] | None = None) -> list[Processor]:
    """Fresh processors for `wiring`, in the order of delivery: those named, or all the engine runs."""
    chosen = [n for n in TOPOLOGY if n.runs_in(wiring)] if names is None else [node(x) for x in names]
    order = {n.name: i for i, n in enumerate(TOPOLOGY)}
    return [n.build(wiring) for n in sorted(chosen, key=lambda n: order[n.name])]


def factory(name: str, wiring: Wiring, partitions: int) -> Callable[[int], Processor]:
    """A fresh `name` processor for one partition (of `partitions`) of its keyed inputs."""
    build = node(name).build
    return lambda p: build(replace(wiring, partition=p, partitions=partitions))


def build_engine(
    log: EventLog,
    codec: Codec,
    wiring: Wiring | None = None,
    *,
    clock: Clock | None = None,
    tracer: Tracer | None = None,
) -> Engine:
    """The embedded engine: every processor of the topology on one log, stepped together."""
    return Engine(
        log,
        codec,
        processors(wiring or Wiring()),
        inputs=INPUTS,
        outputs=OUTPUTS,
        external_topics=EXTERNAL,
        clock=clock,
        tracer=tracer,
    )
