"""A strategy sees its account as the read models hold it: a backtest stepped one input at a time,
projected after every step, the strategies' contexts compared with the projected positions,
balances and open orders at every step (and, inside a callback, with the projection as of the step
before). Denials and rejections reach the strategy with their reasons, and `move_to` starts from
what is held, so a denied order is sent again rather than counted as held."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import NoOpTracer
from sqlalchemy import create_engine, select

from meltica.backtest.engine import BACKTEST_LIMITS, MARK_INTERVAL_NS, run_backtest
from meltica.clock import SimulatedClock
from meltica.domain.marketdata import Bar, QuoteTick
from meltica.domain.orders.events import OrderCancelRejected, OrderDenied, OrderRejected
from meltica.domain.orders.model import TERMINAL
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.checks import DenyReason
from meltica.domain.risk.state import RiskState
from meltica.domain.values import OrderSide, OrderType
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.marketdata.formats import TOPIC_OF
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.marketdata.replay import ohlc_bars, truefx_quotes
from meltica.processors.portfolio import PortfolioProcessor
from meltica.processors.strategies import StrategyHost
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.strategies.base import Strategy, StrategyContext
from meltica.strategies.grid import Grid
from meltica.strategies.sma_cross import SmaCross
from meltica.topics import PORTFOLIO_COMMANDS, topic_specs
from meltica.topology import Wiring, build_engine
from meltica.venues.sim.matching import SimVenue

DATA = Path(__file__).resolve().parents[1] / "data" / "usdjpy-m1-bid-2013.csv"
TICKS = DATA.with_name("usdjpy-ticks.csv")
USDJPY = DEFAULT_INSTRUMENTS[2]
ACCOUNT = "BT"
View = dict[str, dict[str, tuple[Any, ...]]]


def context_view(ctx: StrategyContext) -> View:
    return {
        "positions": {
            i: (p.quantity, p.avg_px, p.realized_pnl, p.unrealized_pnl, p.fees, p.mark_px)
            for i, p in ctx.positions.items()
        },
        "balances": {a: (b.total, b.free, b.locked) for a, b in ctx.balances.items()},
        "open": {
            oid: (o.status.value, o.quantity, o.filled_qty, o.price) for oid, o in ctx.open_orders.items()
        },
    }


def read_model_view(db: Any, strategy_id: str) -> View:
    with db.connect() as conn:
        positions = conn.execute(select(t.positions).where(t.positions.c.account_id == ACCOUNT)).all()
        balances = conn.execute(select(t.balances).where(t.balances.c.account_id == ACCOUNT)).all()
        orders = conn.execute(
            select(t.orders).where(
                t.orders.c.account_id == ACCOUNT,
                t.orders.c.strategy_id == strategy_id,
                t.orders.c.status.not_in([s.value for s in TERMINAL]),
            )
        ).all()
    return {
        "positions": {
            r.instrument_id: (r.quantity, r.avg_px, r.realized_pnl, r.unrealized_pnl, r.fees, r.mark_px)
            for r in positions
        },
        "balances": {r.asset: (r.total, r.free, r.locked) for r in balances},
        "open": {r.order_id: (r.status, r.quantity, r.filled_qty, r.price) for r in orders},
    }


class Recording:
    """Records the context a strategy is handed at every bar (mixed into a shipped strategy)."""

    seen: list[View]

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self.seen.append(context_view(ctx))
        super().on_bar(ctx, bar)  # type: ignore[misc]


class RecordingSmaCross(Recording, SmaCross):
    """SMA(3)/SMA(8): a reversal every few bars, by market orders from the held position; and now
    and then a resting limit buy below the market, canceled a few bars later (open orders, locks)."""

    def __init__(self) -> None:
        super().__init__(USDJPY.instrument_id, fast=3, slow=8, strategy_id="sma")
        self.seen, self.bars, self.resting = [], 0, list[str]()

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self.bars += 1
        if self.bars % 7 == 0:
            price = (bar.close * Decimal("0.9995")).quantize(Decimal("0.001"))
            self.resting.append(ctx.submit(USDJPY.instrument_id, OrderSide.BUY, Decimal(500), price=price))
        if self.bars % 11 == 0 and self.resting:
            ctx.cancel(self.resting.pop(0), USDJPY.instrument_id)


class RecordingGrid(Recording, Grid):
    def __init__(self) -> None:
        super().__init__(USDJPY.instrument_id, step="0.02", levels=3, strategy_id="grid")
        self.seen = []


@pytest.mark.parametrize("mark_interval_ns", [0, MARK_INTERVAL_NS], ids=["every-mark", "hourly-marks"])
def test_the_context_equals_the_read_model_at_every_step(mark_interval_ns: int) -> None:
    bars = list(itertools.islice(ohlc_bars(DATA, USDJPY.instrument_id), 200))
    strategies = RecordingSmaCross(), RecordingGrid()  # one account, two strategies
    log = MemoryLog()
    for spec in topic_specs(1):
        log.create_topic(spec)
    codec, clock = Codec(), SimulatedClock(bars[0].ts_open)
    engine = build_engine(
        log,
        codec,
        Wiring(
            venues=(SimVenue("SIM"),),
            strategies=strategies,
            risk=RiskState(defaults=BACKTEST_LIMITS, require_balance=False),
            mark_interval_ns=mark_interval_ns,
        ),
        clock=clock,
        tracer=NoOpTracer(),
    )
    [host] = [p for p in engine.processors if isinstance(p, StrategyHost)]
    [portfolio] = [p for p in engine.processors if isinstance(p, PortfolioProcessor)]
    db = create_engine("sqlite://")
    t.metadata.create_all(db)
    projector = Projector(log, codec, db, clock=clock)
    publisher = Publisher(log, codec, clock, NoOpTracer(), id_seed="context")
    publisher.define([USDJPY])
    publisher.publish(
        PORTFOLIO_COMMANDS, AdjustBalance(ACCOUNT, "JPY", Decimal(10_000_000), "start", bars[0].ts_open)
    )
    history: list[dict[str, View]] = []

    def step_and_compare() -> None:
        while True:  # one input at a time; its outputs are in the log, then projected
            cursor = engine.positions
            if not engine.poll_once(max_steps=1):
                if engine.positions == cursor:
                    return
                continue  # the engine's own output, read past
            projector.catch_up()
            projected = {s.strategy_id: read_model_view(db, s.strategy_id) for s in strategies}
            for s in strategies:
                assert context_view(host.contexts[s.strategy_id]) == projected[s.strategy_id]
            if mark_interval_ns == 0:  # every mark is published: the portfolio's own equity too
                for ccy in ("JPY", "USD"):
                    assert host.contexts["sma"].equity(ccy) == portfolio.state.equity(ACCOUNT, ccy)
            # the account's position is the two strategies' own fills together
            held = projected["sma"]["positions"].get(USDJPY.instrument_id, (Decimal(0),))[0]
            assert held == sum(
                host.contexts[s.strategy_id].account.filled.get(USDJPY.instrument_id, 0) for s in strategies
            )
            history.append(projected)

    step_and_compare()
    for bar in bars:
        before, seen = history[-1], {s.strategy_id: len(s.seen) for s in strategies}
        publisher.publish(TOPIC_OF[Bar], bar)
        clock.advance_to(bar.ts)
        step_and_compare()
        for s in strategies:  # inside on_bar: the read models as of the step before
            assert s.seen[seen[s.strategy_id] :] == [before[s.strategy_id]]
    # the run went through what a context shows: both sides, realized PnL, open orders, locks
    held = [h["sma"]["positions"].get(USDJPY.instrument_id, (Decimal(0),))[0] for h in history]
    assert min(held) < 0 < max(held)
    assert history[-1]["sma"]["positions"][USDJPY.instrument_id][2] != 0
    assert any(h["sma"]["open"] for h in history)
    assert any(h["grid"]["open"] for h in history)
    assert any(h["sma"]["balances"].get("JPY", (0, 0, 0))[2] > 0 for h in history)


class Refused(Strategy):
    """Quote 1: a limit order far outside the price band (risk denies it) and a post-only buy above
    the ask (the venue rejects it); quote 2: a market buy; quote 4: a cancel of that filled order
    (the order state machine refuses it). Every refusal is kept, and whether the order was still open."""

    strategy_id, account_id = "refused", ACCOUNT

    def __init__(self) -> None:
        self.quotes = 0
        self.events: list[str] = []
        self.refusals: list[tuple[str, str, str, bool]] = []
        self.filled = ""

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        self.quotes += 1
        inst, tick = USDJPY.instrument_id, Decimal("0.001")
        if self.quotes == 1:
            ctx.submit(inst, OrderSide.BUY, Decimal(1000), price=(quote.bid_px / 2).quantize(tick))
            ctx.submit(
                inst,
                OrderSide.BUY,
                Decimal(1000),
                price=quote.ask_px + tick * 10,
                post_only=True,
            )
        elif self.quotes == 2:
            self.filled = ctx.submit(inst, OrderSide.BUY, Decimal(1000), order_type=OrderType.MARKET)
        elif self.quotes == 4:
            ctx.cancel(self.filled, inst)

    def on_order_event(self, ctx: StrategyContext, event: Any) -> None:
        self.events.append(type(event).__name__)

    def on_order_denied(self, ctx: StrategyContext, event: OrderDenied) -> None:
        self.refusals.append(("denied", event.reason, event.message, event.order_id in ctx.open_orders))

    def on_order_rejected(
        self, ctx: StrategyContext, event: OrderRejected | OrderCancelRejected | Any
    ) -> None:
        self.refusals.append((type(event).__name__, event.reason, "", event.order_id in ctx.open_orders))


def test_denials_and_rejections_reach_the_strategy_with_their_reasons() -> None:
    quotes = list(itertools.islice(truefx_quotes(TICKS, USDJPY.instrument_id, size=Decimal(10_000)), 6))
    strategy = Refused()
    result = run_backtest(quotes, USDJPY, strategy)
    assert result.failures == []
    assert strategy.refusals == [
        ("denied", DenyReason.PRICE_BAND, "", False),  # no longer among the open orders
        ("OrderRejected", "post-only order would take liquidity", "", False),
        ("OrderCancelRejected", "order is FILLED", "", False),
    ]
    # on_order_event saw each of them first
    assert {"OrderDenied", "OrderRejected", "OrderCancelRejected", "OrderFilled"} <= set(strategy.events)


class Stubborn(Strategy):
    """Wants a position of 0.5 (off the 1-unit lot: risk denies it) and, from bar 3, of 1000."""

    strategy_id, account_id = "stubborn", ACCOUNT

    def __init__(self) -> None:
        self.bars = 0
        self.denials = 0
        self.exposure: list[Decimal] = []

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self.bars += 1
        self.exposure.append(ctx.exposure(USDJPY.instrument_id))
        self.move_to(ctx, USDJPY.instrument_id, Decimal("0.5") if self.bars < 3 else Decimal(1000))

    def on_order_denied(self, ctx: StrategyContext, event: OrderDenied) -> None:
        self.denials += 1


def test_move_to_starts_from_what_is_held_not_from_what_was_asked() -> None:
    bars = list(itertools.islice(ohlc_bars(DATA, USDJPY.instrument_id), 6))
    strategy = Stubborn()
    result = run_backtest(bars, USDJPY, strategy)
    # a denied order is not held: asked again on bar 2; then 1000 once, filled, and held
    assert strategy.denials == 2
    assert strategy.exposure == [0, 0, 0, 1000, 1000, 1000]
    assert [(f.side, f.last_qty) for _, f in result.fills] == [(OrderSide.BUY, Decimal(1000))]
    assert result.open_position == 1000
