"""The API while the event log is down: health and reads answer, state-changing calls fail fast with
503 log-unavailable and Retry-After, nothing waits on the event loop, audit records wait and are
written when the log is back (or are counted as dropped, never lost silently)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert

from meltica.api.app import Services, create_app
from meltica.api.audit import AuditTrail
from meltica.api.keys import create_key
from meltica.api.waiting import follow_engine
from meltica.domain.audit import ApiCallAudited
from meltica.errors import LogError
from meltica.events.codec import Codec
from meltica.log.base import EventLog, Message, Position, Record, TopicPartition, TopicSpec, Transaction
from meltica.log.memory import MemoryLog
from meltica.projections import tables as t
from meltica.runtime.publisher import Deadline, LogUnavailable, Publisher
from meltica.topics import AUDIT, topic_specs
from tests.api.conftest import Api
from tests.e2e.stack import BTC
from tests.waiting import wait_until

TIMEOUT = 0.3  # the API's deadline on the log in these tests
PROBLEM = "urn:meltica:problem:log-unavailable"


HANG = 60.0  # the longest a hanging call hangs unhealed: far beyond any deadline under test


class Outage(EventLog):
    """Another log's records, with appends that work, fail at once, or hang until `healed` (at
    most `HANG` seconds, after which `gave_up` is set: a test that got there waited on the log)."""

    def __init__(self, inner: EventLog) -> None:
        super().__init__()
        self.inner = inner
        self.mode = "up"
        self.healed = threading.Event()
        self.gave_up = False

    def _hang(self) -> None:
        if not self.healed.wait(HANG):
            self.gave_up = True

    def hanging(self) -> bool:
        """Is the log still hanging (neither healed nor given up)?"""
        return self.mode == "hanging" and not self.healed.is_set() and not self.gave_up

    def append(self, messages: Sequence[Message]) -> list[Position]:
        if self.mode == "failing":
            raise LogError("broker down (test)")
        if self.mode == "hanging":
            self._hang()
        return self.inner.append(messages)

    def create_topic(self, spec: TopicSpec) -> None:
        self.inner.create_topic(spec)

    def topics(self) -> dict[str, int]:
        if self.mode == "failing":
            raise LogError("broker down (test)")
        if self.mode == "hanging":
            self._hang()
        return self.inner.topics()

    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[Record]:
        return self.inner.read(topic, partition, offset, limit)

    def end_offset(self, topic: str, partition: int) -> int:
        return self.inner.end_offset(topic, partition)

    def committed(self, group: str, tp: TopicPartition) -> int | None:
        return self.inner.committed(group, tp)

    def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        self.inner.commit(group, offsets)

    def transaction(self, group: str | None = None) -> Transaction:
        return self.inner.transaction(group)

    def heal(self) -> None:
        self.mode = "up"
        self.healed.set()


def audited(api: Api) -> list[dict[str, Any]]:
    return [
        api.codec.decode_record(rec).record
        for p in range(api.log.partitions(AUDIT))
        for rec in api.log.read(AUDIT, p, 0, 1000)
    ]


@pytest.fixture
def outage(api: Api) -> Any:
    """An API over the stack's log through `Outage`, with a short deadline on the log."""
    log = Outage(api.log)
    app = create_app(Services(log, Publisher(log, api.codec), api.db, log_timeout=TIMEOUT))
    follow_engine(api.engine, app.state.parts.waiter)
    yield log, app
    log.heal()


def asgi(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=30)


def test_a_failing_log_is_503_log_unavailable_with_retry_after(api: Api, outage: Any) -> None:
    log, app = outage
    client = TestClient(app, raise_server_exceptions=False)
    placed = client.post(
        "/v1/orders?wait=acknowledged&timeout=10",
        json=api.order(client_order_id="up", price="99.50"),
        headers=api.auth(),
    )
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["order_id"]
    log.mode = "failing"
    calls = [
        ("POST", "/v1/orders", api.order(client_order_id="down")),
        ("DELETE", f"/v1/orders/{order_id}", None),
        ("PATCH", f"/v1/orders/{order_id}", {"quantity": "2"}),
        ("POST", "/v1/orders/cancel-all", {"account_id": "ACC-1"}),
        ("POST", "/v1/risk/kill-switch", {"action": "trip"}),
    ]
    for method, path, body in calls:
        who = "ops" if "risk" in path else "trader"
        r = client.request(method, path, json=body, headers=api.auth(who))
        assert (r.status_code, r.json()["type"]) == (503, PROBLEM), (path, r.text)
        assert r.headers["retry-after"] == "2"
        assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/v1/orders/{order_id}", headers=api.auth()).status_code == 200
    assert client.get("/readyz").status_code == 503

    log.heal()  # the audit records of the refused calls were kept, and are written now
    api.until(lambda: sum(a["status_code"] == 503 for a in audited(api)) == len(calls))
    trail: AuditTrail = app.state.audit
    assert trail.failures >= 1
    assert trail.dropped == 0
    retried = client.post("/v1/orders", json=api.order(client_order_id="down"), headers=api.auth())
    assert retried.status_code == 202


def test_a_hanging_log_blocks_neither_the_event_loop_nor_the_reads(api: Api, outage: Any) -> None:
    """Before: the audit middleware appended on the event loop, and every request (health too)
    waited for the log; commands waited for the log's own 30 s timeout.

    The log hangs until healed, so what is asserted is order, not speed: every answer comes while
    the log still hangs, and the writes' 503 names the API's deadline, not the client's timeout."""
    log, app = outage
    log.mode = "hanging"

    async def scenario() -> dict[str, Any]:
        async with asgi(app) as client:

            async def answer(method: str, path: str, **kw: Any) -> tuple[bool, httpx.Response]:
                r = await client.request(method, path, **kw)
                return log.hanging(), r

            writes = [
                asyncio.create_task(
                    answer("POST", "/v1/orders", json=api.order(client_order_id=f"h{i}"), headers=api.auth())
                )
                for i in range(4)
            ]
            await asyncio.sleep(0.05)  # the writes are waiting for the log (and their audit records queue)
            health = await answer("GET", "/healthz")
            read = await answer("GET", "/v1/orders", headers=api.auth())
            return {"writes": await asyncio.gather(*writes), "health": health, "read": read}

    got = asyncio.run(scenario())
    for what in ("health", "read"):
        still_hanging, r = got[what]
        assert still_hanging, f"the {what} waited for the log"
        assert r.status_code == 200, r.text
    for still_hanging, r in got["writes"]:
        assert still_hanging, "a write waited for the log"
        assert (r.status_code, r.json()["type"]) == (503, PROBLEM)
        assert f"did not answer within {TIMEOUT:g}s" in r.json()["detail"], r.text
    log.heal()
    api.until(lambda: sum(a["path"] == "/v1/orders" for a in audited(api)) == 4)


def test_calls_beyond_the_waiting_limit_fail_at_once() -> None:
    deadline = Deadline(timeout=3.0, max_waiting=1)
    release = threading.Event()
    with pytest.raises(LogUnavailable, match=r"did not answer within 3s"):
        deadline(lambda: release.wait(30))
    start = time.monotonic()
    with pytest.raises(LogUnavailable, match="1 calls already wait"):
        deadline(lambda: None)
    assert time.monotonic() - start < 2  # not the 3 s a slot would be waited for (room for a busy CPU)
    release.set()

    def answers() -> bool:  # the slot frees when the hanging call ends
        try:
            return deadline(lambda: 7) == 7
        except LogUnavailable:
            return False

    wait_until(answers, 30, "the slot freed", every=0.01)
    with pytest.raises(LogError, match="RuntimeError: client"):
        deadline(lambda: (_ for _ in ()).throw(RuntimeError("client")))


def test_a_burst_beyond_the_slots_queues_while_the_log_answers() -> None:
    deadline = Deadline(timeout=30.0, max_waiting=2)  # ~0.1 s of work: the deadline is for a broken one
    results: list[int] = []

    def call(i: int) -> None:
        results.append(deadline(lambda: (time.sleep(0.02), i)[1]))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == list(range(10))


def record(n: int) -> ApiCallAudited:
    return ApiCallAudited("k", "me", "POST", "/v1/orders", 202, "0" * 64, "127.0.0.1", n)


def test_audit_records_that_cannot_be_kept_are_counted_not_lost_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = MemoryLog()
    for spec in topic_specs(1):
        inner.create_topic(spec)
    log = Outage(inner)
    log.mode = "failing"
    trail = AuditTrail(Publisher(log, Codec()), capacity=2, backoff=(0.01, 0.02))
    for n in range(3):
        trail.record(record(n))
    assert (trail.pending, trail.dropped) == (2, 1)
    assert "1 audit record(s) dropped: the audit queue is full" in caplog.text
    deadline = time.monotonic() + 30
    while trail.failures < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert trail.failures >= 2  # retried
    log.heal()
    while trail.written < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert trail.written == 2
    log.mode = "failing"
    trail.record(record(9))
    trail.close(grace=0.1)
    assert trail.dropped == 2
    assert "not written within 0.1s of shutdown" in caplog.text


def test_an_api_on_a_broker_where_nothing_listens_answers(tmp_path: Any) -> None:
    """The real Kafka client, on an address with no broker: 503 within the deadline, health and
    reads at once (the client's own timeouts are 30 s)."""
    pytest.importorskip("confluent_kafka")
    from meltica.log.kafka import KafkaLog
    from meltica.projections import migrations

    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    db = create_engine(url)
    with db.begin() as conn:
        conn.execute(
            insert(t.instruments).values(
                instrument_id=BTC.instrument_id,
                symbol=BTC.symbol,
                venue=BTC.venue,
                asset_class=str(BTC.asset_class),
                quote_currency=BTC.quote_currency,
                price_increment=BTC.price_increment,
                size_increment=BTC.size_increment,
                maker_fee=BTC.maker_fee,
                taker_fee=BTC.taker_fee,
            )
        )
    key = create_key(db, "trader", ["read", "trade"])
    # The discard port: nothing listens. The client retries for as long as the process lives, so
    # its connection-refused lines are silenced rather than left to flood the rest of the run.
    log = KafkaLog("127.0.0.1:9", client_id="outage-test", security={"log_level": "0"})
    api = create_app(Services(log, Publisher(log, Codec()), db, log_timeout=1.0))
    # As a context manager, so the app's shutdown stops its audit writer: left running, it retries
    # the dead broker for the rest of the session and its warnings land in other tests' output.
    with TestClient(api, raise_server_exceptions=False) as client:
        body = {
            "account_id": "A",
            "instrument_id": BTC.instrument_id,
            "side": "BUY",
            "quantity": "1",
            "price": "100",
        }
        start = time.monotonic()
        r = client.post("/v1/orders", json=body, headers={"X-API-Key": key})
        took = time.monotonic() - start
        assert (r.status_code, r.json()["type"]) == (503, PROBLEM), r.text
        assert "did not answer within 1s" in r.json()["detail"], r.text
        assert took < 15  # the API's 1 s deadline, far from the client's 30 s (room for a busy CPU)
        start = time.monotonic()
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/orders", headers={"X-API-Key": key}).json()["items"] == []
        assert client.get("/readyz").status_code == 503
        assert time.monotonic() - start < 15
