"""The embedded engine as its own process, for the crash tests: processes the log in small
batches until nothing is left, then prints DONE. usage: crash_engine.py LOG_DB"""

from __future__ import annotations

import sys

from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.sqlite import SqliteLog
from meltica.topology import build_engine


def main() -> None:
    log = SqliteLog(sys.argv[1])
    codec = Codec(registry=EmbeddedSchemaRegistry(log))
    engine = build_engine(log, codec)
    engine.recover()
    while steps := engine.poll_once(max_steps=3):
        print(f"COMMITTED {steps}", flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
