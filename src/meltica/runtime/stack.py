"""The embedded stack: the processors wired on one log (used by `meltica up`, tests, backtests)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.trace import Tracer

from meltica.clock import Clock
from meltica.domain.portfolio.decider import PortfolioState
from meltica.domain.risk.state import RiskState
from meltica.events.codec import Codec
from meltica.log.base import EventLog
from meltica.processors.bars import BarBuilder
from meltica.processors.orders import OrderProcessor
from meltica.processors.portfolio import PortfolioProcessor
from meltica.processors.risk import RiskProcessor
from meltica.processors.strategies import StrategyHost
from meltica.processors.venue import VenueProcessor
from meltica.runtime.engine import Engine
from meltica.runtime.processor import Processor
from meltica.strategies.base import Strategy
from meltica.topics import EXTERNAL
from meltica.venues.sim.matching import SimVenue


def build_engine(
    log: EventLog,
    codec: Codec,
    *,
    venues: Sequence[SimVenue] | None = None,
    strategies: Sequence[Strategy] = (),
    risk: RiskState | None = None,
    clock: Clock | None = None,
    tracer: Tracer | None = None,
    bar_widths: Sequence[str] = (),
    mark_interval_ns: int = 0,
) -> Engine:
    """Risk, orders, venue(s), portfolio and strategies, in that order of delivery; with
    `bar_widths`, a bar builder first. Positions are marked at most once per `mark_interval_ns`
    of event time (0: on every price move)."""
    processors: list[Processor] = [BarBuilder(list(bar_widths))] if bar_widths else []
    processors += [
        RiskProcessor(risk),
        OrderProcessor(),
        VenueProcessor(list(venues) if venues is not None else [SimVenue("SIM")]),
        PortfolioProcessor(PortfolioState(mark_interval_ns=mark_interval_ns)),
        StrategyHost(list(strategies)),
    ]
    return Engine(log, codec, processors, external_topics=EXTERNAL, clock=clock, tracer=tracer)
