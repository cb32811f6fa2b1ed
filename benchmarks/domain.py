"""Order lifecycles through the domain deciders on one core: submit -> accept -> ack -> fill.

Three rows: the lifecycle as first measured (its inputs - command, execution reports - built
inside the timed loop); the same with the inputs built beforehand (decide + evolve only: building
them is the codec's work, measured in its own rows); and the latter with the portfolio deciding
and learning from every order event too.

    python -m benchmarks.domain               # the three rows
    python -m benchmarks.domain --profile     # cProfile of the decide + evolve loop
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import spot
from meltica.domain.marketdata import QuoteTick
from meltica.domain.orders import decider as orders
from meltica.domain.orders.commands import SubmitOrder
from meltica.domain.orders.events import ExecutionReport, Fill
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.portfolio import decider as portfolio
from meltica.domain.portfolio.events import BalanceChanged
from meltica.domain.risk import decider as risk
from meltica.domain.risk.state import RiskState
from meltica.domain.values import ExecType, LiquiditySide, OrderSide, OrderType

GROUP = "domain (one core)"
T0 = 1_700_000_000_000_000_000
Inputs = tuple[SubmitOrder, ExecutionReport, ExecutionReport]


class Lifecycles:
    """One account trading one instrument, alternately buying and selling (it stays flat)."""

    def __init__(self, with_portfolio: bool = False) -> None:
        self.inst = spot("BTCUSDT", "SIM", "BTC", "USDT", price_increment="0.01", size_increment="0.001")
        self.risk, self.book = RiskState(), orders.OrderBook()
        self.portfolio = portfolio.PortfolioState() if with_portfolio else None
        big = Decimal(10**12)
        for fact in (
            self.inst,
            QuoteTick(
                self.inst.instrument_id, Decimal("99.99"), Decimal(1), Decimal("100.01"), Decimal(1), T0
            ),
            BalanceChanged("ACC-1", "USDT", big, big, Decimal(0), big, "d", T0),
            BalanceChanged("ACC-1", "BTC", big, big, Decimal(0), big, "d", T0),
        ):
            risk.evolve(self.risk, fact)
            if self.portfolio is not None:
                portfolio.evolve(self.portfolio, fact)
        self.qty, self.px = Decimal("0.5"), Decimal("100.00")
        self.counter = iter(range(10**9))

    def inputs(self) -> Inputs:
        """The next order's command, acknowledgement and fill, as they arrive from the log."""
        i, inst_id, qty, px = next(self.counter), self.inst.instrument_id, self.qty, self.px
        ts = T0 + i * 250_000_000  # 4 orders/s: inside the default throttle
        side = OrderSide.BUY if i % 2 == 0 else OrderSide.SELL  # stays flat: no position limit
        spec = OrderSpec(f"O-{i}", f"C-{i}", "ACC-1", inst_id, side, OrderType.LIMIT, qty, px)
        ack = ExecutionReport(
            "SIM",
            ExecType.NEW,
            spec.order_id,
            "ACC-1",
            inst_id,
            OrderStatus.NEW,
            ts,
            ts + 1,
            venue_order_id=f"V-{i}",
        )
        fill = Fill(f"T-{i}", f"V-{i}", side, qty, px, Decimal(0), "USDT", LiquiditySide.MAKER, ts + 2)
        trade = ExecutionReport(
            "SIM",
            ExecType.TRADE,
            spec.order_id,
            "ACC-1",
            inst_id,
            OrderStatus.FILLED,
            ts + 2,
            ts + 2,
            fill=fill,
        )
        return SubmitOrder(spec, ts), ack, trade

    def run(self, inputs: Inputs) -> None:
        """Decide and evolve one lifecycle through risk, orders (and the portfolio)."""
        submit, ack, trade = inputs
        book, state = self.book, self.risk
        accepted: Any
        [accepted] = risk.decide(state, submit)
        risk.evolve(state, accepted)
        routed = orders.decide(book, accepted)
        orders.evolve(book, accepted)
        for e in routed:
            orders.evolve(book, e)
        acked = orders.decide(book, ack)
        for e in acked:
            orders.evolve(book, e)
        traded = orders.decide(book, trade)
        for e in traded:
            orders.evolve(book, e)
            risk.evolve(state, e)  # type: ignore[arg-type] # order events only here
        if self.portfolio is not None:
            event: Any
            for event in (accepted, *routed, *acked, *traded):
                for p in portfolio.decide(self.portfolio, event):
                    portfolio.evolve(self.portfolio, p)
                portfolio.evolve(self.portfolio, event)


def best_rate(batch: Callable[[], Callable[[], int]], runs: int = 5, seconds_per_run: float = 0.4) -> float:
    """Operations per second of CPU time, best of `runs`: `batch()` prepares a batch (not timed)
    and returns the timed part, which returns how many operations it did. CPU time of this
    process, not wall time: on a small shared machine the other processes' share of the cores
    is not counted against the domain (it runs on one core)."""
    batch()()  # warm up
    best = 0.0
    for _ in range(runs):
        done, timed = 0, 0.0
        while timed < seconds_per_run:
            go = batch()
            start = time.process_time()
            done += go()
            timed += time.process_time() - start
        best = max(best, done / timed)
    return best


def _built_inside(n: int = 2000) -> Callable[[], Callable[[], int]]:
    flow = Lifecycles()

    def prepare() -> Callable[[], int]:
        def go() -> int:
            for _ in range(n):
                flow.run(flow.inputs())
            return n

        return go

    return prepare


def _built_before(with_portfolio: bool, n: int = 2000) -> Callable[[], Callable[[], int]]:
    flow = Lifecycles(with_portfolio)

    def prepare() -> Callable[[], int]:
        batch = [flow.inputs() for _ in range(n)]

        def go() -> int:
            run = flow.run
            for inputs in batch:
                run(inputs)
            return n

        return go

    return prepare


def rows() -> list[tuple[str, float, float | None]]:
    """(name, lifecycles/s, target) of each row."""
    return [
        ("order lifecycles: submit-accept-ack-fill", best_rate(_built_inside()), 100_000),
        (
            "order lifecycles, inputs built beforehand (decide + evolve)",
            best_rate(_built_before(False)),
            100_000,
        ),
        ("order lifecycles + portfolio, inputs built beforehand", best_rate(_built_before(True)), None),
    ]


def profile(lifecycles: int = 20_000, top: int = 30, sort: str = "tottime") -> None:
    """cProfile of `lifecycles` decide + evolve runs (inputs built beforehand, portfolio included)."""
    flow = Lifecycles(with_portfolio=True)
    batch = [flow.inputs() for _ in range(lifecycles)]
    for inputs in [flow.inputs() for _ in range(500)]:  # warm up
        flow.run(inputs)
    profiler = cProfile.Profile()
    profiler.enable()
    for inputs in batch:
        flow.run(inputs)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats(sort).print_stats(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the lifecycle loop")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumtime)")
    args: Any = parser.parse_args(argv)
    if args.profile:
        profile(sort=args.sort)
        return
    for name, value, _ in rows():
        print(f"{name}: {value:,.0f}/s")


if __name__ == "__main__":
    main()
