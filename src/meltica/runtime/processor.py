"""What the runtime hosts: a processor turns domain inputs into outputs for topics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from meltica.clock import Clock
from meltica.events.envelope import derive_event_id


@dataclass(frozen=True, slots=True)
class Output:
    """A domain event for `topic`, partitioned by `key`; `trace_key` ties it to an order's trace."""

    topic: str
    key: str
    event: Any
    trace_key: str | None = None
    version: int = 0


class Processor(Protocol):
    """A thin adapter: decode is done, the decider runs here, encode happens in the runtime. Which
    topics it reads is the topology's to say (`meltica.topology`)."""

    @property
    def name(self) -> str:
        """Unique name; also names the processor in event ids and spans."""
        ...

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        """Decide on `event` read from `topic`, apply the outcome to the state, return outputs."""
        ...


def output_meta(
    out: Output, cause: dict[str, Any], producer: str, index: int, source: dict[str, Any], ts_init: int
) -> dict[str, Any]:
    """The envelope of the `index`-th output of `producer` on an input with envelope `cause`.

    The event id derives from the cause, the producer and the index, so a replayed or repeated
    step writes the same ids."""
    ts_event = getattr(out.event, "ts", None)
    return {
        "event_id": derive_event_id(f"{cause['event_id']}/{producer}", index),
        "causation_id": cause["event_id"],
        "correlation_id": cause["correlation_id"],
        "ts_event": cause["ts_event"] if ts_event is None else ts_event,
        "ts_init": ts_init,
        "key": out.key,
        "version": out.version,
        "source": source,
    }


def layout(processor: Any) -> str:
    """Which processors a processor is and holds (a fused one's members, an execution processor's
    venues): a snapshot of another layout is not this build's state."""
    members = getattr(processor, "members", None)
    own = f"{processor.name}:{getattr(processor, 'layout', '')}"
    return own if members is None else f"{own}({'+'.join(layout(m) for m in members)})"
