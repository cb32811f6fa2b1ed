"""The `meltica` CLI on the embedded (SQLite) log, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from meltica.config import Settings
from meltica.events import Codec, EmbeddedSchemaRegistry
from meltica.events.examples import order_filled
from meltica.log.base import Message
from meltica.log.sqlite import SqliteLog


def meltica(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    env |= {"MELTICA_DATA_DIR": str(data_dir), "MELTICA_LOG_BACKEND": "sqlite"}
    return subprocess.run(
        [sys.executable, "-m", "meltica", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_topics_info_and_tail_on_a_fresh_data_dir(tmp_path: Path) -> None:
    created = meltica(tmp_path, "topics", "create", "--partitions", "2")
    assert created.returncode == 0, created.stderr
    info = json.loads(meltica(tmp_path, "info", "--json").stdout)
    topics = {t["name"]: t for t in info["topics"]}
    assert topics["orders.events"]["partitions"] == 2
    assert "orders.events.dlq" in topics

    settings = Settings(data_dir=tmp_path)
    with SqliteLog(settings.log_path) as log:
        codec = Codec(registry=EmbeddedSchemaRegistry(log))
        log.append(
            [
                Message(
                    "orders.events", codec.encode("OrderFilled", order_filled(1)), key=b"ACC-1", partition=0
                ),
                Message("orders.events", b"\xc3\x01garbage", key=b"ACC-1", partition=0),
            ]
        )
    tail = meltica(tmp_path, "tail", "orders.events", "--partition", "0", "--json")
    assert tail.returncode == 0, tail.stderr
    first, second = (json.loads(line) for line in tail.stdout.splitlines())
    assert first["type"] == "OrderFilled"
    assert first["event"]["fill"]["last_px"] == "43250.12"
    assert "orders.events[0]@1" in second["error"]


def test_unknown_topic_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    meltica(tmp_path, "topics", "create")
    result = meltica(tmp_path, "tail", "no.such.topic")
    assert result.returncode == 1
    assert "unknown topic 'no.such.topic'" in result.stderr
    assert "Traceback" not in result.stderr


def test_schemas_check_and_db_upgrade(tmp_path: Path) -> None:
    assert meltica(tmp_path, "schemas", "check").returncode == 0
    upgraded = meltica(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "readmodels.db").exists()
