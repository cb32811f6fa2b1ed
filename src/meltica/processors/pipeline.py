"""Several processors of the topology as one: what the fused Kafka service (`meltica run pipeline`)
hosts for each partition it owns.

An input goes to the members that read its topic, and each member's outputs on to the members that
read theirs, in the topology's order, until nothing is left: exactly the embedded engine's step.
Every output is returned, so the host writes each event to its topic (audit, the projector and
other consumers see the same streams as with one service per processor) and commits them, the
journal and the offsets in one transaction; none is read back. A Kafka Streams application does
the same with co-partitioned processors: one task, one transaction, no commit between them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from meltica.clock import Clock
from meltica.runtime.processor import Output, Processor


class Pipeline:
    """Members delivered to in order; their outputs delivered on among them, and all returned."""

    name = "pipeline"

    def __init__(self, members: Sequence[Processor], inputs: Mapping[str, Sequence[str]]) -> None:
        self.members = list(members)
        self.readers: dict[str, list[Processor]] = {}
        for member in self.members:
            for topic in inputs[member.name]:
                self.readers.setdefault(topic, []).append(member)

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        outputs: list[Output] = []
        queue: deque[tuple[str, Any, Processor | None]] = deque([(topic, event, None)])
        while queue:
            topic, event, producer = queue.popleft()
            for member in self.readers.get(topic, ()):
                if member is producer:
                    continue
                for out in member.handle(topic, event, clock):
                    outputs.append(out)
                    queue.append((out.topic, out.event, member))
        return outputs
