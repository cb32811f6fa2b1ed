"""A live venue through `meltica up`, as a user connects one: credential files in the secret folder,
`meltica venues add bn binance -p account=... -p api_key_file=... -p secret_file=...` against the
protocol-true fake Binance; instruments and quotes come from the venue, an order submitted over REST
is acknowledged and filled at the venue and reaches the read models, a cancel reaches the venue, a
fill made while Meltica was down is reconciled after a restart. The secret is nowhere: not in the
event log, not in the read models, not in what the process printed."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_up import PORT, cli, start, stop
from tests.fakes.binance import FakeBinance
from tests.waiting import wait_until

SECRET = "s3cr3t-binance-hmac-key-never-logged"
API_KEY = "bn-api-key-4f1d"
IID = "BTCUSDT.BINANCE"


def api(key: str) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers={"X-API-Key": key}, timeout=30)


def order(client: httpx.Client, order_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/orders/{order_id}")
    return dict(r.json()) if r.status_code == 200 else {}


def test_a_binance_account_trades_through_meltica_up(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "bn.key").write_text(API_KEY + "\n")
    (secrets / "bn.secret").write_text(SECRET + "\n")
    with FakeBinance(api_key=API_KEY, secret=SECRET) as fake:
        fake.set_balance("USDT", "10000")
        fake.set_book("BTCUSDT", {"49000": "1"}, {"51000": "1"})
        proc = start(tmp_path)
        printed = ""
        try:
            key = cli(
                tmp_path,
                "keys",
                "create",
                "--name",
                "desk",
                "--scopes",
                "read,trade,admin",
                "--accounts",
                "ACC-1",
            ).stdout.strip()
            assert cli(tmp_path, "deposit", "ACC-1", "USDT", "10000").returncode == 0
            added = cli(
                tmp_path,
                "venues",
                "add",
                "bn",
                "binance",
                "-p",
                "symbols=BTCUSDT",
                "-p",
                "depth=false",
                "-p",
                "account=ACC-1",
                "-p",
                f"api_key_file={secrets / 'bn.key'}",
                "-p",
                f"secret_file={secrets / 'bn.secret'}",
                "-p",
                f"rest_url={fake.rest_url}",
                "-p",
                f"ws_url={fake.ws_url}",
                MELTICA_API_KEY=key,
            )
            assert added.returncode == 0, added.stderr
            with api(key) as client:
                wait_until(
                    lambda: (
                        IID
                        in {
                            i["instrument_id"]
                            for i in client.get("/v1/instruments?limit=500").json()["items"]
                        }
                    ),
                    60,
                    "Binance's instruments",
                    detail=lambda: client.get("/v1/venues/bn").text,
                )
                outside = client.post(
                    "/v1/venues",
                    json={
                        "name": "bn2",
                        "adapter": "binance",
                        "params": {
                            "symbols": "BTCUSDT",
                            "account": "ACC-1",
                            "api_key_file": "/etc/passwd",
                            "secret_file": "/etc/hostname",
                        },
                    },
                )
                assert outside.status_code == 422, outside.text
                assert "secret directories" in outside.json()["detail"]

                body = {
                    "account_id": "ACC-1",
                    "instrument_id": IID,
                    "side": "BUY",
                    "type": "LIMIT",
                    "quantity": "0.003",
                    "price": "50000",
                }
                r = client.post(
                    "/v1/orders?wait=acknowledged&timeout=10", json={**body, "client_order_id": "live-1"}
                )
                assert r.status_code == 202, r.text
                first = r.json()["order_id"]
                wait_until(
                    lambda: order(client, first).get("status") == "NEW", 30, "the venue's acknowledgement"
                )
                [resting] = fake.open_orders()
                fake.fill_order(resting.order_id, "0.001")
                wait_until(
                    lambda: order(client, first).get("status") == "PARTIALLY_FILLED", 30, "a partial fill"
                )
                fake.fill_order(resting.order_id)
                wait_until(lambda: order(client, first).get("status") == "FILLED", 30, "the fill")

                r = client.post(
                    "/v1/orders?wait=acknowledged&timeout=10", json={**body, "client_order_id": "live-2"}
                )
                second = r.json()["order_id"]
                wait_until(
                    lambda: order(client, second).get("status") == "NEW", 30, "the second order resting"
                )
                assert client.delete(f"/v1/orders/{second}").status_code == 202
                wait_until(
                    lambda: order(client, second).get("status") == "CANCELED", 30, "the cancel at the venue"
                )
                assert fake.open_orders() == []

                r = client.post(
                    "/v1/orders?wait=acknowledged&timeout=10", json={**body, "client_order_id": "live-3"}
                )
                third = r.json()["order_id"]
                wait_until(lambda: order(client, third).get("status") == "NEW", 30, "the third order resting")
            printed += stop(proc)
            [resting] = fake.open_orders()
            fake.fill_order(resting.order_id)  # while Meltica is down
            proc = start(tmp_path)
            with api(key) as client:
                wait_until(lambda: order(client, third).get("status") == "FILLED", 60, "the reconciled fill")
                fills = [
                    e
                    for e in client.get(f"/v1/orders/{third}/events").json()["items"]
                    if e["type"] == "OrderFilled"
                ]
                assert len(fills) == 1
                balances = {
                    b["asset"]: b
                    for b in client.get("/v1/balances", params={"account_id": "ACC-1"}).json()["items"]
                }
                # two orders of 0.003 filled, the venue's 0.1 % commission taken in BTC, no fill doubled
                assert Decimal(balances["BTC"]["total"]) == fake.balance("BTC")[0] == Decimal("0.005994")
        finally:
            printed += stop(proc)
    assert SECRET not in printed
    assert SECRET.encode() not in (tmp_path / "log.db").read_bytes()
    for wal in tmp_path.glob("log.db*"):
        assert SECRET.encode() not in wal.read_bytes()
    read_models = [p for p in tmp_path.glob("*.db") if p.name != "log.db"]
    assert read_models, "the read models' database"
    for db in read_models:
        dump = "\n".join(sqlite3.connect(db).iterdump())
        assert SECRET not in dump
        assert API_KEY not in dump
    assert json.dumps(printed).count(API_KEY) == 0
