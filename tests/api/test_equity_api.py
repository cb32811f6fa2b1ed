"""`GET /v1/equity`: the accounts' equity history from the read model, the latest points oldest first,
only the accounts a key may read, and problem+json for a window that ends before it starts."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import insert

from meltica.api.keys import create_key
from meltica.projections import tables as t
from tests.api.conftest import Api

T0 = 1_700_000_000 * 10**9


def points(api: Api) -> None:
    rows = [
        {
            "account_id": account,
            "currency": "USDT",
            "ts_event": T0 + i,
            "equity": Decimal(1000 + i) / 3 if account == "ACC-1" else Decimal(5),
        }
        for account in ("ACC-1", "ACC-2")
        for i in range(5)
    ]
    with api.db.begin() as conn:
        conn.execute(insert(t.equity), rows)


def test_the_latest_points_oldest_first_exact(api: Api) -> None:
    points(api)
    r = api.client.get("/v1/equity?account_id=ACC-1&limit=3", headers=api.auth())
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["ts_event"] for i in items] == [T0 + 2, T0 + 3, T0 + 4]
    assert items[-1]["equity"] == str(Decimal(1004) / 3)
    window = api.client.get(f"/v1/equity?account_id=ACC-1&start={T0 + 1}&end={T0 + 3}", headers=api.auth())
    assert [i["ts_event"] for i in window.json()["items"]] == [T0 + 1, T0 + 2]


def test_a_key_sees_only_its_accounts(api: Api) -> None:
    points(api)
    bound = {"X-API-Key": create_key(api.db, "one", ["read"], accounts=["ACC-2"])}
    items = api.client.get("/v1/equity", headers=bound).json()["items"]
    assert {i["account_id"] for i in items} == {"ACC-2"}
    assert api.client.get("/v1/equity").status_code == 401


def test_bad_windows_and_limits_are_problems(api: Api) -> None:
    for query in (f"start={T0 + 5}&end={T0}", "limit=0", "limit=5001", "start=-1", "end=x"):
        r = api.client.get(f"/v1/equity?{query}", headers=api.auth())
        assert r.status_code == 422, (query, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), query
