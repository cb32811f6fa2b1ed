"""Trailing stops and icebergs over the API, through risk, the order book and the simulated venue."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from meltica.cli import trading
from meltica.cli.app import app as cli
from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.topics import QUOTES, TRADES
from tests.api.conftest import Api
from tests.e2e.stack import BTC

INST = BTC.instrument_id


def quote(api: Api, bid: str, ask: str) -> None:
    api.publisher.publish(
        QUOTES, QuoteTick(INST, Decimal(bid), Decimal(10), Decimal(ask), Decimal(10), time.time_ns())
    )


def sell_print(api: Api, price: str, qty: str) -> None:
    trade = TradeTick(
        INST, Decimal(price), Decimal(qty), AggressorSide.SELLER, f"x-{time.time_ns()}", time.time_ns()
    )
    api.publisher.publish(TRADES, trade)


def submit(api: Api, wait: str = "accepted", **kw: Any) -> str:
    r = api.client.post(f"/v1/orders?wait={wait}", json=api.order(**kw), headers=api.auth())
    assert r.status_code == 202, r.text
    return str(r.json()["order_id"])


def events(api: Api, order_id: str) -> list[dict[str, Any]]:
    found = api.client.get(f"/v1/orders/{order_id}/events", headers=api.auth()).json()
    items = found.get("items", [])  # (404 until projected: a wait answers from the committed events)
    return [{"type": e["type"], **json.loads(e["payload"])} for e in items]


def triggers(api: Api, order_id: str) -> list[str]:
    return [e["trigger_price"] for e in events(api, order_id) if e["type"] == "OrderTriggerUpdated"]


def status(api: Api, order_id: str) -> str:
    return str(api.client.get(f"/v1/orders/{order_id}", headers=api.auth()).json()["status"])


def test_a_trailing_stop_in_price_follows_the_market_up_and_sells_the_pullback(api: Api) -> None:
    order_id = submit(api, side="SELL", type="TRAILING_STOP_MARKET", price=None, trailing_offset="0.50")
    quote(api, "100.40", "100.42")
    api.until(lambda: triggers(api, order_id) == ["99.90"])
    quote(api, "100.80", "100.82")
    api.until(lambda: triggers(api, order_id) == ["99.90", "100.30"])
    quote(api, "100.60", "100.62")  # a pullback that stays above the trigger
    quote(api, "100.30", "100.32")  # reaches it: the stop sells at the market
    api.until(lambda: status(api, order_id) == "FILLED")
    kinds = [e["type"] for e in events(api, order_id)]
    assert kinds == [
        "OrderAccepted",
        "OrderTriggerUpdated",
        "OrderTriggerUpdated",
        "OrderTriggered",
        "OrderSubmitted",
        "OrderAcknowledged",
        "OrderFilled",
    ]
    order = api.client.get(f"/v1/orders/{order_id}", headers=api.auth()).json()
    assert (order["filled_qty"], order["avg_px"]) == ("1", "100.3")


def test_a_trailing_stop_in_basis_points_buys_the_bounce(api: Api) -> None:
    order_id = submit(
        api,
        side="BUY",
        type="TRAILING_STOP_MARKET",
        price=None,
        trailing_offset="50",
        trailing_offset_type="BASIS_POINTS",
    )
    quote(api, "99.00", "99.20")
    api.until(lambda: triggers(api, order_id) == ["99.69600"])  # ask + 0.5%
    quote(api, "99.60", "99.70")
    api.until(lambda: status(api, order_id) == "FILLED")
    [fill] = api.client.get(f"/v1/fills?order_id={order_id}", headers=api.auth()).json()["items"]
    assert (fill["side"], fill["price"]) == ("BUY", "99.7")


def test_an_activation_price_holds_the_trail_until_the_market_reaches_it(api: Api) -> None:
    order_id = submit(
        api,
        side="SELL",
        type="TRAILING_STOP_MARKET",
        price=None,
        trailing_offset="0.20",
        activation_price="100.50",
    )
    quote(
        api, "100.30", "100.32"
    )  # below the activation price: a trail from here would put the trigger at 100.10
    quote(api, "100.60", "100.62")
    api.until(lambda: triggers(api, order_id) != [])
    assert triggers(api, order_id) == ["100.40"], "the trail started at the activation, not before"
    accepted = events(api, order_id)[0]
    assert accepted["order"]["activation_price"] == "100.50"
    quote(api, "100.40", "100.42")
    api.until(lambda: status(api, order_id) == "FILLED")


def test_an_activation_price_the_market_has_reached_is_denied(api: Api) -> None:
    r = api.client.post(
        "/v1/orders?wait=accepted&timeout=10",
        json=api.order(
            side="SELL",
            type="TRAILING_STOP_MARKET",
            price=None,
            trailing_offset="0.2",
            activation_price="99.90",
        ),
        headers=api.auth(),
    )
    assert (r.status_code, r.json()["detail"]) == (422, "activation_price_reached")


def test_an_iceberg_shows_a_slice_requeues_it_and_fills_over_several(api: Api) -> None:
    iceberg = submit(
        api, wait="acknowledged", price="99.50", quantity="2", display_quantity="1", client_order_id="ice"
    )
    late = submit(api, wait="acknowledged", price="99.50", quantity="1")
    sell_print(api, "99.50", "1")  # the first slice was first in the queue
    api.until(lambda: status(api, iceberg) == "PARTIALLY_FILLED")
    sell_print(api, "99.50", "1")  # the refreshed slice waits behind the order placed before it
    api.until(lambda: status(api, late) == "FILLED")
    assert status(api, iceberg) == "PARTIALLY_FILLED"
    sell_print(api, "99.50", "1")
    api.until(lambda: status(api, iceberg) == "FILLED")
    fills = [e for e in events(api, iceberg) if e["type"] in ("OrderPartiallyFilled", "OrderFilled")]
    assert [(e["cum_qty"], e["leaves_qty"]) for e in fills] == [("1", "1"), ("2", "0")]
    api.until(
        lambda: api.client.get("/v1/positions?account_id=ACC-1", headers=api.auth()).json()["items"] != []
    )
    api.until(
        lambda: (
            api.client.get("/v1/positions?account_id=ACC-1", headers=api.auth()).json()["items"][0][
                "quantity"
            ]
            == "3"
        )
    )
    again = api.client.post(
        "/v1/orders",
        json=api.order(price="99.50", quantity="2", display_quantity="0.5", client_order_id="ice"),
        headers=api.auth(),
    )
    assert again.status_code == 409
    assert "display_quantity" in again.json()["fields"]


def test_bulk_takes_trailing_stops_and_icebergs(api: Api) -> None:
    body = {
        "orders": [
            api.order(price="99.50", quantity="3", display_quantity="1"),
            api.order(
                side="SELL",
                type="TRAILING_STOP_LIMIT",
                price=None,
                trailing_offset="10",
                trailing_offset_type="BASIS_POINTS",
                limit_offset="0.05",
            ),
        ]
    }
    r = api.client.post("/v1/orders/bulk", json=body, headers=api.auth())
    assert r.status_code == 202, r.text
    ice, trail = r.json()["order_ids"]
    api.until(lambda: status(api, ice) == "NEW" and status(api, trail) == "ACCEPTED")
    spec = events(api, trail)[0]["order"]
    assert (spec["trailing_offset"], spec["trailing_offset_type"], spec["limit_offset"]) == (
        "10",
        "BASIS_POINTS",
        "0.05",
    )
    bad = {"orders": [api.order(client_order_id="b-1", quantity="3", display_quantity="0.0005")]}
    r = api.client.post("/v1/orders/bulk", json=bad, headers=api.auth())
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "b-1: display_quantity 0.0005 is not a multiple of the lot size 0.001",
    )
    bad = {"orders": [api.order(quantity="3", display_quantity="3")]}
    r = api.client.post("/v1/orders/bulk", json=bad, headers=api.auth())
    assert r.status_code == 422
    assert "display_quantity must be below the quantity" in r.text


TRAIL = {"side": "SELL", "type": "TRAILING_STOP_MARKET", "price": None}
BAD: list[tuple[dict[str, Any], str]] = [
    ({**TRAIL}, "trailing-stop order needs a positive trailing_offset"),
    ({**TRAIL, "trailing_offset": "0"}, "trailing_offset"),
    ({**TRAIL, "trailing_offset": "-1"}, "trailing_offset"),
    (
        {**TRAIL, "trailing_offset": "10000", "trailing_offset_type": "BASIS_POINTS"},
        "basis points must be below 10000",
    ),
    ({**TRAIL, "trailing_offset": "1", "trailing_offset_type": "PERCENT"}, "trailing_offset_type"),
    ({**TRAIL, "trailing_offset": "1", "activation_price": "0"}, "activation_price"),
    (
        {**TRAIL, "trailing_offset": "1", "activation_price": "101", "trigger_price": "99"},
        "give no trigger_price",
    ),
    ({**TRAIL, "type": "TRAILING_STOP_LIMIT", "trailing_offset": "1"}, "needs a limit_offset"),
    ({"trailing_offset": "1"}, "trailing_offset and limit_offset apply to trailing-stop orders"),
    ({"activation_price": "101"}, "activation_price applies to trailing-stop orders"),
    ({"quantity": "2", "display_quantity": "2"}, "display_quantity must be below the quantity"),
    ({"quantity": "2", "display_quantity": "0"}, "display_quantity"),
    (
        {"quantity": "2", "display_quantity": "0.0005"},
        "display_quantity 0.0005 is not a multiple of the lot size 0.001",
    ),
    (
        {"quantity": "2", "display_quantity": "1", "time_in_force": "IOC"},
        "an iceberg rests: it cannot be IOC or FOK",
    ),
    (
        {"type": "MARKET", "price": None, "quantity": "2", "display_quantity": "1"},
        "applies to orders with a limit price",
    ),
]


def test_bad_values_are_422_with_a_clear_detail(api: Api) -> None:
    for kw, says in BAD:  # one stack for every case
        body = {k: v for k, v in api.order(**kw).items() if v is not None}
        r = api.client.post("/v1/orders", json=body, headers=api.auth())
        assert r.status_code == 422, (kw, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert says in r.text, (kw, r.text)


def test_the_cli_submits_trailing_stops_and_icebergs(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []

    def call(method: str, path: str, *, body: Any = None, params: Any = None) -> Any:
        asked.append(params)
        r = api.client.request(method, path, json=body, params=params, headers=api.auth())
        assert r.status_code < 400, r.text
        return r.json()

    monkeypatch.setattr(trading, "call", call)
    runner = CliRunner()
    base = [
        "orders",
        "submit",
        "--instrument",
        INST,
        "--account",
        "ACC-1",
        "--json",
        "--wait",
        "accepted",
        "--wait-timeout",
        "10",
    ]
    sell_trail = [*base, "--side", "sell", "--quantity", "1", "--type", "trailing_stop_market"]
    done = runner.invoke(cli, [*sell_trail, "--trailing-bps", "25", "--activation-price", "100.50"])
    assert done.exit_code == 0, done.output
    trail = json.loads(done.stdout)["order_id"]
    api.until(lambda: events(api, trail))  # (an answered wait does not wait for the read models)
    spec = events(api, trail)[0]["order"]
    assert (spec["trailing_offset"], spec["trailing_offset_type"], spec["activation_price"]) == (
        "25",
        "BASIS_POINTS",
        "100.50",
    )
    done = runner.invoke(
        cli, [*base, "--side", "buy", "--quantity", "3", "--price", "99.50", "--display-quantity", "1"]
    )
    assert done.exit_code == 0, done.output
    assert events(api, json.loads(done.stdout)["order_id"])[0]["order"]["display_quantity"] == "1"
    both = runner.invoke(cli, [*sell_trail, "--trailing-bps", "25", "--trailing-offset", "1"])
    assert both.exit_code != 0
    assert "not both" in both.output
    assert asked[-1] == {"wait": "accepted", "timeout": 10.0}  # --wait-timeout is the API's timeout
    unwaited = [a for a in base if a not in ("--wait", "accepted")]
    alone = runner.invoke(cli, [*unwaited, "--side", "buy", "--quantity", "1", "--price", "99"])
    assert alone.exit_code != 0
    assert "--wait-timeout goes with --wait" in alone.output
