"""Run a backtest: recorded market data through strategy, risk, orders, sim venue and portfolio.

The run has processors of its own, stepped in memory (no log: nothing reads its inputs back), a
simulated clock that follows the data, deterministic ids, and no tracing: the same inputs give
byte-identical output events.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry.trace import NoOpTracer

from meltica.backtest.stats import Stats, compute
from meltica.clock import SimulatedClock
from meltica.domain.control import StrategyState, StrategyStateChanged
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick, mark_price
from meltica.domain.orders.events import Fill, OrderFilled, OrderPartiallyFilled
from meltica.domain.portfolio.events import AdjustBalance, PositionChanged
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.risk.state import RiskState
from meltica.domain.values import ROUTER_VENUE
from meltica.events.codec import Codec
from meltica.events.envelope import derive_event_id
from meltica.events.mapping import from_record, to_record
from meltica.log.base import Record
from meltica.marketdata.formats import TOPIC_OF
from meltica.runtime.step import Step
from meltica.strategies.base import Strategy
from meltica.topics import (
    INSTRUMENTS,
    ORDER_EVENTS,
    PORTFOLIO_COMMANDS,
    PORTFOLIO_EVENTS,
    STRATEGY_EVENTS,
    key_of,
)
from meltica.topology import INPUTS, OUTPUTS, Wiring, processors
from meltica.venues.sim.matching import SimVenue

# A backtest trades on margin and is not throttled: pre-trade risk keeps its other checks.
BACKTEST_LIMITS = RiskLimits(
    price_band=Decimal("0.05"),
    max_order_notional=Decimal(10**12),
    max_position=Decimal(10**12),
    max_open_orders=10_000,
    throttle_rate=Decimal(10**9),
    throttle_burst=10**9,
)


# Positions are marked (PnLMarked) at most hourly in simulated time: the equity curve and the
# statistics come from the data itself, and a mark per bar would double the events of a run.
MARK_INTERVAL_NS = 3600 * 10**9


_BATCH = 2000  # inputs stepped per advance of the simulated clock (an engine's batch of steps)
_KEPT = (ORDER_EVENTS, PORTFOLIO_EVENTS)  # the outputs a result is made of (and its determinism witness)
_RESULTS = (OrderFilled, OrderPartiallyFilled, PositionChanged)

mark = mark_price  # the price a position is marked at after a bar, quote or trade (the portfolio's)


@dataclass
class BacktestResult:
    fills: list[tuple[int, Fill]]
    realized_pnl: Decimal
    open_position: Decimal
    stats: Stats
    output: list[bytes]  # every output record, in order: the determinism witness
    by_instrument: dict[str, Stats] = field(default_factory=dict)  # each instrument's own statistics
    failures: list[str] = field(default_factory=list)  # strategies that raised: which, on what event


MarketData = Bar | QuoteTick | TradeTick | OrderBookDelta | OrderBookSnapshot


def run_backtest(
    data: Sequence[MarketData],
    instrument: Instrument | Sequence[Instrument],
    strategy: Strategy | Sequence[Strategy],
    *,
    commission: Decimal = Decimal(0),
    cash: Decimal = Decimal(10_000_000),
    seed: int = 0,
    mark_interval_ns: int = MARK_INTERVAL_NS,
    progress: Callable[[int], None] | None = None,
    decode_data: bool = False,
) -> BacktestResult:
    """Backtest `strategy` (or several, on one account each) on market `data` of `instrument` (or
    several: one portfolio) (fees: `commission` of notional; positions marked at most once per
    `mark_interval_ns` of simulated time, 0: every move).

    The instruments, the starting balances and the data are stepped, in that order, through every
    processor of the topology as the embedded engine steps the records of its log; the events go
    in as they are, not encoded and decoded again, unless `decode_data` (the outputs are the same
    byte for byte, a test holds it)."""
    if not data:
        raise ValueError("a backtest needs market data")
    first_ts = data[0].ts_open if isinstance(data[0], Bar) else data[0].ts
    clock = SimulatedClock(first_ts)
    insts = [
        dataclasses.replace(i, maker_fee=commission, taker_fee=commission)
        for i in ([instrument] if isinstance(instrument, Instrument) else instrument)
    ]
    strategies = [strategy] if isinstance(strategy, Strategy) else list(strategy)
    wiring = Wiring(
        venues=tuple(SimVenue(v) for v in dict.fromkeys(i.venue for i in insts) if v != ROUTER_VENUE),
        strategies=tuple(strategies),
        risk=RiskState(defaults=BACKTEST_LIMITS, require_balance=False),
        mark_interval_ns=mark_interval_ns,
    )
    step = Step(processors(wiring), INPUTS, codec=_codec(), clock=clock, tracer=NoOpTracer(), outputs=OUTPUTS)
    feed = _Feed(step, clock, seed=seed, encode_inputs=decode_data)
    feed.step([(INSTRUMENTS, i) for i in insts])
    feed.step(
        [
            (PORTFOLIO_COMMANDS, AdjustBalance(account, currency, cash, "start", first_ts))
            for account, currency in dict.fromkeys(
                (s.account_id, i.quote_currency) for s in strategies for i in insts
            )
        ]
    )
    for start in range(0, len(data), _BATCH):
        chunk = data[start : start + _BATCH]
        feed.step([(TOPIC_OF[type(e)], e) for e in chunk], advance_to=chunk[-1].ts)
        if progress is not None:
            progress(len(chunk))
    fills: list[tuple[int, Fill]] = []
    fills_of: dict[str, list[tuple[int, Fill]]] = {i.instrument_id: [] for i in insts}
    realized_of = {i.instrument_id: (Decimal(0), Decimal(0)) for i in insts}
    for event in feed.results:
        if isinstance(event, OrderFilled | OrderPartiallyFilled):
            fills.append((event.ts, event.fill))
            fills_of[event.instrument_id].append((event.ts, event.fill))
        elif isinstance(event, PositionChanged) and event.instrument_id in realized_of:
            realized_of[event.instrument_id] = (event.realized_pnl, event.quantity)
    marks: dict[str, list[tuple[int, Decimal]]] = {i.instrument_id: [] for i in insts}
    for e in data:
        if not isinstance(e, OrderBookDelta | OrderBookSnapshot) and (
            len(insts) == 1 or e.instrument_id in marks
        ):
            marks[e.instrument_id if len(insts) > 1 else insts[0].instrument_id].append((e.ts, mark(e)))
    by_instrument = {iid: compute(marks[iid], fills_of[iid], cash) for iid in marks}
    realized = sum((r for r, _ in realized_of.values()), Decimal(0))
    position = realized_of[insts[0].instrument_id][1]
    return BacktestResult(
        fills,
        realized,
        position,
        by_instrument[insts[0].instrument_id],
        feed.outputs,
        by_instrument if len(insts) > 1 else {},
        _failures(feed.strategy_events, feed.codec),
    )


@functools.cache
def _codec() -> Codec:
    """The codec every backtest of the process shares: its compiled encoders and decoders are
    made once, not once a run (a tenth of a second, a short run's largest cost)."""
    return Codec()


def _failures(values: list[bytes], codec: Codec) -> list[str]:
    """Why strategies failed in the run, each naming the strategy (the reason names the event)."""
    out = []
    for value in values:
        event = from_record(*codec.decode(value))
        if isinstance(event, StrategyStateChanged) and event.state is StrategyState.FAILED:
            out.append(f"strategy {event.strategy_id} failed: {event.reason}")
    return out


class _Feed:
    """Steps a backtest's inputs through the topology's processors with the step every host runs
    (`runtime.step`): the inputs, in order, as the embedded engine would read them from a log of
    one partition per topic, keeping the outputs a result is made of.

    Nothing reads a backtest's inputs back from a log, so they are not encoded (unless
    `encode_inputs`: then each step decodes its input's bytes, as a host does); every output is
    encoded, as in a live step (an output the codec cannot take fails its step the same way)."""

    def __init__(self, step: Step, clock: SimulatedClock, *, seed: int, encode_inputs: bool) -> None:
        self._run = step.run
        self.codec = step.codec
        self.clock = clock
        self.encode_inputs = encode_inputs
        self.outputs: list[bytes] = []  # order and portfolio events, in the order written
        self.results: list[Any] = []  # the fills and position changes among them
        self.strategy_events: list[bytes] = []
        self._id_seed = f"backtest/{seed}"
        self._count = 0
        self._offsets: dict[str, int] = {}

    def step(self, items: Sequence[tuple[str, Any]], *, advance_to: int | None = None) -> None:
        """Step `(topic, event)` inputs: their envelopes carry the time now (as records appended
        now would), the steps run at `advance_to` (the simulated time after the batch)."""
        inputs = [self._input(topic, event) for topic, event in items]
        if advance_to is not None:
            self.clock.advance_to(advance_to)
        run, kept, result = self._run, self.outputs.append, self.results.append
        strategy_events = self.strategy_events.append
        for rec, known in inputs:
            stepped = run(rec, live=True, known=None if self.encode_inputs else known)
            if stepped.failure is not None:
                continue  # rolled back (an engine dead-letters the input; nothing in a backtest reads it)
            for e in stepped.emitted:
                topic = e.output.topic
                if topic in _KEPT:
                    kept(e.value)
                    if type(e.output.event) in _RESULTS:
                        result(e.output.event)  # as its record decodes: decimals are written as text
                elif topic == STRATEGY_EVENTS:
                    strategy_events(e.value)

    def _input(self, topic: str, event: Any) -> tuple[Record, tuple[Any, dict[str, Any]]]:
        """The record of `event` as a log would give it back (no value unless encoded) and its envelope."""
        now = self.clock.now_ns()
        self._count += 1
        event_id = derive_event_id(self._id_seed, self._count)
        key = key_of(event)
        meta = {
            "event_id": event_id,
            "causation_id": None,
            "correlation_id": event_id,
            "ts_event": getattr(event, "ts", now),
            "ts_init": now,
            "key": key,
            "version": 0,
            "source": None,
        }
        value = self.codec.encode(*to_record(event, meta)) if self.encode_inputs else b""
        offset = self._offsets.get(topic, 0)
        self._offsets[topic] = offset + 1
        return Record(topic, 0, offset, key.encode(), value, (), now // 1_000_000), (event, meta)
