"""SIGKILL a writer mid-stream: every acknowledged event survives, nothing is doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from meltica.log.base import EventLog, TopicSpec

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(args: list[str], acks_before_kill: int) -> tuple[int, int]:
    """Start a writer, wait for some acknowledgements, SIGKILL it; returns (start, last acked)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    start, acked, seen = -1, -1, 0
    try:
        for line in proc.stdout:
            word, number = line.split()
            if word == "START":
                start = int(number)
            else:
                acked = int(number)
                seen += 1
                if seen >= acks_before_kill:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert seen >= acks_before_kill, f"writer stopped early: {err}"
    return start, acked


def all_values(log: EventLog, topic: str) -> list[int]:
    out: list[int] = []
    for p in range(log.partitions(topic)):
        offset = 0
        while batch := log.read(topic, p, offset, 5000):
            out.extend(int(r.value) for r in batch)
            offset = batch[-1].offset + 1
    return out


def check_kill_and_restart(open_log, args: list[str], topic: str) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    acked, expected_start = -1, 0
    for _round in range(4):
        start, acked_now = run_and_kill(args, rng.randint(3, 30))
        assert start == expected_start, "a restarted writer continues right after the last event in the log"
        log = open_log()
        try:
            values = all_values(log, topic)
        finally:
            log.close()
        assert acked_now >= acked
        acked = acked_now
        assert len(values) == len(set(values)), "no event is doubled"
        assert set(range(acked + 1)) <= set(values), "every acknowledged event is there"
        assert set(values) == set(range(max(values) + 1)), "no gap"
        expected_start = max(values) + 1


def test_sqlite_writer_killed_mid_stream(tmp_path: Path) -> None:
    from meltica.log.sqlite import SqliteLog

    path = tmp_path / "log.db"
    with SqliteLog(path) as log:
        log.create_topic(TopicSpec("crash", 3))
    check_kill_and_restart(lambda: SqliteLog(path), ["sqlite", str(path), "crash"], "crash")


@pytest.mark.kafka
def test_kafka_transactional_writer_killed_mid_stream(kafka_bootstrap: str) -> None:
    from meltica.log.kafka import KafkaLog

    topic = f"crash.{uuid.uuid4().hex[:8]}"
    with KafkaLog(kafka_bootstrap) as log:
        log.create_topic(TopicSpec(topic, 3))
    check_kill_and_restart(lambda: KafkaLog(kafka_bootstrap), ["kafka", kafka_bootstrap, topic], topic)
