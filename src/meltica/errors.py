"""The one small error hierarchy of Meltica; edges translate everything else into these."""

from __future__ import annotations


class MelticaError(Exception):
    """Base of every error Meltica raises on purpose."""


class ConfigurationError(MelticaError):
    """Settings that cannot work together or point at nothing."""


class SchemaError(MelticaError):
    """A schema that does not parse, is unknown, or cannot be registered."""


class IncompatibleSchemaError(SchemaError):
    """A new schema version that breaks the subject's compatibility rule."""

    def __init__(self, subject: str, field: str, reason: str) -> None:
        super().__init__(f"{subject}: field '{field}': {reason}")
        self.subject = subject
        self.field = field
        self.reason = reason


class EncodeError(MelticaError):
    """A record that does not match its schema."""

    def __init__(self, schema: str, reason: str) -> None:
        super().__init__(f"cannot encode {schema}: {reason}")
        self.schema = schema
        self.reason = reason


class DecodeError(MelticaError):
    """A log record whose bytes do not decode; names where it sits in the log."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str) -> None:
        super().__init__(f"cannot decode {topic}[{partition}]@{offset}: {reason}")
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.reason = reason


class LogError(MelticaError):
    """The event log refused or failed an operation."""


class KafkaAuthenticationError(LogError):
    """The Kafka cluster refused this client's credentials or TLS handshake."""


class UnknownTopicError(LogError):
    """A topic or partition that does not exist."""


class TransactionAbortedError(LogError):
    """An atomic append+commit that did not take effect; nothing of it is visible."""
