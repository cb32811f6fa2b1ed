"""Strategy host: market data, the strategies' own order events, the portfolio's events and lifecycle
commands in; their order commands and state changes out.

The portfolio's events (positions, balances, marks) are folded once into a `PortfolioState` the
strategies' contexts share, so a strategy reads its account as the read models hold it; each order
event is folded into its strategy's open orders before the strategy hears of it, and a denial or a
rejection is also handed to `on_order_denied` / `on_order_rejected` with its reason.

Instances given at construction run from the start; others are created, reconfigured, started,
stopped and removed by `ControlStrategy` commands, so their lifecycle is in the log and a replay
rebuilds it. A stopped strategy sees no market data but still hears about its own orders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meltica.clock import Clock
from meltica.domain.control import ControlStrategy, StrategyAction, StrategyState, StrategyStateChanged
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendRejected,
    OrderCancelRejected,
    OrderDenied,
    OrderRejected,
)
from meltica.domain.portfolio import decider as portfolio
from meltica.domain.portfolio.decider import PortfolioState
from meltica.runtime.processor import Output
from meltica.strategies import catalog
from meltica.strategies.base import Strategy, StrategyContext
from meltica.topics import ORDER_COMMANDS, PORTFOLIO_EVENTS, STRATEGY_EVENTS

LISTENING = (StrategyState.RUNNING, StrategyState.STOPPED)  # hear about their own orders
CALLBACKS = {QuoteTick: "on_quote", TradeTick: "on_trade", Bar: "on_bar"}  # market data's callback
REFUSALS = {  # the callback an order event is also handed to, after on_order_event
    OrderDenied: "on_order_denied",
    OrderRejected: "on_order_rejected",
    OrderCancelRejected: "on_order_rejected",
    OrderAmendRejected: "on_order_rejected",
}


@dataclass
class Instance:
    """One strategy instance and what it was made from."""

    strategy: Strategy
    kind: str
    instrument_id: str
    params: dict[str, str] = field(default_factory=dict)
    state: StrategyState = StrategyState.RUNNING


def _described(event: Any) -> str:
    """The event a callback failed on, as a person finds it in the log: type, instrument, order, time."""
    parts = [type(event).__name__, getattr(event, "instrument_id", "")]
    order_id = getattr(event, "order_id", None) or getattr(getattr(event, "order", None), "order_id", None)
    if order_id:
        parts.append(f"order {order_id}")
    return " ".join(p for p in parts if p) + f" at ts {getattr(event, 'ts', 0)}"


class StrategyHost:
    name = "strategies"

    def __init__(self, strategies: list[Strategy], *, modules: catalog.Modules = ()) -> None:
        self.modules = modules  # the module prefixes a created `module:Class` strategy may come from
        self.instances: dict[str, Instance] = {
            s.strategy_id: Instance(s, type(s).__name__, getattr(s, "instrument_id", "")) for s in strategies
        }
        self.portfolio = PortfolioState()  # every account's, as the portfolio's events say
        self.contexts = {
            s.strategy_id: StrategyContext(s.strategy_id, s.account_id, portfolio=self.portfolio)
            for s in strategies
        }
        self.owner: dict[str, Strategy] = {}
        self.layout = ",".join(f"{type(s).__name__}:{s.strategy_id}" for s in strategies)  # the built-in ones

    @property
    def strategies(self) -> list[Strategy]:
        """The running strategies, in the order they were created."""
        return [i.strategy for i in self.instances.values() if i.state is StrategyState.RUNNING]

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A host pickled before it kept the portfolio (a snapshot) starts an empty one."""
        self.__dict__.update(state)
        if "portfolio" not in state:
            self.portfolio = PortfolioState()
            for ctx in self.contexts.values():
                ctx.account.portfolio = self.portfolio

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        if topic == PORTFOLIO_EVENTS or isinstance(event, Instrument):
            portfolio.evolve(self.portfolio, event)  # what it does not fold it passes by
            return []
        if isinstance(event, ControlStrategy):
            return [self._control(event)]
        ts = getattr(event, "ts", 0)
        failed: list[Output] = []
        if isinstance(event, QuoteTick | TradeTick | Bar):
            callback = CALLBACKS[type(event)]
            for s in self.strategies:
                failed += self._call(s, callback, event, ts)
        else:
            order_id = (
                event.order.order_id if isinstance(event, OrderAccepted) else getattr(event, "order_id", None)
            )
            strategy = self.owner.get(order_id or "")
            if strategy is not None:
                self.contexts[strategy.strategy_id].account.learn_order(event)
            if strategy is not None and self.instances[strategy.strategy_id].state in LISTENING:
                failed += self._call(strategy, "on_order_event", event, ts)
                refusal = REFUSALS.get(type(event))
                if refusal is not None and not failed:
                    failed += self._call(strategy, refusal, event, ts)
        return failed + self._collect()

    def _call(self, strategy: Strategy, callback: str, event: Any, ts: int) -> list[Output]:
        """Run one callback; a strategy that raises fails alone (its state says why), the others go on."""
        ctx = self.contexts[strategy.strategy_id]
        ctx.now_ns = ts
        try:
            getattr(strategy, callback)(ctx, event)
        except Exception as err:
            for cmd in ctx.commands:  # nothing it asked for in the failed callback goes out
                if isinstance(cmd, SubmitOrder):
                    ctx.account.withdrawn(cmd.order.order_id)
            ctx.commands.clear()
            inst = self.instances[strategy.strategy_id]
            inst.state = StrategyState.FAILED
            reason = f"{callback} raised {type(err).__name__}: {err}, on {_described(event)}"
            cmd = ControlStrategy(
                StrategyAction.STOP, strategy.strategy_id, strategy.account_id, "strategies", ts
            )
            return [self._state(cmd, inst, reason)]
        return []

    # -- lifecycle --------------------------------------------------------------------------------
    def _control(self, cmd: ControlStrategy) -> Output:
        current = self.instances.get(cmd.strategy_id)
        if current is not None and current.strategy.account_id != cmd.account_id:
            return self._refused(cmd, current, f"strategy belongs to account {current.strategy.account_id}")
        if cmd.action is StrategyAction.CREATE:
            if current is not None and current.state is not StrategyState.REMOVED:
                return self._refused(cmd, current, "a strategy with this id exists")
            try:
                strategy = catalog.build(
                    cmd.kind,
                    cmd.instrument_id,
                    cmd.params,
                    strategy_id=cmd.strategy_id,
                    account_id=cmd.account_id,
                    modules=self.modules,
                )
            except ValueError as err:
                return self._changed(
                    cmd, cmd.kind, cmd.instrument_id, cmd.params, StrategyState.FAILED, str(err)
                )
            self.instances[cmd.strategy_id] = Instance(
                strategy, cmd.kind, cmd.instrument_id, dict(cmd.params), StrategyState.STOPPED
            )
            self.contexts.setdefault(
                cmd.strategy_id, StrategyContext(cmd.strategy_id, cmd.account_id, portfolio=self.portfolio)
            )
            return self._state(cmd, self.instances[cmd.strategy_id], "created")
        if current is None or current.state is StrategyState.REMOVED:
            return self._changed(
                cmd, cmd.kind, cmd.instrument_id, cmd.params, StrategyState.REMOVED, "no such strategy"
            )
        if cmd.action is StrategyAction.UPDATE:
            params = {**current.params, **cmd.params}
            try:
                strategy = catalog.build(
                    current.kind,
                    current.instrument_id,
                    params,
                    strategy_id=cmd.strategy_id,
                    account_id=cmd.account_id,
                    modules=self.modules,
                )
            except ValueError as err:
                return self._refused(cmd, current, str(err))
            for order_id, owner in self.owner.items():
                if owner is current.strategy:
                    self.owner[order_id] = strategy
            current.strategy, current.params = strategy, params
            return self._state(cmd, current, "parameters updated")
        if cmd.action is StrategyAction.START:
            if current.state is StrategyState.RUNNING:
                return self._refused(cmd, current, "already running")
            current.state = StrategyState.RUNNING
            return self._state(cmd, current, "started")
        if cmd.action is StrategyAction.STOP:
            if current.state is not StrategyState.RUNNING:
                return self._refused(cmd, current, "not running")
            current.state = StrategyState.STOPPED
            return self._state(cmd, current, "stopped")
        current.state = StrategyState.REMOVED
        return self._state(cmd, current, "removed")

    def _state(self, cmd: ControlStrategy, inst: Instance, reason: str) -> Output:
        return self._changed(cmd, inst.kind, inst.instrument_id, inst.params, inst.state, reason)

    def _refused(self, cmd: ControlStrategy, inst: Instance, why: str) -> Output:
        return self._state(cmd, inst, f"{cmd.action.value.lower()} refused: {why}")

    @staticmethod
    def _changed(
        cmd: ControlStrategy,
        kind: str,
        instrument_id: str,
        params: dict[str, str],
        state: StrategyState,
        reason: str,
    ) -> Output:
        event = StrategyStateChanged(
            cmd.strategy_id,
            cmd.account_id,
            kind,
            instrument_id,
            dict(params),
            state,
            reason,
            cmd.operator,
            cmd.ts,
        )
        return Output(STRATEGY_EVENTS, cmd.account_id, event)

    # -- orders out -------------------------------------------------------------------------------
    def _collect(self) -> list[Output]:
        out = []
        for inst in self.instances.values():
            s = inst.strategy
            ctx = self.contexts[s.strategy_id]
            if not ctx.commands:
                continue  # most inputs: nothing asked for
            for cmd in ctx.commands:
                if isinstance(cmd, SubmitOrder):
                    self.owner[cmd.order.order_id] = s
                    out.append(
                        Output(ORDER_COMMANDS, cmd.order.account_id, cmd, trace_key=cmd.order.order_id)
                    )
                elif isinstance(cmd, CancelOrder):
                    out.append(Output(ORDER_COMMANDS, cmd.account_id, cmd, trace_key=cmd.order_id))
            ctx.commands.clear()
        return out
