"""`meltica up` as a user runs it: starts, trades, stops on Ctrl-C, continues after a restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.sqlite import SqliteLog
from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT = free_port()
STARTUP: dict[int, str] = {}


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    env |= {
        "MELTICA_DATA_DIR": str(data_dir),
        "MELTICA_API_PORT": str(PORT),
        "MELTICA_API_URL": f"http://127.0.0.1:{PORT}",
        **extra,
    }
    return env


def start(data_dir: Path) -> subprocess.Popen[str]:
    env = environment(data_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "meltica", "up", "--tick-ms", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Meltica is up" in line:
            STARTUP[proc.pid] = "".join(lines)  # what it said while starting
            return proc
    raise AssertionError(f"meltica up did not start: {proc.wait()}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def order_events(data_dir: Path) -> dict[int, list[tuple[str, str]]]:
    """(event name, event id) of each partition of orders.events, in log order."""
    with SqliteLog(data_dir / "log.db") as log:
        codec = Codec(registry=EmbeddedSchemaRegistry(log))
        out: dict[int, list[tuple[str, str]]] = {}
        for p in range(log.partitions("orders.events")):
            out[p] = []
            for rec in log.read("orders.events", p, 0, 100_000):
                name, fields = codec.decode_record(rec)
                out[p].append((name, fields["meta"]["event_id"]))
        return out


def names_of(events: dict[int, list[tuple[str, str]]]) -> list[str]:
    return [name for partition in events.values() for name, _ in partition]


def cli(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = environment(data_dir, **extra)
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
    wait_until(lambda: names_of(order_events(tmp_path)).count("OrderAccepted") >= 3, 60, "the demo trading")
    key = cli(tmp_path, "keys", "create", "--name", "e2e", "--accounts", "DEMO").stdout.strip()
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
        "--wait",
        "filled",
        "--wait-timeout",
        "10",
        "--json",
        MELTICA_API_KEY=key,
    )
    assert submitted.returncode == 0, submitted.stderr
    order = json.loads(submitted.stdout)
    assert order["status"] == "FILLED"

    def shown_filled() -> bool:  # a read waits 2 s for the projection; a busy CPU may take longer
        shown = cli(tmp_path, "orders", "show", order["order_id"], "--json", MELTICA_API_KEY=key).stdout
        return [e["type"] for e in json.loads(shown)["events"]][-1] == "OrderFilled"

    def positioned() -> bool:
        positions = cli(tmp_path, "positions", "--account", "DEMO", "--json", MELTICA_API_KEY=key).stdout
        return any(p["instrument_id"] == "BTCUSDT.SIM" for p in json.loads(positions))

    wait_until(shown_filled, 60, "the fill in `orders show`")
    wait_until(positioned, 60, "the position in `positions`")
    limits = json.loads(cli(tmp_path, "risk", "limits", "--json", MELTICA_API_KEY=key).stdout)
    assert limits[0]["scope"] == "DEFAULT"
    assert any(row["scope_id"] == "DEMO" for row in limits)
    out = stop(proc)
    assert "stopped after" in out
    assert "saved auto-" in out  # a clean stop leaves a snapshot to start from
    first = order_events(tmp_path)
    names = names_of(first)
    assert names.count("OrderAccepted") >= 3
    assert "OrderFilled" in names or "OrderPartiallyFilled" in names

    proc = start(tmp_path)
    assert "started from snapshot auto-" in STARTUP[proc.pid]
    before = len(names)
    wait_until(
        lambda: len(names_of(order_events(tmp_path))) > before, 60, "trading after the restart", every=0.5
    )
    out = stop(proc)
    second = order_events(tmp_path)
    for p, events in first.items():  # the restart appended to each partition, it rewrote nothing
        assert second[p][: len(events)] == events, f"partition {p} changed before its old end"
    assert len(names_of(second)) > before, "trading continued after the restart"
    ids = [i for events in second.values() for _, i in events]
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
