"""Projection speed: records/s from the log into the read models (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from benchmarks.pipeline import order, prepare
from meltica.clock import LiveClock
from meltica.projections import migrations
from meltica.projections.projector import TOPICS, Projector
from meltica.topics import ORDER_COMMANDS
from meltica.topology import build_engine


def _log_with_orders(path: Path, n: int) -> Any:
    pub = prepare(path)
    now = LiveClock().now_ns()
    pub.log.append([pub.message(ORDER_COMMANDS, order(i, now + i)) for i in range(n)])
    build_engine(pub.log, pub.codec).drain(max_steps=1000)
    return pub


def rate(url: str, n: int = 2000) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pub = _log_with_orders(Path(tmp) / "log.db", n)
        if url.startswith("postgresql"):
            migrations.downgrade(url, "base")
        migrations.upgrade(url)
        db = create_engine(url)
        projector = Projector(pub.log, pub.codec, db)
        for topic in TOPICS:  # warm up: compile each schema's decoder before timing
            for part in range(pub.log.partitions(topic)):
                for rec in pub.log.read(topic, part, 0, 300):
                    pub.codec.decode_record(rec)
        began = time.perf_counter()
        records = projector.catch_up()
        elapsed = time.perf_counter() - began
        db.dispose()
        pub.log.close()
        return records / elapsed


def results() -> list[Any]:
    from benchmarks.run import Result

    with tempfile.TemporaryDirectory() as tmp:
        out = [Result("projection", "records/s into SQLite", rate(f"sqlite:///{Path(tmp) / 'rm.db'}"))]
    url = os.environ.get("MELTICA_DATABASE_URL")
    if url:
        out.append(Result("projection", "records/s into PostgreSQL (batched)", rate(url), 20_000))
    return out
