"""The event log port and its backends (memory, SQLite, Kafka)."""

from meltica.log.base import EventLog, Message, Position, Record, TopicPartition, TopicSpec, Transaction
from meltica.log.memory import MemoryLog
from meltica.log.sqlite import SqliteLog

__all__ = [
    "EventLog",
    "MemoryLog",
    "Message",
    "Position",
    "Record",
    "SqliteLog",
    "TopicPartition",
    "TopicSpec",
    "Transaction",
]
