"""What the runtime hosts: a processor turns domain inputs into outputs for topics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from meltica.clock import Clock


@dataclass(frozen=True, slots=True)
class Output:
    """A domain event for `topic`, partitioned by `key`; `trace_key` ties it to an order's trace."""

    topic: str
    key: str
    event: Any
    trace_key: str | None = None
    version: int = 0


class Processor(Protocol):
    """A thin adapter: decode is done, the decider runs here, encode happens in the runtime."""

    @property
    def name(self) -> str:
        """Unique name; also names the processor in event ids and spans."""
        ...

    @property
    def inputs(self) -> Sequence[str]:
        """The topics it reads."""
        ...

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        """Decide on `event` read from `topic`, apply the outcome to the state, return outputs."""
        ...
