"""One source of truth for the log: a configured Kafka bootstrap means the log is on Kafka, and
the CLI refuses to write a local SQLite log while one is configured."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from meltica.bootstrap import build_log
from meltica.config import Settings, load_settings
from meltica.errors import ConfigurationError
from meltica.log.kafka import KafkaLog
from meltica.topics import PORTFOLIO_COMMANDS


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    return env | {"MELTICA_DATA_DIR": str(tmp_path / "data"), **extra}


def test_a_bootstrap_without_a_backend_means_kafka(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("MELTICA_")]:
        monkeypatch.delenv(key)
    assert Settings().log_backend == "sqlite"
    monkeypatch.setenv("MELTICA_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert Settings().log_backend == "kafka"
    monkeypatch.delenv("MELTICA_KAFKA_BOOTSTRAP")
    config = tmp_path / "meltica.yaml"
    config.write_text("kafka_bootstrap: 127.0.0.1:1\n")
    assert load_settings(config).log_backend == "kafka"
    config.write_text("log_backend: memory\nkafka_bootstrap: 127.0.0.1:1\n")
    assert load_settings(config).log_backend == "memory"  # an explicit choice wins


def test_a_local_log_is_refused_while_a_cluster_is_configured(tmp_path: Path) -> None:
    settings = Settings(log_backend="sqlite", kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="refusing to write the local log"):
        build_log(settings)
    assert not settings.log_path.exists()
    build_log(Settings(log_backend="sqlite", kafka_bootstrap=None, data_dir=tmp_path)).close()


def test_deposit_refuses_the_local_log_when_a_cluster_is_configured(tmp_path: Path) -> None:
    env = _env(tmp_path, MELTICA_LOG_BACKEND="sqlite", MELTICA_KAFKA_BOOTSTRAP="127.0.0.1:1")
    done = subprocess.run(
        [sys.executable, "-m", "meltica", "deposit", "DEMO", "USDT", "1000"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refusing to write the local log" in " ".join((done.stdout + done.stderr).split())
    assert not (tmp_path / "data" / "log.db").exists()


@pytest.mark.kafka
def test_deposit_under_a_configuration_naming_kafka_writes_to_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    config = tmp_path / "meltica.yaml"
    config.write_text(f"kafka_bootstrap: {kafka_bootstrap}\nnamespace: {namespace}\npartitions: 2\n")
    done = subprocess.run(
        [sys.executable, "-m", "meltica", "--config", str(config), "deposit", "DEMO", "USDT", "1000"],
        env=_env(tmp_path),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "data" / "log.db").exists()
    log = KafkaLog(kafka_bootstrap, namespace=namespace)
    try:
        assert sum(log.end_offset(PORTFOLIO_COMMANDS, p) for p in range(2)) >= 1
    finally:
        log.close()
