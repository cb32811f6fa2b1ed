"""A tiny synchronous harness wiring the three deciders, as the processors will."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import ClockTick, QuoteTick, TradeTick
from meltica.domain.orders import decider as orders
from meltica.domain.orders.commands import AmendOrder, SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import ExecutionReport, VenueAmendOrder, VenueCancelOrder, VenueSubmitOrder
from meltica.domain.portfolio import decider as portfolio
from meltica.domain.portfolio.events import AdjustBalance, PortfolioEvent
from meltica.domain.risk import decider as risk
from meltica.domain.risk.events import ResetKillSwitch, SetRiskLimits, SetTradingState, TripKillSwitch
from meltica.domain.risk.state import RiskState

VENUE_REQUESTS = (VenueSubmitOrder, VenueCancelOrder, VenueAmendOrder)


@dataclass
class Flow:
    """Risk, orders and portfolio state with every event they produced, in order."""

    risk: RiskState = field(default_factory=RiskState)
    book: orders.OrderBook = field(default_factory=orders.OrderBook)
    portfolio: portfolio.PortfolioState = field(default_factory=portfolio.PortfolioState)
    events: list[Any] = field(default_factory=list)
    venue: list[Any] = field(default_factory=list)

    def define(self, *instruments: Instrument) -> None:
        for inst in instruments:
            risk.evolve(self.risk, inst)
            portfolio.evolve(self.portfolio, inst)

    def deposit(self, account: str, asset: str, amount: Any, ts: int = 0) -> None:
        self._portfolio_input(AdjustBalance(account, asset, Decimal(str(amount)), "deposit", ts))

    def _portfolio_input(self, inp: Any) -> None:
        for e in portfolio.decide(self.portfolio, inp):
            self._publish(e)
        portfolio.evolve(self.portfolio, inp)

    def _publish(self, e: Any) -> None:
        """An output event reaches every decider that consumes it."""
        if isinstance(e, VENUE_REQUESTS):
            self.venue.append(e)
            return
        self.events.append(e)
        risk.evolve(self.risk, e)
        if isinstance(e, PortfolioEvent):  # the order processor does not read the portfolio's events
            portfolio.evolve(self.portfolio, e)
            return
        follow = orders.decide(self.book, e)
        orders.evolve(self.book, e)
        pevents = portfolio.decide(self.portfolio, e)
        portfolio.evolve(self.portfolio, e)
        for out in [*pevents, *follow]:
            self._publish(out)

    def submit(self, cmd: SubmitOrder | SubmitOrderList | AmendOrder) -> list[Any]:
        """An order command: risk decides it, and its decision reaches every decider."""
        out = risk.decide(self.risk, cmd)
        for e in out:
            self._publish(e)
        return out

    def risk_command(
        self, cmd: SetRiskLimits | SetTradingState | TripKillSwitch | ResetKillSwitch
    ) -> list[Any]:
        out = risk.decide(self.risk, cmd)
        for e in out:
            self._publish(e)
        return out

    def amend(self, cmd: AmendOrder) -> list[Any]:
        return self.submit(cmd)

    def order_input(self, inp: Any) -> list[Any]:
        """A venue report, client cancel, or a clock tick reaching the order decider (an amend goes
        to risk first, as in the processors)."""
        if isinstance(inp, AmendOrder):
            return self.amend(inp)
        out = orders.decide(self.book, inp)
        for e in out:
            self._publish(e)
        return out

    def market(self, tick: QuoteTick | TradeTick) -> list[Any]:
        risk.evolve(self.risk, tick)
        out = orders.decide(self.book, tick)
        for e in out:
            self._publish(e)
        self._portfolio_input(tick)
        return out

    def clock(self, ts: int) -> list[Any]:
        return self.order_input(ClockTick(ts))

    def report(self, rep: ExecutionReport) -> list[Any]:
        return self.order_input(rep)
