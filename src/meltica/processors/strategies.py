"""Strategy host: market data, the strategies' own order events and lifecycle commands in; their
order commands and state changes out.

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
from meltica.domain.orders.events import OrderAccepted
from meltica.runtime.processor import Output
from meltica.strategies import catalog
from meltica.strategies.base import Strategy, StrategyContext
from meltica.topics import ORDER_COMMANDS, STRATEGY_EVENTS, inputs_of

LISTENING = (StrategyState.RUNNING, StrategyState.STOPPED)  # hear about their own orders


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
    inputs = inputs_of("strategies")

    def __init__(self, strategies: list[Strategy]) -> None:
        self.instances: dict[str, Instance] = {
            s.strategy_id: Instance(s, type(s).__name__, getattr(s, "instrument_id", "")) for s in strategies
        }
        self.contexts = {s.strategy_id: StrategyContext(s.strategy_id, s.account_id) for s in strategies}
        self.owner: dict[str, Strategy] = {}
        self.layout = ",".join(f"{type(s).__name__}:{s.strategy_id}" for s in strategies)  # the built-in ones

    @property
    def strategies(self) -> list[Strategy]:
        """The running strategies, in the order they were created."""
        return [i.strategy for i in self.instances.values() if i.state is StrategyState.RUNNING]

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        if isinstance(event, Instrument):
            return []
        if isinstance(event, ControlStrategy):
            return [self._control(event)]
        ts = getattr(event, "ts", 0)
        failed: list[Output] = []
        if isinstance(event, QuoteTick | TradeTick | Bar):
            callback = {QuoteTick: "on_quote", TradeTick: "on_trade", Bar: "on_bar"}[type(event)]
            for s in self.strategies:
                failed += self._call(s, callback, event, ts)
        else:
            order_id = (
                event.order.order_id if isinstance(event, OrderAccepted) else getattr(event, "order_id", None)
            )
            strategy = self.owner.get(order_id or "")
            if strategy is not None and self.instances[strategy.strategy_id].state in LISTENING:
                failed += self._call(strategy, "on_order_event", event, ts)
        return failed + self._collect()

    def _call(self, strategy: Strategy, callback: str, event: Any, ts: int) -> list[Output]:
        """Run one callback; a strategy that raises fails alone (its state says why), the others go on."""
        ctx = self.contexts[strategy.strategy_id]
        ctx.now_ns = ts
        try:
            getattr(strategy, callback)(ctx, event)
        except Exception as err:
            ctx.commands.clear()  # nothing it asked for in the failed callback goes out
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
                )
            except ValueError as err:
                return self._changed(
                    cmd, cmd.kind, cmd.instrument_id, cmd.params, StrategyState.FAILED, str(err)
                )
            self.instances[cmd.strategy_id] = Instance(
                strategy, cmd.kind, cmd.instrument_id, dict(cmd.params), StrategyState.STOPPED
            )
            self.contexts.setdefault(cmd.strategy_id, StrategyContext(cmd.strategy_id, cmd.account_id))
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
                )
            except ValueError as err:
                return self._refused(cmd, current, str(err))
            strategy.position = current.strategy.position  # the position it asked for stays
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
