"""The backends the contract suite runs against. A new backend is correct when it passes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meltica.log.base import EventLog, TopicSpec
from meltica.log.memory import MemoryLog
from meltica.log.sqlite import SqliteLog

BACKENDS = ["memory", "sqlite", pytest.param("kafka", marks=pytest.mark.kafka)]


class Backend:
    """Opens (and reopens) logs of one backend over the same storage."""

    def __init__(self, name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.name = name
        self._tmp = tmp_path
        self._request = request
        self._memory: MemoryLog | None = None
        self.opened: list[EventLog] = []

    @property
    def durable(self) -> bool:
        return self.name != "memory"

    def open(self) -> EventLog:
        log: EventLog
        if self.name == "memory":
            self._memory = self._memory or MemoryLog()
            log = self._memory
        elif self.name == "sqlite":
            log = SqliteLog(self._tmp / "log.db")
        else:
            from meltica.log.kafka import KafkaLog

            bootstrap = self._request.getfixturevalue("kafka_bootstrap")
            log = KafkaLog(bootstrap, client_id="meltica-contract")
        self.opened.append(log)
        return log

    def close_all(self) -> None:
        for log in self.opened:
            log.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path, request)
    yield b
    b.close_all()


@pytest.fixture
def log(backend: Backend) -> EventLog:
    return backend.open()


@pytest.fixture
def new_topic(log: EventLog) -> Callable[..., str]:
    """Create a topic with a unique name (Kafka topics outlive a test)."""

    def make(partitions: int = 1, prefix: str = "t") -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        log.create_topic(TopicSpec(name, partitions))
        return name

    return make
