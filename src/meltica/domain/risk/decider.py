"""The pre-trade risk decider: submissions become `OrderAccepted` or `OrderDenied`.

`decide` is pure; `evolve` applies accepted/denied orders, fills and terminal order
events (reservations, positions), balances, limits, trading states, kill switches,
instruments and market prices to the state in place.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.domain.orders.commands import SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
)
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import BalanceChanged
from meltica.domain.reservations import reservation
from meltica.domain.risk.checks import NOT_BREACHES, DenyReason, Proposal, first_denial, tokens_at
from meltica.domain.risk.events import (
    KillSwitchReset,
    KillSwitchTripped,
    ResetKillSwitch,
    RiskLimitsChanged,
    SetRiskLimits,
    SetTradingState,
    TradingStateChanged,
    TripKillSwitch,
)
from meltica.domain.risk.state import AccountRisk, OpenOrder, RiskState
from meltica.domain.values import ZERO, ContingencyType, OrderType, RiskScope

Event = Any
CIRCUIT_BREAKER = "circuit-breaker"


def _denied(spec: OrderSpec, reason: DenyReason, message: str, ts: int) -> OrderDenied:
    return OrderDenied(
        spec.order_id, spec.client_order_id, spec.account_id, spec.instrument_id, ts, reason, message
    )


def _is_duplicate(state: RiskState, spec: OrderSpec) -> bool:
    """A redelivered or resubmitted order (same id or client id) gets no second decision."""
    account = state.accounts.get(spec.account_id)
    return spec.order_id in state.known_orders or (
        account is not None and spec.client_order_id in account.client_order_ids
    )


def _judge(state: RiskState, spec: OrderSpec, ts: int) -> DenyReason | None:
    account = state.account(spec.account_id)
    proposal = Proposal(
        state=state,
        account=account,
        order=spec,
        instrument=state.instruments.get(spec.instrument_id),
        limits=state.effective_limits(spec.account_id, spec.instrument_id),
        ts=ts,
    )
    return first_denial(proposal)


def _message(spec: OrderSpec, reason: DenyReason) -> str:
    return (spec.problems() or "") if reason is DenyReason.INVALID_ORDER else ""


def _breaker(state: RiskState, events: list[Event], ts: int) -> list[Event]:
    """Trip the account's kill switch when its breaches in the window reach the limit."""
    out: list[Event] = []
    counted: dict[str, int] = {}
    for e in events:
        if isinstance(e, OrderDenied) and DenyReason(e.reason) not in NOT_BREACHES:
            counted[e.account_id] = counted.get(e.account_id, 0) + 1
    for account_id, new in counted.items():
        key = (RiskScope.ACCOUNT, account_id)
        if key in state.kill_switches:
            continue
        limits = state.effective_limits(account_id, "")
        n, window = limits.circuit_breaker_breaches, limits.circuit_breaker_window_ns
        if n is None or window is None:
            continue
        recent = [t for t in state.account(account_id).breaches if t > ts - window]
        if len(recent) + new >= n:
            reason = f"circuit breaker: {len(recent) + new} breaches within {window // 1_000_000_000}s"
            out.append(KillSwitchTripped(RiskScope.ACCOUNT, account_id, reason, CIRCUIT_BREAKER, ts))
    return out


def decide(state: RiskState, inp: Any) -> list[Event]:
    """The risk decision for a command. Pure."""
    if isinstance(inp, SubmitOrder):
        spec = inp.order
        if _is_duplicate(state, spec):
            return []
        reason = _judge(state, spec, inp.ts)
        out: list[Event] = [
            OrderAccepted(spec, inp.ts)
            if reason is None
            else _denied(spec, reason, _message(spec, reason), inp.ts)
        ]
        return out + _breaker(state, out, inp.ts)
    if isinstance(inp, SubmitOrderList):
        return _decide_list(state, inp)
    if isinstance(inp, SetRiskLimits):
        return [RiskLimitsChanged(inp.scope, inp.scope_id, inp.limits, inp.operator, inp.ts, inp.accounts)]
    if isinstance(inp, SetTradingState):
        return [
            TradingStateChanged(inp.scope, inp.scope_id, inp.state, "set by operator", inp.operator, inp.ts)
        ]
    if isinstance(inp, TripKillSwitch):
        if (inp.scope, inp.scope_id) in state.kill_switches:
            return []
        return [KillSwitchTripped(inp.scope, inp.scope_id, inp.reason, inp.operator, inp.ts)]
    if isinstance(inp, ResetKillSwitch):
        if (inp.scope, inp.scope_id) not in state.kill_switches:
            return []
        return [KillSwitchReset(inp.scope, inp.scope_id, inp.operator, inp.ts)]
    return []


def _decide_list(state: RiskState, cmd: SubmitOrderList) -> list[Event]:
    """Each order is judged after the ones before it; a contingent list is all or nothing."""
    fresh = [spec for spec in cmd.orders if not _is_duplicate(state, spec)]
    if not fresh:
        return []
    scratch = copy.deepcopy(state)
    decisions: list[Event] = []
    for spec in fresh:
        reason = _judge(scratch, spec, cmd.ts)
        event = (
            OrderAccepted(spec, cmd.ts)
            if reason is None
            else _denied(spec, reason, _message(spec, reason), cmd.ts)
        )
        decisions.append(event)
        evolve(scratch, event)
    contingent = any(s.contingency_type is not ContingencyType.NONE or s.parent_order_id for s in fresh)
    first = next((d for d in decisions if isinstance(d, OrderDenied)), None)
    if contingent and first is not None:
        decisions = [
            d
            if isinstance(d, OrderDenied)
            else _denied(d.order, DenyReason.LIST_DENIED, f"{first.order_id} denied: {first.reason}", cmd.ts)
            for d in decisions
        ]
    return decisions + _breaker(state, decisions, cmd.ts)


# -- evolve -----------------------------------------------------------------------------------
def _account(state: RiskState, account_id: str) -> AccountRisk:
    account = state.accounts.get(account_id)
    if account is None:
        account = state.accounts[account_id] = AccountRisk(account_id)
    return account


def _reserve(state: RiskState, spec: OrderSpec, quantity: Decimal, price: Decimal | None) -> OpenOrder | None:
    inst = state.instruments.get(spec.instrument_id)
    ref = (
        price
        if price is not None
        else spec.trigger_price
        if spec.trigger_price is not None
        else state.prices.get(spec.instrument_id)
    )
    if inst is None or ref is None:
        return None
    limits = state.effective_limits(spec.account_id, spec.instrument_id)
    band = limits.price_band if spec.order_type is OrderType.MARKET else None
    asset, amount = reservation(spec.side, quantity, ref, inst, band)
    return OpenOrder(spec.instrument_id, spec.side, quantity, quantity, ref, asset, amount)


def evolve(state: RiskState, event: Any) -> RiskState:
    """Apply one event or market fact to the risk state (in place) and return it."""
    handler = _EVOLVE.get(type(event))
    if handler is not None:
        handler(state, event)
    return state


def _accepted(state: RiskState, e: OrderAccepted) -> None:
    spec = e.order
    state.known_orders.add(spec.order_id)
    account = _account(state, spec.account_id)
    account.client_order_ids.add(spec.client_order_id)
    limits = state.effective_limits(spec.account_id, spec.instrument_id)
    if limits.throttle_rate is not None and limits.throttle_burst is not None:
        account.tokens, account.tokens_ts = tokens_at(account, limits, e.ts) - 1, e.ts
    open_order = _reserve(state, spec, spec.quantity, spec.price)
    if open_order is not None:
        account.open_orders[spec.order_id] = open_order


def _denied_event(state: RiskState, e: OrderDenied) -> None:
    state.known_orders.add(e.order_id)
    account = _account(state, e.account_id)
    account.client_order_ids.add(e.client_order_id)
    if DenyReason(e.reason) not in NOT_BREACHES:
        window = state.effective_limits(e.account_id, "").circuit_breaker_window_ns or 0
        account.breaches = (*(t for t in account.breaches if t > e.ts - window), e.ts)


def _fill(state: RiskState, e: OrderFilled | OrderPartiallyFilled) -> None:
    account = _account(state, e.account_id)
    signed = e.fill.last_qty * e.fill.side.sign
    account.positions[e.instrument_id] = account.positions.get(e.instrument_id, ZERO) + signed
    o = account.open_orders.get(e.order_id)
    if o is not None:
        o.leaves = e.leaves_qty
        if e.leaves_qty <= ZERO:
            del account.open_orders[e.order_id]


def _ended(state: RiskState, e: OrderCanceled | OrderExpired | OrderRejected) -> None:
    account = state.accounts.get(e.account_id)
    if account is not None:
        account.open_orders.pop(e.order_id, None)


def _replaced(state: RiskState, e: OrderReplaced) -> None:
    account = state.accounts.get(e.account_id)
    o = None if account is None else account.open_orders.get(e.order_id)
    if account is None or o is None:
        return
    filled = o.quantity - o.leaves
    inst = state.instruments.get(e.instrument_id)
    price = e.price if e.price is not None else e.trigger_price if e.trigger_price is not None else o.price
    if inst is not None:
        o.asset, o.reserved = reservation(o.side, e.quantity, price, inst)
    o.quantity, o.leaves, o.price = e.quantity, e.quantity - filled, price


def _balance(state: RiskState, e: BalanceChanged) -> None:
    _account(state, e.account_id).balances[e.asset] = e.total


def _limits(state: RiskState, e: RiskLimitsChanged) -> None:
    state.limits[(e.scope, e.scope_id)] = e.limits
    state.limits_cache.clear()
    if e.scope is RiskScope.PORTFOLIO:
        for account in state.portfolios.get(e.scope_id, ()):
            state.portfolio_by_account.pop(account, None)
        state.portfolios[e.scope_id] = e.accounts
        for account in e.accounts:
            state.portfolio_by_account[account] = e.scope_id


def _trading(state: RiskState, e: TradingStateChanged) -> None:
    state.trading[(e.scope, e.scope_id)] = e.state


def _tripped(state: RiskState, e: KillSwitchTripped) -> None:
    state.kill_switches[(e.scope, e.scope_id)] = e.reason


def _reset(state: RiskState, e: KillSwitchReset) -> None:
    state.kill_switches.pop((e.scope, e.scope_id), None)
    if e.scope is RiskScope.ACCOUNT and e.scope_id in state.accounts:
        state.accounts[e.scope_id].breaches = ()


def _instrument(state: RiskState, e: Instrument) -> None:
    state.instruments[e.instrument_id] = e


def _quote(state: RiskState, e: QuoteTick) -> None:
    state.prices[e.instrument_id] = (e.bid_px + e.ask_px) / 2


def _trade(state: RiskState, e: TradeTick) -> None:
    state.prices[e.instrument_id] = e.price


def _bar(state: RiskState, e: Bar) -> None:
    state.prices[e.instrument_id] = e.close


_EVOLVE: dict[type, Any] = {
    OrderAccepted: _accepted,
    OrderDenied: _denied_event,
    OrderPartiallyFilled: _fill,
    OrderFilled: _fill,
    OrderCanceled: _ended,
    OrderExpired: _ended,
    OrderRejected: _ended,
    OrderReplaced: _replaced,
    BalanceChanged: _balance,
    RiskLimitsChanged: _limits,
    TradingStateChanged: _trading,
    KillSwitchTripped: _tripped,
    KillSwitchReset: _reset,
    Instrument: _instrument,
    QuoteTick: _quote,
    TradeTick: _trade,
    Bar: _bar,
}
