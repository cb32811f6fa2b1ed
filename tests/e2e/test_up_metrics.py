"""`meltica up`'s /metrics: after an order fills, the engine's processor metrics (under the names the
Kafka services use, `service="engine"`), its step and commit latency histograms and the projector's
lag are scraped from the running process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.e2e.up_process import free_port, meltica_up
from tests.waiting import wait_until


def scrape(api: str) -> dict[str, dict[str, float]]:
    """Each metric's samples, by the sample's label text."""
    body = urllib.request.urlopen(f"{api}/metrics", timeout=10).read().decode()
    out: dict[str, dict[str, float]] = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            name, _, labels = series.partition("{")
            out.setdefault(name, {})[labels] = float(value)
    return out


def total(samples: dict[str, dict[str, float]], name: str, *must: str) -> float:
    return sum(v for labels, v in samples.get(name, {}).items() if all(m in labels for m in must))


def test_metrics_of_meltica_up_after_an_order_filled(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    env |= {"MELTICA_DATA_DIR": str(tmp_path), "MELTICA_API_URL": api}

    def meltica(*args: str, **extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "meltica", *args],
            capture_output=True,
            text=True,
            env=env | extra,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    with meltica_up(tmp_path, port):
        key = meltica("keys", "create", "--name", "metrics", "--accounts", "DEMO").strip()
        order = json.loads(
            meltica(
                "orders",
                "submit",
                "--instrument",
                "BTCUSDT.SIM",
                "--side",
                "buy",
                "--quantity",
                "0.01",
                "--type",
                "market",
                "--wait",
                "filled",
                "--wait-timeout",
                "10",
                "--json",
                MELTICA_API_KEY=key,
            )
        )
        assert order["status"] == "FILLED"

        def drained() -> dict[str, dict[str, float]] | None:
            got = scrape(api)
            lag = got.get("meltica_projector_lag_records", {})
            return got if lag and sum(lag.values()) == 0 and total(got, "meltica_order_fills_total") else None

        got = wait_until(drained, 30, "the projector to catch up with the filled order", every=0.2)

    engine = 'service="engine"'
    assert total(got, "meltica_order_fills_total", engine) >= 1
    assert total(got, "meltica_orders_total", engine, 'status="FILLED"') >= 1
    assert total(got, "meltica_orders_total", engine, 'status="ACCEPTED"') >= 1
    assert total(got, "meltica_order_fill_notional_total", engine, 'instrument="BTCUSDT.SIM"') > 0
    assert total(got, "meltica_order_ack_latency_seconds_count", engine) >= 1
    steps = total(got, "meltica_processor_records_total", engine)
    commits = total(got, "meltica_processor_transactions_total", engine)
    assert steps >= 1
    assert 1 <= commits <= steps
    # the market ticks on while it is scraped: the histograms and the counters are read a moment apart
    assert abs(total(got, "meltica_processor_step_latency_seconds_count", engine) - steps) <= 20
    assert abs(total(got, "meltica_processor_commit_latency_seconds_count", engine) - commits) <= 20
    assert 0 < total(got, "meltica_processor_commit_latency_seconds_sum", engine) < 10 * commits
    assert total(got, "meltica_processor_ready", engine) == 1
    assert total(got, "meltica_kill_switches_tripped", engine) == 0
    assert total(got, "meltica_projector_records_total") > 0
    topics = {labels.split('topic="')[1].split('"')[0] for labels in got["meltica_projector_lag_records"]}
    assert {"orders.commands", "orders.events", "portfolio.events"} <= topics
    for name in ("meltica_engine_steps", "meltica_engine_outputs"):  # the old gauges are gone
        assert name not in got
