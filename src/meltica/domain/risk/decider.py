"""The pre-trade risk decider: submissions become `OrderAccepted` or `OrderDenied`, amends
`OrderAmendAccepted` or `OrderAmendRejected` (with the deny reason).

Every way to a live order passes here: a submit, each order of a list, and an amend, which is
judged as the order it would make (its own hold released, the new one reserved). A list that
names one order (or client order) id twice is denied whole, so no id is ever accepted twice.
`decide` is pure; `evolve` applies accepted/denied orders and amends, fills and terminal order
events (reservations, positions), balances, limits, trading states, kill switches,
instruments and market prices to the state in place.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeGuard

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.domain.orders.commands import AmendOrder, SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendAccepted,
    OrderAmendRejected,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPendingReplace,
    OrderRejected,
    OrderReplaced,
    OrderTransitionRejected,
    OrderTriggered,
    OrderTriggerUpdated,
)
from meltica.domain.orders.model import OrderSpec, OrderStatus, amend_problem
from meltica.domain.portfolio.events import BalanceChanged
from meltica.domain.reservations import reservation
from meltica.domain.risk.checks import AT_MARKET, NOT_BREACHES, DenyReason, Proposal, first_denial, tokens_at
from meltica.domain.risk.events import (
    KillSwitchReset,
    KillSwitchTripped,
    ResetKillSwitch,
    RiskCommand,
    RiskEvent,
    RiskLimitsChanged,
    SetRiskLimits,
    SetTradingState,
    TradingStateChanged,
    TripKillSwitch,
)
from meltica.domain.risk.state import AccountRisk, OpenOrder, PendingAmend, RiskState
from meltica.domain.routing import NOT_AMENDABLE, routed
from meltica.domain.values import ROUTER_VENUE, ZERO, ContingencyType, RiskScope

RiskInput = SubmitOrder | SubmitOrderList | AmendOrder | RiskCommand
"""What the risk decider decides on: order and risk commands."""
Event = (
    OrderAccepted
    | OrderDenied
    | OrderAmendAccepted
    | OrderAmendRejected
    | OrderTransitionRejected
    | RiskEvent
)
"""What it decides: order acceptances, denials and amend answers, and risk events."""
RiskFact = OrderEvent | RiskEvent | BalanceChanged | Instrument | QuoteTick | TradeTick | Bar
"""What `evolve` learns from (every other input passes through unchanged)."""
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


def _judge(
    state: RiskState, spec: OrderSpec, ts: int, amending: OpenOrder | None = None
) -> DenyReason | None:
    """The first reason to deny `spec`; with `amending`, as the amended form of that open order
    (whose own hold and quantity are released from the account first)."""
    account = state.account(spec.account_id)
    filled = ZERO
    if amending is not None:
        account = dataclasses.replace(account, open_orders=account.orders().without(spec.order_id))
        filled = amending.filled
    proposal = Proposal(
        state=state,
        account=account,
        order=spec,
        instrument=state.instruments.get(spec.instrument_id),
        limits=state.effective_limits(spec.account_id, spec.instrument_id),
        ts=ts,
        filled=filled,
    )
    return first_denial(proposal)


def _message(spec: OrderSpec, reason: DenyReason) -> str:
    return (spec.problems() or "") if reason is DenyReason.INVALID_ORDER else ""


def _breach(e: Event) -> TypeGuard[OrderDenied | OrderAmendRejected]:
    """A denial that counts towards the circuit breaker (an order's, or risk's of an amend)."""
    if isinstance(e, OrderDenied):
        return e.reason not in NOT_BREACHES
    if isinstance(e, OrderAmendRejected):
        reason = _deny_reason(e.reason)
        return reason is not None and reason not in NOT_BREACHES
    return False


def _deny_reason(text: str) -> DenyReason | None:
    """The deny reason an `OrderAmendRejected` reason starts with, if any (a venue's is free text)."""
    try:
        return DenyReason(text.partition(":")[0])
    except ValueError:
        return None


def _breaker(state: RiskState, events: Sequence[Event], ts: int) -> list[Event]:
    """Trip the account's kill switch when its breaches in the window reach the limit."""
    out: list[Event] = []
    counted: dict[str, int] = {}
    for e in events:
        if _breach(e):
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


def decide(state: RiskState, inp: RiskInput) -> list[Event]:
    """The risk decision for a command. Pure."""
    if isinstance(inp, SubmitOrder):
        spec = inp.order
        if _is_duplicate(state, spec):
            return []
        reason = _judge(state, spec, inp.ts)
        if reason is None:
            return [OrderAccepted(spec, inp.ts)]  # no breach: the breaker has nothing to count
        out: list[Event] = [_denied(spec, reason, _message(spec, reason), inp.ts)]
        return out + _breaker(state, out, inp.ts)
    if isinstance(inp, SubmitOrderList):
        return _decide_list(state, inp)
    if isinstance(inp, AmendOrder):
        return _decide_amend(state, inp)
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
    """Each order is judged after the ones before it; a contingent list is all or nothing; a list
    naming an id twice is denied whole (one of its orders accepted would be two)."""
    fresh = [spec for spec in cmd.orders if not _is_duplicate(state, spec)]
    if not fresh:
        return []  # a redelivery: decided already
    repeated = _repeated(fresh)
    contingent = any(s.contingency_type is not ContingencyType.NONE or s.parent_order_id for s in fresh)
    if repeated or (contingent and len(fresh) < len(cmd.orders)):
        return _deny_duplicates(cmd, fresh, repeated)
    scratch = _scratch(state, {spec.account_id for spec in fresh})
    decisions: list[OrderAccepted | OrderDenied] = []
    for spec in fresh:
        reason = _judge(scratch, spec, cmd.ts)
        event = (
            OrderAccepted(spec, cmd.ts)
            if reason is None
            else _denied(spec, reason, _message(spec, reason), cmd.ts)
        )
        decisions.append(event)
        evolve(scratch, event)
    first = next((d for d in decisions if isinstance(d, OrderDenied)), None)
    if contingent and first is not None:
        decisions = [
            d
            if isinstance(d, OrderDenied)
            else _denied(d.order, DenyReason.LIST_DENIED, f"{first.order_id} denied: {first.reason}", cmd.ts)
            for d in decisions
        ]
    return [*decisions, *_breaker(state, decisions, cmd.ts)]


def _scratch(state: RiskState, account_ids: set[str]) -> RiskState:
    """A state to judge a list's orders on one after another, each as if those before it were
    decided: the list's accounts copied (open orders with their totals, positions, balances,
    tokens, breaches), the rest shared, since evolving an acceptance or a denial changes nothing
    else. Its id sets start empty: duplicates are found before judging."""
    accounts = dict(state.accounts)
    for account_id in account_ids & accounts.keys():
        a = accounts[account_id]
        accounts[account_id] = dataclasses.replace(
            a,
            positions=dict(a.positions),
            open_orders=a.orders().copy(),
            balances=dict(a.balances),
            client_order_ids=set(),
        )
    return dataclasses.replace(state, accounts=accounts, known_orders=set(), limits_cache=state.limits_cache)


def _repeated(specs: list[OrderSpec]) -> set[str]:
    """Order ids and client order ids that occur more than once in `specs`."""
    ids = Counter(s.order_id for s in specs)
    client_ids = Counter(s.client_order_id for s in specs)
    return {i for i, n in ids.items() if n > 1} | {c for c, n in client_ids.items() if n > 1}


def _deny_duplicates(cmd: SubmitOrderList, fresh: list[OrderSpec], repeated: set[str]) -> list[Event]:
    """Deny every new order of a list that repeats an id (or of a contingent list that reuses a
    decided one), once per order id."""
    reused = [s.order_id for s in cmd.orders if s not in fresh] or sorted(repeated)
    message = f"order list {cmd.order_list_id} repeats or reuses order id {reused[0]}"
    out: list[Event] = []
    seen: set[str] = set()
    for spec in fresh:
        if spec.order_id in seen:
            continue
        seen.add(spec.order_id)
        dup = spec.order_id in repeated or spec.client_order_id in repeated
        reason = DenyReason.DUPLICATE_ORDER_ID if dup else DenyReason.LIST_DENIED
        out.append(_denied(spec, reason, message, cmd.ts))
    return out


def _amend_rejected(cmd: AmendOrder, client_order_id: str, reason: str) -> OrderAmendRejected:
    return OrderAmendRejected(
        cmd.order_id, client_order_id, cmd.account_id, cmd.instrument_id, cmd.ts, reason
    )


def amended_spec(
    o: OpenOrder, quantity: Decimal | None, price: Decimal | None, trigger: Decimal | None
) -> OrderSpec:
    """The order `o` would become with these terms (None: unchanged)."""
    assert o.spec is not None  # nosec B101 # typing; open orders carry their spec
    return dataclasses.replace(
        o.spec,
        quantity=quantity if quantity is not None else o.spec.quantity,
        price=price if price is not None else o.spec.price,
        trigger_price=trigger if trigger is not None else o.spec.trigger_price,
    )


def _decide_amend(state: RiskState, cmd: AmendOrder) -> list[Event]:
    """An amend is judged as the order it would make; one pending amend per order at a time."""
    account = state.accounts.get(cmd.account_id)
    if routed(cmd.instrument_id) and cmd.order_id in state.known_orders:
        return [_amend_rejected(cmd, "", NOT_AMENDABLE)]
    o = None if account is None else account.open_orders.get(cmd.order_id)
    spec = None if o is None else o.spec
    if account is not None and spec is not None and spec.parent_order_id in account.routed:
        return [_amend_rejected(cmd, spec.client_order_id, NOT_AMENDABLE)]
    if o is None or spec is None:
        known = cmd.order_id in state.known_orders and account is not None
        return [_amend_rejected(cmd, "", "order is not open" if known else "unknown order")]
    if o.pending is not None:  # not an OrderAmendRejected: that one would end the pending amend
        return [
            OrderTransitionRejected(
                spec.order_id,
                spec.client_order_id,
                spec.account_id,
                spec.instrument_id,
                cmd.ts,
                OrderStatus.PENDING_REPLACE,
                "AmendOrder",
                "an amend is pending",
            )
        ]
    amended = amended_spec(o, cmd.quantity, cmd.price, cmd.trigger_price)
    problem = amend_problem(
        spec.order_type, o.filled, amended.quantity, cmd.quantity, cmd.price, cmd.trigger_price
    )
    if problem is not None:
        return [_amend_rejected(cmd, spec.client_order_id, problem)]
    reason = _judge(state, amended, cmd.ts, amending=o)
    if reason is None:
        return [
            OrderAmendAccepted(
                spec.order_id,
                spec.client_order_id,
                spec.account_id,
                spec.instrument_id,
                cmd.ts,
                cmd.quantity,
                cmd.price,
                cmd.trigger_price,
            )
        ]
    message = _message(amended, reason)
    out: list[Event] = [
        _amend_rejected(cmd, spec.client_order_id, f"{reason}: {message}" if message else reason.value)
    ]
    return out + _breaker(state, out, cmd.ts)


# -- evolve -----------------------------------------------------------------------------------
def _account(state: RiskState, account_id: str) -> AccountRisk:
    account = state.accounts.get(account_id)
    if account is None:
        account = state.accounts[account_id] = AccountRisk(account_id)
    return account


def _reserve(state: RiskState, spec: OrderSpec, quantity: Decimal, price: Decimal | None) -> OpenOrder | None:
    """What `spec` holds back for `quantity` at `price` (else its trigger, else the last price)."""
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
    band = limits.price_band if spec.order_type in AT_MARKET else None
    asset, amount = reservation(spec.side, quantity, ref, inst, band)
    return OpenOrder(spec.instrument_id, spec.side, quantity, quantity, ref, asset, amount, spec)


def evolve(state: RiskState, event: RiskFact | RiskInput) -> RiskState:
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
    if spec.parent_order_id not in account.routed:  # a routed order's child: its parent took it
        _take_token(state, account, spec.instrument_id, e.ts)
    if spec.venue == ROUTER_VENUE:
        account.routed.add(spec.order_id)
        return  # a routed order holds nothing itself: each child is checked and held at its venue
    open_order = _reserve(state, spec, spec.quantity, spec.price)
    if open_order is not None:
        account.open_orders[spec.order_id] = open_order


def _take_token(state: RiskState, account: AccountRisk, instrument_id: str, ts: int) -> None:
    """An accepted order or amend spends one throttle token."""
    limits = state.effective_limits(account.account_id, instrument_id)
    if limits.throttle_rate is not None and limits.throttle_burst is not None:
        account.tokens, account.tokens_ts = tokens_at(account, limits, ts) - 1, ts


def _note_breach(state: RiskState, e: OrderDenied | OrderAmendRejected) -> None:
    if _breach(e):
        account = _account(state, e.account_id)
        window = state.effective_limits(e.account_id, "").circuit_breaker_window_ns or 0
        account.breaches = (*(t for t in account.breaches if t > e.ts - window), e.ts)


def _denied_event(state: RiskState, e: OrderDenied) -> None:
    state.known_orders.add(e.order_id)
    account = _account(state, e.account_id)
    account.client_order_ids.add(e.client_order_id)
    _note_breach(state, e)


def _amend_accepted(state: RiskState, e: OrderAmendAccepted | OrderPendingReplace) -> None:
    """Hold the amended terms next to the current ones until the venue answers (an amend the
    order book makes itself, an OCO reduction, is pending from its `OrderPendingReplace`)."""
    account = _account(state, e.account_id)
    o = account.open_orders.get(e.order_id)
    if isinstance(e, OrderAmendAccepted):
        _take_token(state, account, e.instrument_id, e.ts)
    if o is None or o.spec is None or o.pending is not None:
        return
    spec = amended_spec(o, e.quantity, e.price, e.trigger_price)
    held = _reserve(state, spec, spec.quantity, spec.price)
    if held is not None:
        o.pending = PendingAmend(spec.quantity, held.price, held.reserved)
        account.orders().recount(e.order_id)


def _amend_ended(state: RiskState, e: OrderAmendRejected | OrderTransitionRejected) -> None:
    """An amend the venue or the order's status refused: the current terms hold alone."""
    if isinstance(e, OrderAmendRejected):
        _note_breach(state, e)
    elif e.attempted != OrderAmendAccepted.__name__:
        return
    account = state.accounts.get(e.account_id)
    o = None if account is None else account.open_orders.get(e.order_id)
    if account is not None and o is not None and o.pending is not None:
        o.pending = None
        account.orders().recount(e.order_id)


def _fill(state: RiskState, e: OrderFilled | OrderPartiallyFilled) -> None:
    if routed(e.instrument_id):  # a routed order's fill mirrors a child's, which counted
        if e.leaves_qty <= ZERO and e.account_id in state.accounts:
            state.accounts[e.account_id].routed.discard(e.order_id)
        return
    account = _account(state, e.account_id)
    signed = e.fill.last_qty * e.fill.side.sign
    account.positions[e.instrument_id] = account.positions.get(e.instrument_id, ZERO) + signed
    o = account.open_orders.get(e.order_id)
    if o is not None:
        o.leaves = e.leaves_qty
        if e.leaves_qty <= ZERO:
            del account.open_orders[e.order_id]
        else:
            account.orders().recount(e.order_id)


def _ended(state: RiskState, e: OrderCanceled | OrderExpired | OrderRejected) -> None:
    account = state.accounts.get(e.account_id)
    if account is not None:
        account.open_orders.pop(e.order_id, None)
        account.routed.discard(e.order_id)


def _replaced(state: RiskState, e: OrderReplaced) -> None:
    account = state.accounts.get(e.account_id)
    o = None if account is None else account.open_orders.get(e.order_id)
    if account is None or o is None:
        return
    filled = o.filled
    inst = state.instruments.get(e.instrument_id)
    price = e.price if e.price is not None else e.trigger_price if e.trigger_price is not None else o.price
    if inst is not None:
        at_market = o.spec is not None and o.spec.order_type in AT_MARKET
        band = state.effective_limits(e.account_id, e.instrument_id).price_band if at_market else None
        o.asset, o.reserved = reservation(o.side, e.quantity, price, inst, band)
    o.quantity, o.leaves, o.price, o.pending = e.quantity, e.quantity - filled, price, None
    if o.spec is not None:
        o.spec = dataclasses.replace(
            o.spec, quantity=e.quantity, price=e.price, trigger_price=e.trigger_price
        )
    account.orders().recount(e.order_id)


def _trigger_moved(state: RiskState, e: OrderTriggerUpdated | OrderTriggered) -> None:
    """A stop's trigger, as an amend of it will be judged against."""
    account = state.accounts.get(e.account_id)
    o = None if account is None else account.open_orders.get(e.order_id)
    if o is not None and o.spec is not None and e.trigger_price is not None:
        o.spec = dataclasses.replace(o.spec, trigger_price=e.trigger_price)


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


def _price(state: RiskState, instrument_id: str, price: Decimal) -> None:
    """The last price of an instrument, which is also the last of its symbol at the routing venue."""
    state.prices[instrument_id] = price
    symbol, _, venue = instrument_id.rpartition(".")
    if venue != ROUTER_VENUE and f"{symbol}.{ROUTER_VENUE}" in state.instruments:
        state.prices[f"{symbol}.{ROUTER_VENUE}"] = price


def _quote(state: RiskState, e: QuoteTick) -> None:
    _price(state, e.instrument_id, e.mid)


def _trade(state: RiskState, e: TradeTick) -> None:
    _price(state, e.instrument_id, e.price)


def _bar(state: RiskState, e: Bar) -> None:
    _price(state, e.instrument_id, e.close)


# Each handler takes the event type it is filed under (a dict: one lookup per event).
_EVOLVE: dict[type, Callable[[RiskState, Any], None]] = {
    OrderAccepted: _accepted,
    OrderDenied: _denied_event,
    OrderPartiallyFilled: _fill,
    OrderFilled: _fill,
    OrderCanceled: _ended,
    OrderExpired: _ended,
    OrderRejected: _ended,
    OrderReplaced: _replaced,
    OrderAmendAccepted: _amend_accepted,
    OrderPendingReplace: _amend_accepted,
    OrderAmendRejected: _amend_ended,
    OrderTransitionRejected: _amend_ended,
    OrderTriggerUpdated: _trigger_moved,
    OrderTriggered: _trigger_moved,
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
