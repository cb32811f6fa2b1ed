"""The API's structure: its reads go through `meltica.projections.queries` (no SQL under
`meltica/api` but the key store's), every timestamp it writes comes from the one clock it is
given, and its routes take only the parameters they document."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

import meltica.api
from meltica.api.app import Services, create_app
from meltica.api.keys import create_key, utc
from meltica.clock import SimulatedClock
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.projections import migrations
from meltica.runtime.publisher import Publisher
from meltica.topics import AUDIT, ORDER_COMMANDS, topic_specs

API = Path(meltica.api.__file__).parent
KEY_STORE = API / "keys.py"  # the API keys' own table: written and read there
NOW = 1_900_000_000_123_456_000  # 2030-03-17, a time the wall clock does not give


def modules() -> list[Path]:
    return sorted(p for p in API.rglob("*.py") if "ui" not in p.relative_to(API).parts)


def imports(path: Path) -> Iterator[tuple[str, str]]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield from ((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from ((alias.name, "") for alias in node.names)


def test_api_modules_run_no_sql_of_their_own() -> None:
    found = [
        f"{p.relative_to(API)}: {module} {name}"
        for p in modules()
        if p != KEY_STORE
        for module, name in imports(p)
        if (module.startswith("sqlalchemy") and name != "Engine")
        or module.startswith("meltica.projections.tables")
        or (module == "meltica.projections" and name == "tables")
    ]
    assert len(modules()) > 10  # the walk sees the package
    assert found == [], f"read models are read through meltica.projections.queries: {found}"


def test_api_modules_take_the_time_from_the_injected_clock() -> None:
    calls = []
    for p in modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and (
                (node.attr in ("time", "time_ns") and getattr(node.value, "id", "") == "time")
                or (node.attr in ("now", "utcnow") and getattr(node.value, "id", "") == "datetime")
            ):
                calls.append(f"{p.relative_to(API)}:{node.lineno} {ast.unparse(node)}")
    assert calls == [], f"timestamps come from the app's clock (`deps.Now`): {calls}"


@pytest.fixture
def app(tmp_path: Path) -> tuple[TestClient, MemoryLog, Codec, Any]:
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    db = create_engine(url)
    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(2):
        log.create_topic(spec)
    client = TestClient(create_app(Services(log, Publisher(log, codec), db), clock=SimulatedClock(NOW)))
    return client, log, codec, db


def records(log: MemoryLog, codec: Codec, topic: str) -> list[tuple[str, dict[str, Any]]]:
    return [codec.decode_record(r) for p in range(log.partitions(topic)) for r in log.read(topic, p, 0, 1000)]


def test_commands_and_audit_records_carry_the_injected_clock(app: tuple[TestClient, Any, Any, Any]) -> None:
    client, log, codec, db = app
    key = create_key(db, "ops", ["admin"])
    with client:
        r = client.post("/v1/orders/cancel-all", json={"account_id": "ACC-1"}, headers={"X-API-Key": key})
        assert r.status_code == 202, r.text
    assert [(name, fields["meta"]["ts_event"]) for name, fields in records(log, codec, ORDER_COMMANDS)] == [
        ("CancelAllOrders", NOW)
    ]
    audited = records(log, codec, AUDIT)
    assert [(fields["path"], fields["meta"]["ts_event"]) for _, fields in audited] == [
        ("/v1/orders/cancel-all", NOW)
    ]


def test_keys_expire_and_are_created_by_the_injected_clock(app: tuple[TestClient, Any, Any, Any]) -> None:
    client, _, _, db = app
    expired = create_key(db, "old", ["read"], expires_at=datetime(2029, 1, 1, tzinfo=UTC))  # after today
    r = client.get("/v1/instruments", headers={"X-API-Key": expired})
    assert (r.status_code, r.json()["detail"]) == (401, "the API key has expired")

    ops = {"X-API-Key": create_key(db, "ops", ["admin"])}
    made = client.post("/v1/admin/keys", json={"name": "new", "scopes": ["read"], "ttl": "1d"}, headers=ops)
    assert made.status_code == 201, made.text
    assert made.json()["created_at"] == utc(NOW).isoformat()
    assert made.json()["expires_at"] == (utc(NOW) + timedelta(days=1)).isoformat()
    past = client.post(
        "/v1/admin/keys",
        json={"name": "late", "scopes": ["read"], "expires_at": "2029-06-01T00:00:00Z"},
        headers=ops,
    )
    assert (past.status_code, past.json()["type"]) == (422, "urn:meltica:problem:validation"), past.text


def test_strategy_start_and_stop_take_only_the_strategy_id(app: tuple[TestClient, Any, Any, Any]) -> None:
    paths = app[0].app.openapi()["paths"]  # type: ignore[attr-defined]
    for action in ("start", "stop"):
        operation = paths[f"/v1/strategies/{{strategy_id}}/{action}"]["post"]
        assert [p["name"] for p in operation["parameters"]] == ["strategy_id"], action
