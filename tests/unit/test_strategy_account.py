"""The strategy host's account view: an order sent in a callback that fails never counts, and a host
snapshotted before it kept the account loads and learns it from then on."""

from __future__ import annotations

import pickle
from decimal import Decimal

from meltica.clock import SimulatedClock
from meltica.domain.marketdata import QuoteTick
from meltica.domain.portfolio.events import BalanceChanged
from meltica.domain.values import OrderSide, OrderType
from meltica.processors.strategies import StrategyHost
from meltica.strategies.base import Strategy, StrategyContext
from meltica.topics import PORTFOLIO_EVENTS, QUOTES

QUOTE = QuoteTick("X.SIM", Decimal(1), Decimal(1), Decimal(2), Decimal(1), 5)


class SendsThenRaises(Strategy):
    strategy_id, account_id = "raises", "ACC"

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        ctx.submit("X.SIM", OrderSide.BUY, Decimal(3), order_type=OrderType.MARKET)
        assert ctx.exposure("X.SIM") == 3  # counted while the callback runs
        raise RuntimeError("boom")


def test_an_order_of_a_failed_callback_is_not_counted() -> None:
    host = StrategyHost([SendsThenRaises()])
    [failed] = host.handle(QUOTES, QUOTE, SimulatedClock(0))
    assert failed.event.reason.startswith("on_quote raised RuntimeError: boom")
    ctx = host.contexts["raises"]
    assert ctx.open_orders == {}
    assert ctx.exposure("X.SIM") == 0


def test_a_host_snapshotted_before_it_kept_the_account_loads_and_learns_it() -> None:
    old = StrategyHost([SendsThenRaises()])
    del old.portfolio  # as a snapshot taken before this change holds it
    del old.contexts["raises"].account
    host = pickle.loads(pickle.dumps(old))
    balance = BalanceChanged("ACC", "USD", Decimal(7), Decimal(5), Decimal(2), Decimal(7), "deposit", 1)
    assert host.handle(PORTFOLIO_EVENTS, balance, SimulatedClock(0)) == []
    ctx = host.contexts["raises"]
    assert (ctx.balance("USD").total, ctx.balance("USD").free) == (7, 5)
    assert ctx.balance("EUR").total == 0
