"""`meltica up` as a user runs it: starts, trades, stops on Ctrl-C, continues after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.sqlite import SqliteLog


def start(data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    env["MELTICA_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "meltica", "up", "--tick-ms", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Meltica is up" in line:
            return proc
    raise AssertionError(f"meltica up did not start: {proc.wait()}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def order_events(data_dir: Path) -> list[tuple[str, str]]:
    with SqliteLog(data_dir / "log.db") as log:
        codec = Codec(registry=EmbeddedSchemaRegistry(log))
        out = []
        for p in range(log.partitions("orders.events")):
            for rec in log.read("orders.events", p, 0, 100_000):
                name, fields = codec.decode_record(rec)
                out.append((name, fields["meta"]["event_id"]))
        return out


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    env["MELTICA_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "meltica", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_up_trades_stops_cleanly_and_continues(tmp_path: Path) -> None:
    proc = start(tmp_path)
    time.sleep(4)
    submitted = cli(
        tmp_path,
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
        "--client-order-id",
        "from-cli",
    )
    assert submitted.returncode == 0, submitted.stderr
    time.sleep(1.5)
    out = stop(proc)
    assert "stopped after" in out
    first = order_events(tmp_path)
    names = [n for n, _ in first]
    assert names.count("OrderAccepted") >= 3
    assert "OrderFilled" in names or "OrderPartiallyFilled" in names

    proc = start(tmp_path)
    time.sleep(2)
    out = stop(proc)
    second = order_events(tmp_path)
    assert second[: len(first)] == first or set(first) <= set(second)
    assert len(second) > len(first), "trading continued after the restart"
    ids = [i for _, i in second]
    assert len(ids) == len(set(ids)), "nothing doubled"


def test_bad_cli_input_is_one_clear_line(tmp_path: Path) -> None:
    bad = cli(
        tmp_path, "orders", "submit", "--instrument", "BTCUSDT.SIM", "--side", "buy", "--quantity", "-1"
    )
    assert bad.returncode != 0
    assert "quantity must be a positive number" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = cli(tmp_path, "orders", "submit", "--instrument", "BTCUSDT.SIM", "--side", "up", "--quantity", "1")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr
