"""A writer process for the crash tests: appends numbered events until it is killed.

On start it reads the log to find the last number written (the log, not its memory, is
the truth), then appends batches and prints `ACK <last>` after each acknowledged batch.
usage: crash_writer.py sqlite PATH TOPIC | kafka BOOTSTRAP TOPIC
"""

from __future__ import annotations

import sys

from meltica.log.base import EventLog, Message

BATCH = 25


def last_written(log: EventLog, topic: str) -> int:
    last = -1
    for p in range(log.partitions(topic)):
        offset = 0
        while batch := log.read(topic, p, offset, 5000):
            last = max(last, *(int(r.value) for r in batch))
            offset = batch[-1].offset + 1
    return last


def main() -> None:
    kind, target, topic = sys.argv[1:4]
    log: EventLog
    if kind == "sqlite":
        from meltica.log.sqlite import SqliteLog

        log = SqliteLog(target)
    else:
        from meltica.log.kafka import KafkaLog

        # The same transactional id on restart fences the killed writer and aborts its open transaction.
        log = KafkaLog(target, transactional_id=f"crash-writer-{topic}")
    seq = last_written(log, topic) + 1
    print(f"START {seq}", flush=True)
    while True:
        batch = [Message(topic, str(n).encode(), key=f"k{n % 7}".encode()) for n in range(seq, seq + BATCH)]
        if kind == "sqlite":
            log.append(batch)
        else:
            with log.transaction() as tx:
                tx.append(batch)
        seq += BATCH
        print(f"ACK {seq - 1}", flush=True)


if __name__ == "__main__":
    main()
