"""The control plane as an operator uses it: `meltica --config FILE up`, then venues and strategies
through the CLI, a limit changed in the file and applied with SIGHUP, a snapshot to start from."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_up import cli, environment
from tests.waiting import wait_until

DATA = Path(__file__).parents[1] / "data"
CONFIG = """
risk:
  - scope: ACCOUNT
    scope_id: DEMO
    max_order_notional: {notional}
    throttle_rate: 50
    throttle_burst: 20
venues:
  - name: sim
    adapter: synthetic
    params: {{tick_ms: 50}}
{extra}
"""
REPLAY = f"""  - name: fx-replay
    adapter: replay
    params: {{path: {DATA / "usdjpy-ticks.csv"}, format: truefx, symbol: USDJPY}}
"""


STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """A failed assertion must not leave `meltica up` running."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def up(data_dir: Path, config: Path) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "meltica", "--config", str(config), "up", "--no-demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(data_dir),
    )
    STARTED.append(proc)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Meltica is up" in line:
            # Keep reading: a full pipe would block the process's logging (the `logging` strategy
            # logs every tick) and with it the engine and the reload.
            reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
            reader.start()
            READERS[proc.pid] = (reader, lines)
            return proc, lines
    raise AssertionError(f"meltica up did not start: {proc.wait()} {''.join(lines)}")


READERS: dict[int, tuple[threading.Thread, list[str]]] = {}


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGINT, a clean exit, and everything the process printed."""
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    reader, lines = READERS.pop(proc.pid)
    reader.join(timeout=30)
    return "".join(lines)


def test_operator_runs_from_yaml_changes_a_limit_and_adds_a_venue(tmp_path: Path) -> None:
    config = tmp_path / "meltica.yaml"
    config.write_text(CONFIG.format(notional=100000, extra=""))
    proc, lines = up(tmp_path, config)
    assert any("risk limits ACCOUNT DEMO" in line for line in lines)
    key = cli(tmp_path, "keys", "create", "--name", "ops", "--scopes", "admin").stdout.strip()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(tmp_path, *args, MELTICA_API_KEY=key)

    def venues() -> dict[str, dict[str, Any]]:
        return {v["venue"]: v for v in json.loads(run("venues", "list", "--json").stdout)}

    wait_until(lambda: venues().get("sim", {}).get("state") == "LIVE", 60, "venue sim live", every=0.2)
    created = run(
        "strategies", "create", "watch", "logging", "--account", "DEMO", "--instrument", "BTCUSDT.SIM"
    )
    assert created.returncode == 0, created.stderr
    wait_until(
        lambda: [s["state"] for s in json.loads(run("strategies", "list", "--json").stdout)] == ["RUNNING"],
        60,
        "strategy watch running",
        every=0.2,
    )
    bad = run("strategies", "create", "x", "grid", "--account", "DEMO", "--instrument", "BTCUSDT.SIM")
    assert bad.returncode == 1
    assert "grid needs step" in bad.stderr

    order = ("orders", "submit", "--instrument", "BTCUSDT.SIM", "--side", "buy", "--quantity", "0.01")
    first = run(*order, "--type", "market", "--wait", "accepted", "--wait-timeout", "10")
    assert first.returncode == 0, first.stderr

    config.write_text(CONFIG.format(notional=1, extra=REPLAY))
    proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: venues().get("fx-replay", {}).get("state") == "STOPPED", 60, "fx-replay replayed", every=0.2
    )
    assert venues()["fx-replay"]["published"] == 1000
    denied = run(*order, "--type", "market", "--wait", "accepted", "--wait-timeout", "10")
    assert denied.returncode == 1
    assert "max_order_notional" in denied.stderr

    reloaded = json.loads(run("config", "reload", "--json").stdout)
    assert reloaded["applied"] == []
    output = stop(proc)
    assert "reloaded" in output
    assert "venue fx-replay added" in output

    made = cli(tmp_path, "--config", str(config), "snapshot", "create", "--no-demo")
    assert made.returncode == 0, made.stderr
    proc, lines = up(tmp_path, config)
    text = "".join(lines)
    assert "no changes since last start" in text
    assert "started from snapshot" in text
    wait_until(lambda: venues()["sim"]["state"] == "LIVE", 60, "venue sim live again", every=0.2)
    assert [s["state"] for s in json.loads(run("strategies", "list", "--json").stdout)] == ["RUNNING"]
    stop(proc)
