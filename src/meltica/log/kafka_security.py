"""Kafka client security from the settings: librdkafka properties for the confluent-kafka
clients, credentials for faust (aiokafka), and the callback that notices refused credentials."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError

from meltica.errors import ConfigurationError, KafkaAuthenticationError

if TYPE_CHECKING:
    from meltica.config import Settings

# librdkafka error codes that mean the broker will not let this client in (retrying cannot help).
_REFUSED = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL})


def client_security(settings: Settings) -> dict[str, str]:
    """The librdkafka security properties of `settings` (secrets in clear: never log this)."""
    protocol = settings.kafka_security_protocol
    conf = {"security.protocol": protocol.lower()}
    if protocol.startswith("SASL_"):
        mechanism, user, password = _sasl(settings)
        conf.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
    if protocol.endswith("SSL"):
        locations = {
            "ssl.ca.location": settings.kafka_ssl_ca_location,
            "ssl.certificate.location": settings.kafka_ssl_certificate_location,
            "ssl.key.location": settings.kafka_ssl_key_location,
        }
        conf.update({key: str(path.expanduser()) for key, path in locations.items() if path is not None})
        if settings.kafka_ssl_key_password is not None:
            conf["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
        conf["ssl.endpoint.identification.algorithm"] = (
            "https" if settings.kafka_ssl_verify_hostname else "none"
        )
    return conf


def faust_credentials(settings: Settings) -> Any:
    """The same security as faust `broker_credentials` (None for PLAINTEXT)."""
    from faust.auth import SASLCredentials, SSLCredentials

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        ca = settings.kafka_ssl_ca_location
        context = ssl.create_default_context(cafile=str(ca.expanduser()) if ca else None)
        context.check_hostname = settings.kafka_ssl_verify_hostname
        if settings.kafka_ssl_certificate_location is not None:
            key_password = settings.kafka_ssl_key_password
            context.load_cert_chain(
                settings.kafka_ssl_certificate_location.expanduser(),
                settings.kafka_ssl_key_location.expanduser() if settings.kafka_ssl_key_location else None,
                key_password.get_secret_value() if key_password else None,
            )
    if protocol == "SSL":
        return SSLCredentials(context)
    mechanism, user, password = _sasl(settings)
    return SASLCredentials(username=user, password=password, ssl_context=context, mechanism=mechanism)


def _sasl(settings: Settings) -> tuple[str, str, str]:
    mechanism, user, password = (
        settings.kafka_sasl_mechanism,
        settings.kafka_sasl_username,
        settings.kafka_sasl_password,
    )
    if not (mechanism and user and password):
        raise ConfigurationError(
            f"kafka_security_protocol {settings.kafka_security_protocol} needs kafka_sasl_mechanism, "
            "kafka_sasl_username and kafka_sasl_password"
        )
    return mechanism, user, password.get_secret_value()


class Refusals:
    """A librdkafka `error_cb` that remembers the cluster refusing this client, so a call that
    would wait out its timeout can fail at once with a `KafkaAuthenticationError`."""

    def __init__(self, bootstrap: str, security: Mapping[str, str]) -> None:
        user = security.get("sasl.username")
        mechanism = security.get("sasl.mechanism")
        who = (
            f"user {user!r} ({mechanism})"
            if user
            else f"this client ({security.get('security.protocol', 'plaintext')})"
        )
        self._prefix = f"the Kafka cluster at {bootstrap} refused {who}"
        self.error: KafkaError | None = None

    def __call__(self, error: KafkaError) -> None:
        if error.code() in _REFUSED:
            self.error = error

    def check(self) -> None:
        """Raise `KafkaAuthenticationError` if the cluster has refused this client."""
        if self.error is not None:
            raise KafkaAuthenticationError(f"{self._prefix}: {self.error.str()}")
