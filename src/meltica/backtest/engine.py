"""Run a backtest: recorded market data through strategy, risk, orders, sim venue and portfolio.

The run has a namespace of its own (an in-memory log), a simulated clock that follows the
data, deterministic ids, and no tracing: the same inputs give byte-identical output events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from opentelemetry.trace import NoOpTracer

from meltica.backtest.stats import Stats, compute
from meltica.clock import SimulatedClock
from meltica.domain.control import StrategyState, StrategyStateChanged
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick
from meltica.domain.orders.events import Fill, OrderFilled, OrderPartiallyFilled
from meltica.domain.portfolio.events import AdjustBalance, PositionChanged
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.risk.state import RiskState
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.log.base import Record
from meltica.log.memory import MemoryLog
from meltica.marketdata.formats import TOPIC_OF
from meltica.runtime.publisher import Publisher
from meltica.runtime.stack import build_engine
from meltica.strategies.base import Strategy
from meltica.topics import (
    ORDER_EVENTS,
    PORTFOLIO_COMMANDS,
    PORTFOLIO_EVENTS,
    STRATEGY_EVENTS,
    topic_specs,
)
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


def mark(event: Bar | QuoteTick | TradeTick) -> Decimal:
    """The price a position is marked at after `event`."""
    if isinstance(event, Bar):
        return event.close
    if isinstance(event, QuoteTick):
        return (event.bid_px + event.ask_px) / 2
    return event.price


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

    The data is appended to the run's log as records and the engine steps through that log; it
    is handed the events it appended rather than decoding their bytes again, unless
    `decode_data` (the outputs are the same byte for byte, a test holds it)."""
    if not data:
        raise ValueError("a backtest needs market data")
    first_ts = data[0].ts_open if isinstance(data[0], Bar) else data[0].ts
    log = MemoryLog()
    for spec in topic_specs(1):
        log.create_topic(spec)
    codec = Codec()
    clock = SimulatedClock(first_ts)
    publisher = Publisher(log, codec, clock, NoOpTracer(), id_seed=f"backtest/{seed}")
    insts = [
        dataclasses.replace(i, maker_fee=commission, taker_fee=commission)
        for i in ([instrument] if isinstance(instrument, Instrument) else instrument)
    ]
    strategies = [strategy] if isinstance(strategy, Strategy) else list(strategy)
    engine = build_engine(
        log,
        codec,
        venues=[SimVenue(v) for v in dict.fromkeys(i.venue for i in insts)],
        strategies=strategies,
        risk=RiskState(defaults=BACKTEST_LIMITS, require_balance=False),
        clock=clock,
        tracer=NoOpTracer(),
        mark_interval_ns=mark_interval_ns,
    )
    publisher.define(insts)
    for account, currency in dict.fromkeys(
        (s.account_id, i.quote_currency) for s in strategies for i in insts
    ):
        publisher.publish(PORTFOLIO_COMMANDS, AdjustBalance(account, currency, cash, "start", first_ts))
    engine.drain()
    for start in range(0, len(data), 2000):
        chunk = data[start : start + 2000]
        messages = []
        for e in chunk:
            message, meta = publisher.message_and_meta(TOPIC_OF[type(e)], e)
            if not decode_data:
                engine.decoded(message.value, e, meta)
            messages.append(message)
        log.append(messages)
        clock.advance_to(chunk[-1].ts)
        engine.drain(max_steps=2000)
        if progress is not None:
            progress(len(chunk))
    fills: list[tuple[int, Fill]] = []
    fills_of: dict[str, list[tuple[int, Fill]]] = {i.instrument_id: [] for i in insts}
    realized_of = {i.instrument_id: (Decimal(0), Decimal(0)) for i in insts}
    outputs: list[Record] = []
    for topic in (ORDER_EVENTS, PORTFOLIO_EVENTS):
        outputs += log.read(topic, 0, 0, 10_000_000)
    needed = ("OrderFilled", "OrderPartiallyFilled", "PositionChanged")
    wanted = {codec.catalog.get(n).fingerprint for n in needed}
    for rec in sorted(outputs, key=lambda r: r.seq):
        if rec.value[2:10] not in wanted:
            continue  # marks and the rest: not needed for the result
        name, fields = codec.decode_record(rec)
        event = from_record(name, fields)
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
        [r.value for r in sorted(outputs, key=lambda r: r.seq)],
        by_instrument if len(insts) > 1 else {},
        _failures(log, codec),
    )


def _failures(log: MemoryLog, codec: Codec) -> list[str]:
    """Why strategies failed in the run, each naming the strategy (the reason names the event)."""
    out = []
    for rec in log.read(STRATEGY_EVENTS, 0, 0, 10_000_000):
        event = from_record(*codec.decode_record(rec))
        if isinstance(event, StrategyStateChanged) and event.state is StrategyState.FAILED:
            out.append(f"strategy {event.strategy_id} failed: {event.reason}")
    return out
