"""Kafka security settings: what reaches librdkafka and faust, secrets read from files and never
shown, and combinations that cannot work refused with the key to fix."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
import trustme
from confluent_kafka import KafkaError
from typer.testing import CliRunner

from meltica.cli.app import app
from meltica.config import Settings, load_settings
from meltica.config_file import ConfigFileError
from meltica.errors import KafkaAuthenticationError
from meltica.log.kafka_security import Refusals, client_security, faust_credentials

runner = CliRunner()
SECRET = "s3cr3t-Pa55-for-tests"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        load_settings(path)
    return caught.value.problems


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    assert client_security(Settings()) == {"security.protocol": "plaintext"}
    assert faust_credentials(Settings()) is None


def test_sasl_scram_reaches_librdkafka_with_the_password_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(SECRET + "\n")  # as `echo` or a mounted secret leaves it
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password_file=secret,
        kafka_ssl_ca_location=tmp_path / "ca.pem",
        kafka_ssl_verify_hostname=False,
    )
    assert client_security(settings) == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": SECRET,
        "ssl.ca.location": str(tmp_path / "ca.pem"),
        "ssl.endpoint.identification.algorithm": "none",
    }
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())


def test_faust_gets_the_same_sasl_and_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc",
        kafka_sasl_password=SECRET,
        kafka_ssl_ca_location=tmp_path / "ca.pem",
    )
    credentials = faust_credentials(settings)
    assert (credentials.username, credentials.password) == ("svc", SECRET)
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert credentials.ssl_context.check_hostname


def test_config_show_masks_the_kafka_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text(SECRET)
    monkeypatch.setenv("MELTICA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("MELTICA_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("MELTICA_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("MELTICA_KAFKA_SASL_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("MELTICA_KAFKA_SSL_KEY_PASSWORD", SECRET + "-key")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    shown = json.loads(result.stdout)
    assert shown["kafka_sasl_password"] == "***"
    assert shown["kafka_ssl_key_password"] == "***"
    assert shown["kafka_sasl_username"] == "svc"


def test_sasl_without_credentials_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "meltica.yaml"
    path.write_text("kafka_security_protocol: SASL_SSL\nkafka_sasl_mechanism: SCRAM-SHA-256\n")
    [problem] = problems(path)
    assert "SASL_SSL needs kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kafka_sasl_mechanism: PLAIN\n", "kafka_sasl_mechanism needs kafka_security_protocol SASL_"),
        ("kafka_ssl_ca_location: /ca.pem\n", "kafka_ssl_ca_location need kafka_security_protocol SSL"),
        ("kafka_sasl_mechanism: GSSAPI\n", "kafka_sasl_mechanism"),
    ],
)
def test_settings_that_cannot_work_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "meltica.yaml"
    path.write_text(text)
    assert any(expected in p for p in problems(path))


def test_a_password_and_a_password_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(SECRET)
    path = tmp_path / "meltica.yaml"
    path.write_text(f"kafka_sasl_password: {SECRET}\nkafka_sasl_password_file: {secret}\n")
    [problem] = problems(path)
    assert "set kafka_sasl_password or kafka_sasl_password_file, not both" in problem
    assert SECRET not in problem


def test_a_missing_or_empty_secret_file_is_named_not_read_out(tmp_path: Path) -> None:
    path = tmp_path / "meltica.yaml"
    path.write_text(f"kafka_sasl_password_file: {tmp_path / 'absent'}\n")
    [problem] = problems(path)
    assert f"cannot read the secret file {tmp_path / 'absent'}" in problem
    (tmp_path / "empty").write_text("\n")
    path.write_text(f"kafka_ssl_key_password_file: {tmp_path / 'empty'}\n")
    [problem] = problems(path)
    assert f"the secret file {tmp_path / 'empty'} is empty" in problem


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "meltica.yaml"
    path.write_text("kafka_sasl_password: 918273645\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:1: kafka_sasl_password: ")
    assert "918273645" not in problem


def test_a_refusal_reported_by_librdkafka_becomes_a_clear_meltica_error() -> None:
    refusals = Refusals("broker:9093", {"sasl.username": "svc", "sasl.mechanism": "SCRAM-SHA-256"})
    refusals(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    refusals.check()  # a broker being away is not a refusal: the caller retries
    refusals(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: invalid credentials"))
    with pytest.raises(
        KafkaAuthenticationError, match=r"at broker:9093 refused user 'svc' \(SCRAM-SHA-256\)"
    ):
        refusals.check()
