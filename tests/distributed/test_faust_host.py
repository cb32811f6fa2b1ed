"""The faust-streaming host: the same processors as faust agents, through the same workload.

Uninterrupted, the faust host produces exactly the events of the confluent-kafka host. Under
SIGKILL it does not: faust-streaming's `exactly_once` commits outputs and source offsets
separately, so a restarted worker duplicates outputs (the copy agent below: thousands of
duplicates visible to a read_committed reader) or loses inputs from its state (the full
workload: cancels rejected as "unknown order"). The two tests that show it are marked with
that reason; the confluent-kafka host, which passes the crash suite, is the default.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from meltica.log.base import TopicSpec
from meltica.log.kafka import KafkaLog
from tests.distributed.cluster import Chaos, Cluster, run_workload

pytestmark = pytest.mark.distributed

ON_FAUST = ("risk", "orders", "portfolio")
FAUST_EOS = (
    "faust-streaming 0.15 exactly_once does not bind outputs and source offsets in one transaction: "
    "after SIGKILL a restarted worker re-processes inputs whose outputs are committed (duplicates) "
    "or skips inputs whose offsets are committed (an order lost from the state)"
)


def test_faust_host_produces_what_the_confluent_host_produces(
    cluster: Cluster, baseline: Counter[str]
) -> None:
    cluster.start_all(faust=ON_FAUST)
    outcome = run_workload(cluster)
    missing, extra = baseline - outcome, outcome - baseline
    examples = "\n".join([*list(missing)[:2], *list(extra)[:2]])
    report = f"{len(missing)} missing, {len(extra)} extra\n{examples}"
    assert not missing, report
    assert not extra, report


@pytest.mark.xfail(reason=FAUST_EOS, strict=True)  # a fix makes it pass: then drop the mark
def test_faust_host_under_sigkill(cluster: Cluster, baseline: Counter[str]) -> None:
    cluster.start_all(faust=ON_FAUST)
    outcome = run_workload(cluster, Chaos(cluster, 5, services=ON_FAUST))
    assert outcome == baseline


COPY_APP = """
import os, faust
ns = os.environ["NS"]
app = faust.App(
    "copy-" + ns, broker="kafka://" + os.environ["BOOTSTRAP"], processing_guarantee="exactly_once",
    consumer_auto_offset_reset="earliest", broker_session_timeout=10, broker_heartbeat_interval=1,
    store="memory://", web_enabled=False, topic_allow_declare=False)
src = app.topic(ns + ".src", key_serializer="raw", value_serializer="raw")
dst = app.topic(ns + ".dst", key_serializer="raw", value_serializer="raw")

@app.agent(src)
async def copy(stream):
    async for ev in stream.events():
        await dst.send(key=ev.key, value=ev.value, partition=ev.message.partition)
"""


# not strict: a run whose kills miss the window between the two commits copies exactly once
# (1 of 3 runs did, 2026-12)
@pytest.mark.xfail(reason=FAUST_EOS, strict=False)
def test_faust_exactly_once_copy_survives_sigkill(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The smallest case: an exactly-once agent copying a topic, SIGKILLed twice mid-stream."""
    ns = f"c{uuid.uuid4().hex[:8]}"
    log = KafkaLog(kafka_bootstrap)
    for name in ("src", "dst"):
        log.create_topic(TopicSpec(f"{ns}.{name}", 2))
    n = 30_000
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(n):
        producer.produce(f"{ns}.src", str(i).encode(), str(i).encode())
    producer.flush()
    (tmp_path / "copyapp.py").write_text(COPY_APP)
    env = {**os.environ, "NS": ns, "BOOTSTRAP": kafka_bootstrap}

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "copyapp", "worker", "-l", "warn"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    for pause in (6.0, 4.0):
        w = worker()
        time.sleep(pause)  # the fault itself: SIGKILL mid-stream, after a while of copying
        w.send_signal(signal.SIGKILL)
        w.wait()
    w = worker()
    copied = _committed_values(kafka_bootstrap, f"{ns}.dst", 2, until=n, timeout_s=90)
    w.send_signal(signal.SIGTERM)
    w.wait(timeout=60)
    log.close()
    assert len(set(copied)) == n, "records lost"
    assert len(copied) == n, f"{len(copied) - n} duplicates visible to a read_committed consumer"


def _committed_values(
    bootstrap: str, topic: str, partitions: int, *, until: int, timeout_s: float
) -> list[bytes]:
    """Everything committed in `topic`, once at least `until` distinct values have arrived."""
    deadline = time.monotonic() + timeout_s
    while True:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"count-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        consumer.assign([KafkaTopicPartition(topic, p, 0) for p in range(partitions)])
        values: list[bytes] = []
        eof = 0
        while eof < partitions:
            msg = consumer.poll(5)
            if msg is None:
                break
            if msg.error():
                eof += 1
                continue
            values.append(msg.value() or b"")
        consumer.close()
        if len(set(values)) >= until or time.monotonic() > deadline:
            return values
        time.sleep(2)  # a condition wait that hands what it has to the asserts at the deadline
