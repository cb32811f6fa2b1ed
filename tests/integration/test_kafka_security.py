"""Kafka over SASL/SCRAM, against the SASL_PLAINTEXT listener of scripts/kafka.sh: the right
credentials append and read, wrong ones are a clear `KafkaAuthenticationError`, and the password
shows up nowhere — not in CLI output, logs, error messages or the event log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from meltica.bootstrap import build_log
from meltica.config import Settings
from meltica.errors import KafkaAuthenticationError
from meltica.log.base import Message, Record, TopicSpec
from meltica.log.kafka import KafkaLog

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class SaslBroker:
    bootstrap: str
    username: str
    password_file: Path

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()


def _from_script(action: str) -> str | None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "kafka.sh"), action],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


@pytest.fixture(scope="module")
def sasl_broker(kafka_bootstrap: str) -> SaslBroker:
    """The SASL listener: MELTICA_TEST_KAFKA_SASL_* (scripts/test.sh exports them), else asked of
    scripts/kafka.sh; a skip without one, a failure under CI."""
    bootstrap = os.environ.get("MELTICA_TEST_KAFKA_SASL_BOOTSTRAP") or _from_script("sasl-bootstrap")
    secret = os.environ.get("MELTICA_TEST_KAFKA_SASL_PASSWORD_FILE") or (
        _from_script("sasl-password-file") if bootstrap else None
    )
    if not bootstrap or not secret:
        reason = "no SASL/SCRAM listener: set MELTICA_TEST_KAFKA_SASL_BOOTSTRAP (scripts/kafka.sh start)"
        if IN_CI:
            pytest.fail(f"CI must run the Kafka security tests, but {reason}")
        pytest.skip(reason)
    return SaslBroker(bootstrap, os.environ.get("MELTICA_TEST_KAFKA_SASL_USERNAME", "meltica"), Path(secret))


def _settings(broker: SaslBroker, namespace: str, mechanism: str = "SCRAM-SHA-256", **kw: object) -> Settings:
    fields: dict[str, object] = {
        "log_backend": "kafka",
        "kafka_bootstrap": broker.bootstrap,
        "namespace": namespace,
        "partitions": 1,
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": broker.username,
        "kafka_sasl_password_file": broker.password_file,
    }
    return Settings(**{**fields, **kw})  # type: ignore[arg-type]


@pytest.fixture
def namespace() -> str:
    return f"sec{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_the_right_credentials_append_and_read_over_sasl(
    sasl_broker: SaslBroker, namespace: str, mechanism: str
) -> None:
    log = build_log(_settings(sasl_broker, namespace, mechanism))
    assert isinstance(log, KafkaLog)
    with log:
        log.create_topic(TopicSpec("secured", 1))
        [position] = log.append([Message("secured", b"hello over SCRAM", b"k")])
        [record] = log.read("secured", 0, position.offset, 10)
    assert (record.key, record.value) == (b"k", b"hello over SCRAM")


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_wrong_credentials_are_refused_at_once_with_a_clear_error(
    sasl_broker: SaslBroker, namespace: str, who: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = f"not-the-password-{uuid.uuid4().hex}"
    user = sasl_broker.username if who == "wrong password" else f"nobody-{uuid.uuid4().hex[:6]}"
    settings = _settings(
        sasl_broker,
        namespace,
        kafka_sasl_username=user,
        kafka_sasl_password=SecretStr(wrong),
        kafka_sasl_password_file=None,
    )
    log = build_log(settings)
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(KafkaAuthenticationError) as refused:
        log.create_topic(TopicSpec("secured", 1))
    assert time.monotonic() - started < 20, "a refusal must not wait out the 30 s timeout"
    message = str(refused.value)
    assert f"refused user {user!r} (SCRAM-SHA-256)" in message
    assert "invalid credentials" in message
    assert wrong not in message
    assert wrong not in caplog.text
    with pytest.raises(KafkaAuthenticationError):
        log.topics()


def test_the_password_is_never_printed_logged_or_written(
    sasl_broker: SaslBroker, namespace: str, tmp_path: Path
) -> None:
    secret = sasl_broker.password
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")},
        "MELTICA_LOG_BACKEND": "kafka",
        "MELTICA_KAFKA_BOOTSTRAP": sasl_broker.bootstrap,
        "MELTICA_NAMESPACE": namespace,
        "MELTICA_PARTITIONS": "1",
        "MELTICA_DATA_DIR": str(tmp_path),
        "MELTICA_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "MELTICA_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "MELTICA_KAFKA_SASL_USERNAME": sasl_broker.username,
        "MELTICA_KAFKA_SASL_PASSWORD_FILE": str(sasl_broker.password_file),
    }

    def meltica(*args: str, password: str | None = None) -> subprocess.Popen[str]:
        given = {"MELTICA_KAFKA_SASL_PASSWORD": password} if password else {}
        return subprocess.Popen(
            [sys.executable, "-m", "meltica", *args],
            env={k: v for k, v in env.items() if not (password and k.endswith("PASSWORD_FILE"))} | given,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    wrong = f"wrong-{uuid.uuid4().hex}"
    started = [
        meltica("deposit", "SEC-1", "USDT", "100"),  # through SASL into the log
        meltica("config", "show"),
        meltica("config", "show", password=secret),  # the same password given directly
        meltica("info", password=wrong),  # a wrong one: refused, and not echoed either
    ]
    said = [proc.communicate(timeout=180) for proc in started]
    deposit, shown, direct, refused = (
        subprocess.CompletedProcess(p.args, p.returncode, out, err)
        for p, (out, err) in zip(started, said, strict=True)
    )
    runs = [deposit, shown, direct]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert "SEC-1: +100 USDT" in deposit.stdout
    assert '"kafka_sasl_password": "***"' in shown.stdout
    assert '"kafka_sasl_password": "***"' in direct.stdout
    assert refused.returncode != 0
    assert "refused user 'meltica' (SCRAM-SHA-512)" in " ".join(
        refused.stdout.split() + refused.stderr.split()
    )
    for run in [*runs, direct, refused]:
        assert secret not in run.stdout + run.stderr
        assert wrong not in run.stdout + run.stderr

    with KafkaLog(sasl_broker.bootstrap, namespace=namespace, security=_security(sasl_broker)) as log:
        records = [r for topic, n in log.topics().items() for p in range(n) for r in _all(log, topic, p)]
    assert any(b"SEC-1" in r.value for r in records), "the deposit went through SASL into the log"
    for r in records:
        blob = r.value + (r.key or b"") + b"".join(v for _, v in r.headers)
        assert secret.encode() not in blob


def _security(broker: SaslBroker) -> dict[str, str]:
    return {
        "security.protocol": "sasl_plaintext",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": broker.username,
        "sasl.password": broker.password,
    }


def _all(log: KafkaLog, topic: str, partition: int) -> Iterator[Record]:
    """Every record of the partition, up to its end offset (asked first: an empty partition is not
    read, and the reader knows the partition's leader before it fetches)."""
    offset, end = 0, log.end_offset(topic, partition)
    while offset < end and (batch := log.read(topic, partition, offset, 1000)):
        yield from batch
        offset = batch[-1].offset + 1
