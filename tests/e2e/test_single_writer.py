"""One engine per data directory, and nothing starts without its API port: a second `meltica up`
on the same data directory, or one on a busy port, exits non-zero before it writes anything; a
SIGKILLed holder leaves no stale lock; a snapshot dropped into the folder without a valid MAC is
refused (and never unpickled) while a genuine one is still used."""

from __future__ import annotations

import gzip
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from meltica.cli.app import app
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.single_writer import WriterLock
from meltica.log.sqlite import SqliteLog
from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    return env | {"MELTICA_DATA_DIR": str(data_dir), "MELTICA_API_PORT": str(port)}


UP = [sys.executable, "-m", "meltica", "up", "--tick-ms", "50"]


def start(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    env = environment(data_dir, port)
    proc = subprocess.Popen(UP, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    said = []
    for line in proc.stdout:
        said.append(line)
        if "Meltica is up" in line:
            return proc, "".join(said)
    raise AssertionError(f"meltica up did not start ({proc.wait()}): {''.join(said)}")


def attempt(data_dir: Path, port: int) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run an `up` that should refuse to start: its result and how long it took."""
    started = time.monotonic()
    env = environment(data_dir, port)
    done = subprocess.run(UP, env=env, text=True, capture_output=True, timeout=60, check=False)
    return done, time.monotonic() - started


def accepted(data_dir: Path) -> Counter[str]:
    """OrderAccepted per order id in the log."""
    with SqliteLog(data_dir / "log.db") as log:
        codec = Codec(registry=EmbeddedSchemaRegistry(log))
        seen: Counter[str] = Counter()
        for p in range(log.partitions("orders.events")):
            for rec in log.read("orders.events", p, 0, 1_000_000):
                name, fields = codec.decode_record(rec)
                if name.endswith("OrderAccepted"):
                    seen[fields["order"]["order_id"]] += 1
        return seen


def test_a_second_up_on_one_data_dir_refuses_and_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    first, _ = start(tmp_path, free_port())
    try:
        wait_until(lambda: sum(accepted(tmp_path).values()) >= 2, 60, "the first engine trading")
        second, took = attempt(tmp_path, free_port())
        assert second.returncode != 0
        assert took < 45, took  # it refused rather than waiting (room for a busy CPU)
        said = second.stdout + second.stderr
        assert f"pid {first.pid} on {socket.gethostname()}" in said, said
        assert "`meltica up`" in said, said
        assert "started 20" in said, said
        assert "Meltica is up" not in said
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    third, _ = start(tmp_path, free_port())  # the kernel dropped the killed holder's lock
    before = sum(accepted(tmp_path).values())
    wait_until(lambda: sum(accepted(tmp_path).values()) > before, 60, "trading after the restart")
    third.send_signal(signal.SIGINT)
    third.communicate(timeout=30)
    assert third.returncode == 0
    doubled = {order: n for order, n in accepted(tmp_path).items() if n > 1}
    assert not doubled


def test_up_on_a_busy_port_exits_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done, took = attempt(tmp_path, port)
    assert done.returncode == 1
    assert f"cannot serve the API on 127.0.0.1:{port}" in done.stderr, done.stderr + done.stdout
    assert "Meltica is up" not in done.stdout
    assert not (tmp_path / "log.db").exists(), "nothing was written"
    assert took < 45, took  # (room for a busy CPU)
    again, _ = start(tmp_path, free_port())  # and it let go of the data directory
    again.send_signal(signal.SIGINT)
    again.communicate(timeout=30)
    assert again.returncode == 0


def test_commands_that_rewrite_state_under_the_engine_wait_for_it_to_stop(tmp_path: Path) -> None:
    env = {"MELTICA_DATA_DIR": str(tmp_path)}
    with WriterLock(tmp_path, "up"):
        for args in (["projections", "rebuild"], ["snapshot", "restore", str(tmp_path / "any.snap")]):
            refused = CliRunner().invoke(app, args, env=env)
            assert refused.exit_code != 0, refused.output
            assert f"pid {os.getpid()}" in refused.output, refused.output
    assert CliRunner().invoke(app, ["topics", "create"], env=env).exit_code == 0
    rebuilt = CliRunner().invoke(app, ["projections", "rebuild"], env=env)  # once the lock is free
    assert rebuilt.exit_code == 0, rebuilt.output


class Payload:
    """A pickle that writes a marker file when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_up_refuses_a_dropped_snapshot_and_starts_from_a_genuine_one(tmp_path: Path) -> None:
    proc, _ = start(tmp_path, free_port())
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert "saved auto-" in out
    marker = tmp_path / "marker"
    evil = tmp_path / "snapshots" / "auto-9999999999999-99999999.snap"
    evil.write_bytes(
        gzip.compress(pickle.dumps({"format": "meltica-snapshot/1", "snapshot": Payload(marker)}))
    )
    forged = tmp_path / "snapshots" / "zz-forged.snap"
    forged.write_bytes(
        b"meltica-snapshot/2 hmac-sha256\n" + bytes(32) + gzip.compress(pickle.dumps(Payload(marker)))
    )
    later = time.time() + 5
    os.utime(evil, (later, later))  # the newest files in the folder
    os.utime(forged, (later, later))
    proc, said = start(tmp_path, free_port())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert f"snapshot refused: {evil}" in said, said
    assert f"snapshot refused: {forged}" in said, said
    assert "started from snapshot auto-" in said, said
    assert not marker.exists(), "the dropped pickle ran"
