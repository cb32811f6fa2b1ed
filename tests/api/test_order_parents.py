"""Parents and children in the read side: every order names its parent, an order lists its
children, and `?parent_order_id=` (and the CLI's `--parent`) lists them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from meltica.cli import rest, trading
from meltica.cli.app import app as cli
from tests.api.conftest import Api


def get(api: Api, path: str) -> Any:
    r = api.client.get(path, headers=api.auth())
    assert r.status_code == 200, r.text
    return r.json()


def bracket(api: Api) -> tuple[str, str, str]:
    """A resting entry (the parent) with a take-profit and a stop-loss (its OTO children), projected."""
    entry = api.order(client_order_id="p-entry", price="99.50")
    tp = api.order(client_order_id="p-tp", side="SELL", price="100.40")
    sl = api.order(client_order_id="p-sl", side="SELL", type="STOP_MARKET", trigger_price="99.10")
    del sl["price"]
    r = api.client.post(
        "/v1/orders/bulk", json={"orders": [entry, tp, sl], "contingency": "BRACKET"}, headers=api.auth()
    )
    assert r.status_code == 202, r.text
    e_id, tp_id, sl_id = r.json()["order_ids"]
    for oid in (e_id, tp_id, sl_id):
        api.until(lambda oid=oid: api.client.get(f"/v1/orders/{oid}", headers=api.auth()).status_code == 200)
    return e_id, tp_id, sl_id


def test_children_name_their_parent_and_the_parent_lists_them(api: Api) -> None:
    plain = api.client.post("/v1/orders", json=api.order(price="99.40"), headers=api.auth()).json()[
        "order_id"
    ]
    e_id, tp_id, sl_id = bracket(api)
    api.until(lambda: api.client.get(f"/v1/orders/{plain}", headers=api.auth()).status_code == 200)

    assert get(api, f"/v1/orders/{tp_id}")["parent_order_id"] == e_id
    assert get(api, f"/v1/orders/{sl_id}")["parent_order_id"] == e_id
    parent = get(api, f"/v1/orders/{e_id}")
    assert parent["parent_order_id"] is None
    assert sorted(parent["child_order_ids"]) == sorted([tp_id, sl_id])
    assert get(api, f"/v1/orders/{plain}")["child_order_ids"] == []
    assert get(api, f"/v1/orders/{tp_id}")["child_order_ids"] == []

    children = get(api, f"/v1/orders?parent_order_id={e_id}")["items"]
    # the filter lists them in the order the parent does (by creation)
    assert [o["order_id"] for o in children] == parent["child_order_ids"]
    assert {o["parent_order_id"] for o in children} == {e_id}
    everything = {o["order_id"]: o for o in get(api, "/v1/orders")["items"]}
    assert {oid: o["parent_order_id"] for oid, o in everything.items()} == {
        plain: None,
        e_id: None,
        tp_id: e_id,
        sl_id: e_id,
    }
    assert get(api, f"/v1/orders?parent_order_id={plain}")["items"] == []

    paged = get(api, f"/v1/orders?parent_order_id={e_id}&limit=1")
    assert [o["order_id"] for o in paged["items"]] == parent["child_order_ids"][:1]
    rest_of = get(api, f"/v1/orders?parent_order_id={e_id}&limit=1&cursor={paged['next_cursor']}")
    assert [o["order_id"] for o in rest_of["items"]] == parent["child_order_ids"][1:]


def test_a_parent_id_longer_than_an_id_is_a_validation_problem(api: Api) -> None:
    r = api.client.get(f"/v1/orders?parent_order_id={'x' * 129}", headers=api.auth())
    assert (r.status_code, r.json()["type"]) == (422, "urn:meltica:problem:validation")


def test_the_cli_lists_an_orders_children(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def call(method: str, path: str, *, body: Any = None, params: Any = None) -> Any:
        r = api.client.request(method, path, json=body, params=params, headers=api.auth())
        assert r.status_code < 400, r.text
        return r.json()

    monkeypatch.setattr(rest, "call", call)
    monkeypatch.setattr(trading, "call", call)
    e_id, tp_id, sl_id = bracket(api)
    runner = CliRunner()
    listed = runner.invoke(cli, ["orders", "list", "--parent", e_id, "--json"])
    assert listed.exit_code == 0, listed.output
    assert sorted(o["order_id"] for o in json.loads(listed.stdout)) == sorted([tp_id, sl_id])
    shown = runner.invoke(cli, ["orders", "show", e_id])
    assert shown.exit_code == 0, shown.output
    children = get(api, f"/v1/orders/{e_id}")["child_order_ids"]
    assert sorted(children) == sorted([tp_id, sl_id])
    assert f"children: {', '.join(children)}" in shown.stdout
