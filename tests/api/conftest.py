"""The API on a running embedded stack (engine and projector in background threads), over
SQLite or PostgreSQL read models."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from meltica.api.app import Services, create_app
from meltica.api.keys import create_key
from meltica.api.waiting import follow_engine
from meltica.domain.marketdata import QuoteTick
from meltica.domain.portfolio.events import AdjustBalance
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.publisher import Publisher
from meltica.topics import PORTFOLIO_COMMANDS, QUOTES, topic_specs
from meltica.topology import build_engine
from tests.e2e.stack import BTC
from tests.read_models import FreshReadModels

DBS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class Api:
    def __init__(self, url: str) -> None:
        self.log = MemoryLog()
        for spec in topic_specs(2):
            self.log.create_topic(spec)
        self.codec = Codec()
        self.publisher = Publisher(self.log, self.codec)
        self.db = create_engine(url)
        self.engine = build_engine(self.log, self.codec)
        self.projector = Projector(self.log, self.codec, self.db)
        self.app = create_app(Services(self.log, self.publisher, self.db))
        follow_engine(self.engine, self.app.state.parts.waiter)
        self.client = TestClient(self.app)
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.engine.run, args=(self.stop,), daemon=True),
            threading.Thread(target=self.projector.run, args=(self.stop, 0.005), daemon=True),
        ]
        self.keys = {
            name: create_key(self.db, name, scopes)
            for name, scopes in (("trader", ["read", "trade"]), ("viewer", ["read"]), ("ops", ["admin"]))
        }

    def start(self) -> None:
        now = time.time_ns()
        self.publisher.define([BTC])
        for asset, amount in (("USDT", "1000000"), ("BTC", "100")):
            self.publisher.publish(
                PORTFOLIO_COMMANDS, AdjustBalance("ACC-1", asset, Decimal(amount), "test", now)
            )
        self.publisher.publish(
            QUOTES,
            QuoteTick(BTC.instrument_id, Decimal("100.00"), Decimal(10), Decimal("100.02"), Decimal(10), now),
        )
        for thread in self.threads:
            thread.start()
        self.until(lambda: self.client.get("/v1/instruments", headers=self.auth()).json()["items"] != [])

    def auth(self, who: str = "trader") -> dict[str, str]:
        return {"X-API-Key": self.keys[who]}

    def until(self, condition: Any, timeout: float = 60) -> None:
        """Poll `condition` until it holds; the bound is generous (CI runs three streams on two cores)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("timed out")
            time.sleep(0.01)

    def order(self, **kw: Any) -> dict[str, Any]:
        return {
            "account_id": "ACC-1",
            "instrument_id": BTC.instrument_id,
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "1",
            "price": "100.02",
            **kw,
        }

    def rows(self, table: Any) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.db.dispose()


@pytest.fixture(params=DBS)
def api(request: pytest.FixtureRequest, tmp_path: Path, fresh_read_models: FreshReadModels) -> Iterator[Api]:
    if request.param == "sqlite":
        url = fresh_read_models.sqlite(tmp_path / "rm.db")
    else:
        url = fresh_read_models.postgres(request.getfixturevalue("database_url"))
    a = Api(url)
    a.start()
    yield a
    a.close()


__all__ = ["Api", "t"]
