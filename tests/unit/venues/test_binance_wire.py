"""Binance's JSON as the port's values and Meltica's orders as Binance's parameters."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import LiquiditySide, OrderSide, OrderType, TimeInForce
from meltica.venues.binance import wire
from meltica.venues.port import VenueRejectedError

RECORDED = Path(__file__).resolve().parents[2] / "data" / "binance" / "spot"


def recorded(kind: str, name: str) -> Any:
    return json.loads((RECORDED / kind / f"{name}.json").read_text())


def spec(order_type: OrderType = OrderType.LIMIT, **kw: Any) -> OrderSpec:
    values: dict[str, Any] = {
        "order_id": "o-1",
        "client_order_id": "c-1",
        "account_id": "a",
        "instrument_id": "BTCUSDT.BINANCE",
        "side": OrderSide.SELL,
        "order_type": order_type,
        "quantity": Decimal("0.00100"),
        "price": None if order_type is OrderType.MARKET else Decimal("50000.0"),
    }
    return OrderSpec(**(values | kw))


def test_decimals_lose_binance_padding_and_travel_plain() -> None:
    assert [wire.dec(v) for v in ("0.00300000", "50000.00000000", "0")] == [
        Decimal("0.003"),
        Decimal(50000),
        Decimal(0),
    ]
    assert str(wire.dec("50000.00000000")) == "50000"
    assert [wire.text(Decimal(v)) for v in ("5E+4", "0.00100", "1e-8")] == ["50000", "0.001", "0.00000001"]


def test_order_params_for_each_kind() -> None:
    base = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": "0.001",
        "newClientOrderId": "o-1",
        "newOrderRespType": "RESULT",
    }
    assert wire.order_params(spec(), "BTCUSDT", "o-1") == base | {
        "type": "LIMIT",
        "timeInForce": "GTC",
        "price": "50000",
    }
    assert wire.order_params(spec(time_in_force=TimeInForce.IOC), "BTCUSDT", "o-1")["timeInForce"] == "IOC"
    assert wire.order_params(spec(post_only=True), "BTCUSDT", "o-1") == base | {
        "type": "LIMIT_MAKER",
        "price": "50000",
    }
    assert wire.order_params(spec(OrderType.MARKET), "BTCUSDT", "o-1") == base | {"type": "MARKET"}
    replace = wire.replace_params(spec(), "BTCUSDT", "o-1", "o-1:1", Decimal("0.002"), Decimal("49000"))
    assert {
        k: replace[k]
        for k in ("quantity", "price", "cancelReplaceMode", "cancelOrigClientOrderId", "newClientOrderId")
    } == {
        "quantity": "0.002",
        "price": "49000",
        "cancelReplaceMode": "STOP_ON_FAILURE",
        "cancelOrigClientOrderId": "o-1",
        "newClientOrderId": "o-1:1",
    }


@pytest.mark.parametrize(
    "refused",
    [
        spec(time_in_force=TimeInForce.GTD, expire_time_ns=1),
        spec(time_in_force=TimeInForce.DAY),
        spec(OrderType.STOP_MARKET, price=None, trigger_price=Decimal(1)),
        spec(display_quantity=Decimal("0.0005")),
    ],
)
def test_orders_binance_spot_cannot_take_are_refused(refused: OrderSpec) -> None:
    with pytest.raises(VenueRejectedError) as rejected:
        wire.order_params(refused, "BTCUSDT", "o-1")
    assert rejected.value.reason == "venue_rejected"


def test_a_replaced_chain_reports_as_one_order() -> None:
    event = recorded("user_data_json", "execution_report_trade")
    event = event.get("event", event)
    first = wire.order_of_report(event, "ETHBTC.BINANCE", "o-1", wire.Chain())
    chained = wire.order_of_report(event, "ETHBTC.BINANCE", "o-1", wire.Chain(2, Decimal(1), Decimal("0.1")))
    assert chained.quantity == first.quantity + 1
    assert chained.filled_qty == first.filled_qty + 1
    assert chained.avg_px == (wire.dec(event["Z"]) + Decimal("0.1")) / (wire.dec(event["z"]) + 1)
    trade = wire.trade_of_report(event, "ETHBTC.BINANCE", "o-1")
    assert (trade.trade_id, trade.quantity, trade.price) == (
        str(event["t"]),
        wire.dec(event["l"]),
        wire.dec(event["L"]),
    )
    assert trade.liquidity is (LiquiditySide.MAKER if event["m"] else LiquiditySide.TAKER)
    assert trade.ts == event["T"] * 1_000_000


def test_a_cancel_report_names_the_canceled_order() -> None:
    event = recorded("user_data_json", "execution_report_canceled")
    event = event.get("event", event)
    assert wire.report_client_id(event) == "x-TD67BGP9-T0000000000000"  # recorded with an empty C
    assert wire.order_of_report(event, "X.BINANCE", "o-1", wire.Chain()).status is OrderStatus.CANCELED
    assert wire.report_client_id({"c": "cancel-7", "C": "mine"}) == "mine"  # a cancel's own id is c


def test_chain_then_carries_the_replaced_order_fills() -> None:
    chain = wire.Chain().then({"executedQty": "0.00100000", "cummulativeQuoteQty": "40.00000000"}, 1)
    assert chain == wire.Chain(1, Decimal("0.001"), Decimal(40))


def test_instrument_from_symbol_filters() -> None:
    info = {
        "symbol": "ETHBTC",
        "baseAsset": "ETH",
        "quoteAsset": "BTC",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.00001000",
                "maxPrice": "1000.0",
                "tickSize": "0.00001000",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00010000",
                "maxQty": "100000.00000000",
                "stepSize": "0.00010000",
            },
            {"filterType": "MIN_NOTIONAL", "minNotional": "0.00010000"},
        ],
    }
    inst = wire.instrument_of(info, "BINANCE", Decimal("0.001"), Decimal("0.002"))
    assert (inst.instrument_id, inst.price_increment, inst.price_precision) == (
        "ETHBTC.BINANCE",
        Decimal("0.00001"),
        5,
    )
    assert (inst.size_increment, inst.size_precision, inst.min_quantity, inst.max_quantity) == (
        Decimal("0.0001"),
        4,
        Decimal("0.0001"),
        Decimal(100000),
    )
    assert (inst.min_notional, inst.maker_fee, inst.taker_fee) == (
        Decimal("0.0001"),
        Decimal("0.001"),
        Decimal("0.002"),
    )
    bare = wire.instrument_of(
        recorded("http_json", "exchange_info_response")["symbols"][0], "BINANCE", Decimal(0), Decimal(0)
    )
    assert (bare.price_increment, bare.size_increment, bare.min_notional) == (
        Decimal("1E-8"),
        Decimal("1E-8"),
        None,
    )


def test_balances_skip_empty_assets() -> None:
    account = recorded("http_json", "account_response")
    balances = wire.balances_of(account["balances"], "asset", "free", "locked")
    assert all(b.free or b.locked for b in balances)
    assert len(balances) == sum(1 for b in account["balances"] if Decimal(b["free"]) or Decimal(b["locked"]))
