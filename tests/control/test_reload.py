"""Hot reload: changed declarations become commands in the log and take effect at once; settings
that need a restart are reported and left alone; a bad file applies nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meltica.config import load_settings
from meltica.control.reload import Declared, plan
from meltica.domain.control import ConfigurationApplied, ControlStrategy, ControlVenue
from meltica.domain.risk.events import SetRiskLimits
from meltica.events.mapping import from_record
from meltica.topics import CONTROL_EVENTS
from tests.control.conftest import ControlStack

LIMITS = """api_port: {port}
risk:
  - scope: ACCOUNT
    scope_id: ACC-1
    max_order_notional: {notional}
"""


def declared(text: str, tmp_path: Path) -> Declared:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return Declared.of(load_settings(path))


def test_plan_turns_differences_into_commands(tmp_path: Path) -> None:
    old = declared(
        """
venues: [{name: a, adapter: replay, params: {path: x.csv, symbol: X}}, {name: b, adapter: synthetic}]
strategies: [{strategy_id: s1, kind: logging, account_id: A, instrument_id: X.SIM}]
risk: [{scope: GLOBAL, max_open_orders: 5}]
""",
        tmp_path,
    )
    new = declared(
        """
venues:
  - {name: a, adapter: replay, params: {path: y.csv, symbol: X}}
  - {name: c, adapter: synthetic, start: false}
strategies: [{strategy_id: s1, kind: logging, account_id: A, instrument_id: X.SIM, params: {every: 5}}]
risk: [{scope: ACCOUNT, scope_id: A, max_open_orders: 2}]
""",
        tmp_path,
    )
    p = plan(old, new, "op", 1)
    assert p.applied == [
        "risk limits ACCOUNT A",
        "risk limits GLOBAL cleared",
        "venue a parameters",
        "venue c added",
        "venue b removed",
        "strategy s1 parameters",
    ]
    kinds = [(type(c).__name__, getattr(c, "action", None)) for _, c in p.commands]
    assert ("ControlVenue", "ADD") in [(k, a and a.value) for k, a in kinds]
    assert not any(
        isinstance(c, ControlVenue) and c.venue == "c" and c.action.value == "START" for _, c in p.commands
    )
    update = [c for _, c in p.commands if isinstance(c, ControlStrategy)]
    assert [(c.action.value, c.params) for c in update] == [("UPDATE", {"every": "5"})]
    cleared = [c for _, c in p.commands if isinstance(c, SetRiskLimits) and c.scope.value == "GLOBAL"]
    assert cleared
    assert cleared[0].limits.max_open_orders is None
    assert plan(new, new, "op", 2).commands == []


def submit(stack: ControlStack, client_id: str) -> Any:
    body = stack.order(client_order_id=client_id, price="100.02", quantity="1")
    return stack.client.post("/v1/orders?wait=accepted&timeout=10", json=body, headers=stack.auth())


def applied_events(stack: ControlStack) -> list[ConfigurationApplied]:
    found = []
    for p in range(stack.log.partitions(CONTROL_EVENTS)):
        for rec in stack.log.read(CONTROL_EVENTS, p, 0, 1000):
            found.append(from_record(*stack.codec.decode_record(rec)))
    return found


def test_reloaded_risk_limit_takes_effect_on_the_next_order(tmp_path: Path, make_stack: Any) -> None:
    config = tmp_path / "meltica.yaml"
    config.write_text(LIMITS.format(port=8080, notional=1000))
    stack = make_stack(config)
    assert stack.reloader is not None
    assert stack.reloader.apply("start")["applied"] == ["risk limits ACCOUNT ACC-1"]
    assert submit(stack, "before").status_code == 202

    config.write_text(LIMITS.format(port=8080, notional=50))
    assert stack.client.post("/v1/admin/reload", headers=stack.auth("trader")).status_code == 403
    report = stack.client.post("/v1/admin/reload", headers=stack.auth("ops")).json()
    assert report["applied"] == ["risk limits ACCOUNT ACC-1"]
    assert report["restart_required"] == []
    denied = submit(stack, "after")
    assert denied.status_code == 422
    assert denied.json()["detail"] == "max_order_notional"

    config.write_text(LIMITS.format(port=9999, notional=50))
    report = stack.client.post("/v1/admin/reload", headers=stack.auth("ops")).json()
    assert report["applied"] == []
    assert report["restart_required"] == ["api_port"]

    before = len(applied_events(stack))
    config.write_text(LIMITS.format(port=8080, notional=-1))
    refused = stack.client.post("/v1/admin/reload", headers=stack.auth("ops"))
    assert refused.status_code == 422
    assert "meltica.yaml:5: risk[0].max_order_notional" in refused.json()["detail"]
    assert len(applied_events(stack)) == before  # nothing applied, nothing recorded
    assert submit(stack, "still-denied").status_code == 422
    events = applied_events(stack)
    assert [e.applied for e in events] == [("risk limits ACCOUNT ACC-1",)] * 2 + [()]


def test_reload_without_a_configuration_file_is_a_conflict(make_stack: Any) -> None:
    stack = make_stack()
    r = stack.client.post("/v1/admin/reload", headers=stack.auth("ops"))
    assert r.status_code == 409
    assert r.json()["type"] == "urn:meltica:problem:no-configuration"
