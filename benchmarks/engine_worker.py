"""The embedded engine in its own process, for the latency benchmark: runs until SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading

from benchmarks.pipeline import default_tracer
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.sqlite import SqliteLog
from meltica.topology import build_engine


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SqliteLog(sys.argv[1]) as log:
        engine = build_engine(log, Codec(registry=EmbeddedSchemaRegistry(log)), tracer=default_tracer())
        engine.recover()
        print("READY", flush=True)
        cap = {"max_steps": int(sys.argv[2])} if len(sys.argv) > 2 else {}  # default: sized by load
        engine.run(stop, poll_interval=0.0005, **cap)


if __name__ == "__main__":
    main()
