"""`GET /v1/bars` and `/v1/bars/widths`: closed bars of the read model as exact decimal text, by
instrument, width, source and open time; bad parameters are 422 problem+json; a read key is needed."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from meltica.api.app import Services, create_app
from meltica.api.keys import create_key
from meltica.domain.marketdata import Bar
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.projections import migrations
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.topics import BARS, topic_specs

IID = "BTCUSDT.SIM"
MIN = 60 * 10**9
T0 = 1_700_000_040 * 10**9


def bar(spec: str, i: int, close: str = "100.000000000000000001", width: int = MIN) -> Bar:
    d = Decimal(i)
    return Bar(
        IID,
        spec,
        100 + d,
        101 + d,
        99 + d,
        Decimal(close) + d,
        Decimal("0.5"),
        T0 + i * width,
        T0 + (i + 1) * width,
    )


class Bars:
    def __init__(self, tmp_path: Path, widths: tuple[str, ...] | None) -> None:
        log = MemoryLog()
        for spec in topic_specs(1):
            log.create_topic(spec)
        tmp_path.mkdir(exist_ok=True)
        url = f"sqlite:///{tmp_path / 'rm.db'}"
        migrations.upgrade(url)
        self.db = create_engine(url)
        publisher = Publisher(log, Codec())
        for i in range(5):
            publisher.publish(BARS, bar("1-MINUTE-LAST", i))
            publisher.publish(BARS, bar("1-MINUTE-MID", i, close="7"))
        publisher.publish(BARS, bar("5-MINUTE-MID", 0, width=5 * MIN))
        publisher.publish(BARS, bar("15-SECOND-LAST", 0, width=MIN // 4))
        Projector(log, publisher.codec, self.db).catch_up()
        self.client = TestClient(create_app(Services(log, publisher, self.db, bar_widths=widths)))
        self.read = {"X-API-Key": create_key(self.db, "viewer", ["read"])}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.read)


@pytest.fixture
def bars(tmp_path: Path) -> Iterator[Bars]:
    b = Bars(tmp_path, ("5m", "1m"))
    yield b
    b.db.dispose()


def test_bars_of_a_width_oldest_first_as_exact_text(bars: Bars) -> None:
    got = bars.get("/v1/bars", instrument_id=IID, width="1m")
    assert got.status_code == 200
    items = got.json()["items"]
    assert [b["ts_open"] for b in items] == [T0 + i * MIN for i in range(5)]
    assert {b["source"] for b in items} == {"LAST"}  # trades before quote mids
    assert items[0] == {
        "instrument_id": IID,
        "width": "1m",
        "source": "LAST",
        "ts_open": T0,
        "ts_close": T0 + MIN,
        "open": "100",
        "high": "101",
        "low": "99",
        "close": "100.000000000000000001",
        "volume": "0.5",
    }
    mid = bars.get("/v1/bars", instrument_id=IID, width="1m", source="MID").json()["items"]
    assert [b["close"] for b in mid] == ["7", "8", "9", "10", "11"]
    only_mid = bars.get("/v1/bars", instrument_id=IID, width="5m").json()["items"]
    assert [(b["source"], b["width"]) for b in only_mid] == [("MID", "5m")]


def test_a_range_pages_and_the_latest(bars: Bars) -> None:
    ranged = bars.get("/v1/bars", instrument_id=IID, start=T0 + MIN, end=T0 + 4 * MIN).json()["items"]
    assert [b["ts_open"] for b in ranged] == [T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN]
    first = bars.get("/v1/bars", instrument_id=IID, limit=2).json()
    second = bars.get("/v1/bars", instrument_id=IID, limit=2, cursor=first["next_cursor"]).json()
    assert [b["ts_open"] for b in first["items"] + second["items"]] == [T0 + i * MIN for i in range(4)]
    latest = bars.get("/v1/bars", instrument_id=IID, limit=2, latest="true").json()
    assert [b["ts_open"] for b in latest["items"]] == [T0 + 3 * MIN, T0 + 4 * MIN]
    assert latest["next_cursor"] is None
    assert bars.get("/v1/bars", instrument_id="ETHUSDT.SIM").json()["items"] == []


def test_widths_configured_and_stored(bars: Bars, tmp_path: Path) -> None:
    got = bars.get("/v1/bars/widths", instrument_id=IID).json()
    assert got == {
        "configured": ["1m", "5m"],
        "series": [
            {"width": "15s", "source": "LAST"},
            {"width": "1m", "source": "LAST"},
            {"width": "1m", "source": "MID"},
            {"width": "5m", "source": "MID"},
        ],
    }
    assert bars.get("/v1/bars/widths", instrument_id="ETHUSDT.SIM").json()["series"] == []
    for widths, configured in (((), []), (None, None)):
        other = Bars(tmp_path / str(widths), widths)
        assert other.get("/v1/bars/widths").json()["configured"] == configured
        other.db.dispose()


@pytest.mark.parametrize(
    ("params", "title"),
    [
        ({"width": "1x"}, "Unknown width"),
        ({"width": "0m"}, "Unknown width"),
        ({"start": T0 + MIN, "end": T0}, "Empty range"),
        ({"limit": 0}, "Invalid request"),
        ({"limit": 501}, "Invalid request"),
        ({"start": -1}, "Invalid request"),
        ({"start": "yesterday"}, "Invalid request"),
        ({"instrument_id": ""}, "Invalid request"),
    ],
)
def test_bad_parameters_are_problems(bars: Bars, params: dict[str, Any], title: str) -> None:
    got = bars.get("/v1/bars", **{"instrument_id": IID, **params})
    assert got.status_code == 422
    assert got.headers["content-type"].startswith("application/problem+json")
    assert got.json()["title"] == title


def test_an_instrument_is_required(bars: Bars) -> None:
    got = bars.get("/v1/bars")
    assert got.status_code == 422
    assert got.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/v1/bars", "/v1/bars/widths"])
def test_a_read_key_is_needed(bars: Bars, tmp_path: Path, path: str) -> None:
    params = {"instrument_id": IID}
    assert bars.client.get(path, params=params).status_code == 401
    assert bars.client.get(path, params=params, headers={"X-API-Key": "mk_nope.nope"}).status_code == 401
    trader = {"X-API-Key": create_key(bars.db, "trader", ["trade"])}
    forbidden = bars.client.get(path, params=params, headers=trader)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")
    ops = {"X-API-Key": create_key(bars.db, "ops", ["admin"])}
    assert bars.client.get(path, params=params, headers=ops).status_code == 200  # admin may read
