"""Smart order routing as a user sets it up: `meltica up` with a configuration file naming two
simulated venues, each fed by its own synthetic connection, and the symbol defined at SOR. An order
at `BTCUSDT.SOR` submitted over REST is worked as child orders at the two venues; the parent and
its children agree in the read models, and positions are the children's."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_up import PORT, cli
from tests.e2e.up_process import meltica_up
from tests.waiting import wait_until

CONFIG = """
sim_venues: [SIMA, SIMB]
instruments:
  - {symbol: BTCUSDT, venue: SIMA, base_currency: BTC, quote_currency: USDT,
     price_increment: "0.01", size_increment: "0.0001", taker_fee: "0.001"}
  - {symbol: BTCUSDT, venue: SIMB, base_currency: BTC, quote_currency: USDT,
     price_increment: "0.01", size_increment: "0.0001"}
  - {symbol: BTCUSDT, venue: SOR, base_currency: BTC, quote_currency: USDT,
     price_increment: "0.01", size_increment: "0.0001"}
venues:
  - {name: feed-a, adapter: synthetic, params: {seed: 1, tick_ms: 50, venue: SIMA, instruments: BTCUSDT}}
  - {name: feed-b, adapter: synthetic, params: {seed: 2, tick_ms: 50, venue: SIMB, instruments: BTCUSDT}}
"""


def test_a_routed_order_over_rest_fills_at_both_venues_and_the_read_models_agree(tmp_path: Path) -> None:
    config = tmp_path / "meltica.yaml"
    config.write_text(CONFIG)
    with meltica_up(tmp_path, PORT, MELTICA_CONFIG_PATH=str(config)):
        env = {"MELTICA_CONFIG_PATH": str(config)}
        key = cli(tmp_path, "keys", "create", "--name", "sor", "--accounts", "ACC-1", **env).stdout.strip()
        assert cli(tmp_path, "deposit", "ACC-1", "USDT", "10000000", **env).returncode == 0
        http = httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers={"X-API-Key": key}, timeout=30)

        def live() -> bool:
            items = http.get("/v1/venues").json()["items"]
            return sorted(v["venue"] for v in items if v["state"] == "LIVE" and v["published"] > 20) == [
                "feed-a",
                "feed-b",
            ]

        wait_until(live, 60, "both synthetic feeds live and publishing")
        wait_until(lambda: http.get("/v1/balances").json()["items"] != [], 30, "the deposit")
        # a market order larger than either venue's top of book (0.1 to 1 BTC): both are taken from
        body = {"account_id": "ACC-1", "instrument_id": "BTCUSDT.SOR", "side": "BUY", "type": "MARKET"}
        placed = http.post("/v1/orders?wait=acknowledged&timeout=10", json=body | {"quantity": "1"})
        assert placed.status_code == 202, placed.text
        parent_id = placed.json()["order_id"]

        def ended() -> dict[str, Any] | None:
            parent = http.get(f"/v1/orders/{parent_id}").json()
            kids = http.get("/v1/orders", params={"parent_order_id": parent_id}).json()["items"]
            done = parent["status"] in ("FILLED", "CANCELED") and kids
            settled = all(k["status"] in ("FILLED", "CANCELED", "REJECTED", "DENIED") for k in kids)
            return {"parent": parent, "children": kids} if done and settled else None

        wait_until(lambda: ended() is not None, 30, "the routed order and its children settled")
        state = ended()
        assert state is not None
        parent, kids = state["parent"], state["children"]
        assert {k["instrument_id"] for k in kids} == {"BTCUSDT.SIMA", "BTCUSDT.SIMB"}
        assert sorted(parent["child_order_ids"]) == sorted(k["order_id"] for k in kids)
        assert all(k["parent_order_id"] == parent_id for k in kids)
        filled = sum((Decimal(k["filled_qty"]) for k in kids), Decimal(0))
        assert Decimal(parent["filled_qty"]) == filled > 0
        notional = sum((Decimal(k["filled_qty"]) * Decimal(k["avg_px"] or 0) for k in kids), Decimal(0))
        assert Decimal(parent["avg_px"]) == notional / filled

        def positions() -> dict[str, Decimal]:
            items = http.get("/v1/positions").json()["items"]
            return {p["instrument_id"]: Decimal(p["quantity"]) for p in items}

        wait_until(lambda: sum(positions().values(), Decimal(0)) == filled, 30, "positions projected")
        assert "BTCUSDT.SOR" not in positions()
        # the trades are the children's, listed once: the parent's fills only mirror them
        assert http.get("/v1/fills", params={"order_id": parent_id}).json()["items"] == []
        kid_fills = http.get("/v1/fills", params={"order_id": kids[0]["order_id"]}).json()["items"]
        assert sum((Decimal(f["quantity"]) for f in kid_fills), Decimal(0)) == Decimal(kids[0]["filled_qty"])
