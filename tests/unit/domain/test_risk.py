"""Pre-trade risk: every deny reason, limits at run time, throttle, circuit breaker, kill switch."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from meltica.domain.orders.commands import CancelOrder, SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import OrderAccepted, OrderDenied
from meltica.domain.orders.model import OrderSpec
from meltica.domain.risk.checks import CHECKS, DenyReason
from meltica.domain.risk.events import (
    KillSwitchReset,
    KillSwitchTripped,
    ResetKillSwitch,
    SetRiskLimits,
    SetTradingState,
    TripKillSwitch,
)
from meltica.domain.risk.limits import DEFAULT_LIMITS, RiskLimits
from meltica.domain.values import (
    NS_PER_SECOND,
    ContingencyType,
    ExecType,
    OrderSide,
    OrderType,
    RiskScope,
    TradingState,
)
from tests.unit.domain.flow import Flow
from tests.unit.domain.support import BTC, ETH, T0, D, ack, fill, order, quote, report, trade

SEC = NS_PER_SECOND


def flow(balance: Any = "1000000", *, limits: RiskLimits | None = None) -> Flow:
    f = Flow()
    f.define(BTC, ETH)
    f.deposit("ACC-1", "USDT", balance)
    f.deposit("ACC-1", "BTC", "10")
    f.market(quote("99.99", "100.01"))
    f.market(quote("99.99", "100.01", instrument=ETH.instrument_id))
    if limits is not None:
        f.risk_command(SetRiskLimits(RiskScope.GLOBAL, "", limits, "ops", T0))
    return f


def submit(f: Flow, spec: OrderSpec, ts: int = T0) -> Any:
    [decision, *_] = f.submit(SubmitOrder(spec, ts))
    return decision


def denied(f: Flow, spec: OrderSpec, ts: int = T0) -> str | None:
    d = submit(f, spec, ts)
    return d.reason if isinstance(d, OrderDenied) else None


def test_defaults_match_the_reference_gateway() -> None:
    assert DEFAULT_LIMITS.throttle_rate == 5
    assert DEFAULT_LIMITS.throttle_burst == 3
    assert DEFAULT_LIMITS.price_band == Decimal("0.01")
    assert DEFAULT_LIMITS.max_position == 250
    assert DEFAULT_LIMITS.max_order_notional == 50_000
    assert DEFAULT_LIMITS.max_open_orders == 6
    assert DEFAULT_LIMITS.circuit_breaker_breaches == 3


def test_a_clean_order_is_accepted() -> None:
    assert isinstance(submit(flow(), order()), OrderAccepted)


# Each case: limits to set (or None), the order, the reason expected. One per deny reason.
CASES: list[tuple[str, RiskLimits | None, dict[str, Any]]] = [
    ("invalid_order", None, {"qty": "-1"}),
    ("unknown_instrument", None, {"instrument": "DOGE.SIM"}),
    ("instrument_not_allowed", RiskLimits(allowed_instruments=("ETHUSDT.SIM",)), {}),
    ("order_type_not_allowed", RiskLimits(allowed_order_types=(OrderType.MARKET,)), {}),
    ("price_precision", None, {"price": "100.001"}),
    ("quantity_precision", None, {"qty": "0.0001"}),
    ("quantity_below_min", RiskLimits(min_quantity=D("0.5")), {"qty": "0.4"}),
    ("quantity_above_max", RiskLimits(max_quantity=D("5")), {"qty": "6"}),
    ("notional_below_min", None, {"qty": "0.05"}),
    ("price_band", None, {"price": "101.02"}),
    ("max_order_notional", RiskLimits(max_order_notional=D("1000")), {"qty": "11"}),
    ("max_position", RiskLimits(max_position=D("5")), {"qty": "6"}),
    ("max_gross_exposure", RiskLimits(max_gross_exposure=D("500")), {"qty": "6"}),
    ("max_net_exposure", RiskLimits(max_net_exposure=D("500")), {"qty": "6"}),
    ("reduce_only", None, {"reduce_only": True}),
]


@pytest.mark.parametrize(("reason", "limits", "kw"), CASES, ids=[c[0] for c in CASES])
def test_each_check_denies_with_its_own_reason(
    reason: str, limits: RiskLimits | None, kw: dict[str, Any]
) -> None:
    f = flow(limits=limits)
    assert denied(f, order(**kw)) == reason


def test_no_reference_price_for_a_market_order_without_market_data() -> None:
    f = Flow()
    f.define(BTC)
    f.deposit("ACC-1", "USDT", "1000")
    assert denied(f, order(OrderType.MARKET, price=None)) == "no_reference_price"


def test_insufficient_balance_counts_reservations_of_open_orders() -> None:
    f = flow(balance="250")
    assert isinstance(submit(f, order(qty="1", price="100")), OrderAccepted)
    assert isinstance(submit(f, order(qty="1", price="100"), T0 + SEC), OrderAccepted)
    assert denied(f, order(qty="1", price="100"), T0 + 2 * SEC) == "insufficient_balance"
    assert f.risk.accounts["ACC-1"].reserved("USDT") == D("200.2")  # notional plus taker fee


def test_selling_spot_needs_the_base_asset() -> None:
    f = flow()
    assert denied(f, order(side=OrderSide.SELL, qty="11")) == "insufficient_balance"
    assert isinstance(submit(f, order(side=OrderSide.SELL, qty="10")), OrderAccepted)


def test_max_open_orders() -> None:
    f = flow(limits=RiskLimits(max_open_orders=2, throttle_rate=D(1000), throttle_burst=1000))
    for i in range(2):
        assert isinstance(submit(f, order(), T0 + i), OrderAccepted)
    assert denied(f, order(), T0 + 3) == "max_open_orders"


def test_throttle_is_a_token_bucket_on_event_time() -> None:
    f = flow()  # 5 orders/s, burst 3
    results = [submit(f, order(), T0) for _ in range(4)]
    assert [type(r).__name__ for r in results] == ["OrderAccepted"] * 3 + ["OrderDenied"]
    assert results[3].reason == "throttled"
    assert denied(f, order(), T0 + SEC // 10) == "throttled"  # half a token after 100 ms
    assert isinstance(submit(f, order(), T0 + SEC // 5), OrderAccepted)  # one token after 200 ms


def test_trading_state_halted_and_reducing() -> None:
    f = flow(limits=RiskLimits(throttle_rate=D(1000), throttle_burst=1000))
    buy = order(qty="2")
    submit(f, buy)
    f.report(ack(buy))
    f.report(fill(buy, "2", "100"))
    f.risk_command(SetTradingState(RiskScope.ACCOUNT, "ACC-1", TradingState.REDUCING, "ops", T0))
    assert denied(f, order(qty="1"), T0 + 1) == "reducing_only"
    assert denied(f, order(side=OrderSide.SELL, qty="3"), T0 + 2) == "reducing_only"
    assert isinstance(submit(f, order(side=OrderSide.SELL, qty="2"), T0 + 3), OrderAccepted)
    assert (
        denied(f, order(side=OrderSide.SELL, qty="1"), T0 + 4) == "reducing_only"
    )  # open reducing order counted
    f.risk_command(SetTradingState(RiskScope.GLOBAL, "", TradingState.HALTED, "ops", T0))
    assert denied(f, order(side=OrderSide.SELL, qty="1"), T0 + 5) == "trading_halted"


def test_limits_change_at_run_time_and_scopes_override() -> None:
    f = flow()
    assert isinstance(submit(f, order(qty="3")), OrderAccepted)
    f.risk_command(SetRiskLimits(RiskScope.ACCOUNT, "ACC-1", RiskLimits(max_position=D("2")), "ops", T0))
    assert denied(f, order(qty="1"), T0 + SEC) == "max_position"
    f.risk_command(
        SetRiskLimits(RiskScope.INSTRUMENT, BTC.instrument_id, RiskLimits(max_position=D("10")), "ops", T0)
    )
    assert isinstance(submit(f, order(qty="1"), T0 + 2 * SEC), OrderAccepted)


def test_portfolio_exposure_spans_its_accounts() -> None:
    f = flow()
    f.deposit("ACC-2", "USDT", "100000")
    f.risk_command(
        SetRiskLimits(
            RiskScope.PORTFOLIO,
            "P1",
            RiskLimits(max_gross_exposure=D("1000")),
            "ops",
            T0,
            accounts=("ACC-1", "ACC-2"),
        )
    )
    assert isinstance(submit(f, order(qty="6", account="ACC-1")), OrderAccepted)
    assert denied(f, order(qty="5", account="ACC-2")) == "portfolio_gross_exposure"
    f.risk_command(
        SetRiskLimits(
            RiskScope.PORTFOLIO,
            "P1",
            RiskLimits(max_net_exposure=D("700")),
            "ops",
            T0,
            accounts=("ACC-1", "ACC-2"),
        )
    )
    assert denied(f, order(qty="2", account="ACC-2"), T0 + 1) == "portfolio_net_exposure"
    assert isinstance(submit(f, order(side=OrderSide.SELL, qty="2", account="ACC-1"), T0 + 2), OrderAccepted)


def test_kill_switch_trips_denies_cancels_and_resets() -> None:
    f = flow()
    live = order()
    submit(f, live)
    f.report(ack(live))
    f.risk_command(TripKillSwitch(RiskScope.ACCOUNT, "ACC-1", "manual", "alice", T0))
    assert f.book.orders[live.order_id].status.value == "PENDING_CANCEL"
    assert f.venue[-1].order_id == live.order_id
    assert denied(f, order(), T0 + SEC) == "kill_switch"
    assert f.risk_command(TripKillSwitch(RiskScope.ACCOUNT, "ACC-1", "again", "alice", T0)) == []
    [reset] = f.risk_command(ResetKillSwitch(RiskScope.ACCOUNT, "ACC-1", "alice", T0))
    assert isinstance(reset, KillSwitchReset)
    assert isinstance(submit(f, order(), T0 + 2 * SEC), OrderAccepted)


def test_circuit_breaker_trips_after_three_breaches_in_the_window() -> None:
    f = flow()
    out1 = f.submit(SubmitOrder(order(price="150"), T0))
    out2 = f.submit(SubmitOrder(order(price="150"), T0 + SEC))
    assert [type(e).__name__ for e in out1 + out2] == ["OrderDenied", "OrderDenied"]
    out3 = f.submit(SubmitOrder(order(price="150"), T0 + 2 * SEC))
    assert [type(e).__name__ for e in out3] == ["OrderDenied", "KillSwitchTripped"]
    assert isinstance(out3[1], KillSwitchTripped)
    assert "circuit breaker" in out3[1].reason
    assert denied(f, order(), T0 + 3 * SEC) == "kill_switch"


def test_breaches_outside_the_window_do_not_count() -> None:
    f = flow()
    for i in range(3):
        out = f.submit(SubmitOrder(order(price="150"), T0 + i * 61 * SEC))
        assert [type(e).__name__ for e in out] == ["OrderDenied"]


def test_resubmission_is_idempotent() -> None:
    f = flow()
    spec = order()
    assert isinstance(submit(f, spec), OrderAccepted)
    assert f.submit(SubmitOrder(spec, T0 + SEC)) == []
    same_client_id = dataclasses.replace(spec, order_id="O-other")
    assert f.submit(SubmitOrder(same_client_id, T0 + SEC)) == []


def test_reservations_are_released_on_terminal_events() -> None:
    f = flow()
    a, b = order(qty="1"), order(qty="2")
    submit(f, a)
    submit(f, b, T0 + SEC)
    account = f.risk.accounts["ACC-1"]
    assert account.reserved("USDT") > 0
    f.report(ack(a))
    f.report(fill(a, "1", "100"))
    f.order_input(CancelOrder(b.order_id, "ACC-1", b.instrument_id, T0))
    assert account.reserved("USDT") > 0, "held until the venue confirms"
    f.report(report(b, ExecType.CANCELED))
    assert account.open_orders == {}
    assert account.reserved("USDT") == 0


def test_contingent_list_is_all_or_nothing_bulk_is_not() -> None:
    f = flow()
    good = order(order_id="A", contingency_type=ContingencyType.OCO, linked_order_ids=("B",))
    bad = order(order_id="B", price="150", contingency_type=ContingencyType.OCO, linked_order_ids=("A",))
    out = f.submit(SubmitOrderList("L1", "ACC-1", (good, bad), T0))
    assert [(e.order_id, e.reason) for e in out if isinstance(e, OrderDenied)] == [
        ("A", "list_denied"),
        ("B", "price_band"),
    ]
    f2 = flow()
    out = f2.submit(SubmitOrderList("L2", "ACC-1", (order(), order(price="150")), T0))
    assert [type(e).__name__ for e in out] == ["OrderAccepted", "OrderDenied"]


def test_bulk_list_respects_the_throttle_in_order() -> None:
    f = flow()
    out = f.submit(SubmitOrderList("L", "ACC-1", tuple(order() for _ in range(4)), T0))
    assert [getattr(e, "reason", "ok") for e in out][:4] == ["ok", "ok", "ok", "throttled"]


def test_every_check_is_listed_once() -> None:
    assert len(CHECKS) == len(set(CHECKS))
    reasons = {r.value for r in DenyReason}
    assert {c[0] for c in CASES} <= reasons


def test_trades_move_the_reference_price() -> None:
    f = flow()
    f.market(trade("120"))
    assert denied(f, order(price="100")) == "price_band"
    assert isinstance(submit(f, order(price="120")), OrderAccepted)
