"""The tick archive: market-data topics as Parquet files, partitioned by instrument and day.

Layout: `<root>/instrument=<id>/date=<YYYY-MM-DD>/<topic>.parquet`. Decimals are stored as
their exact text, timestamps as integer nanoseconds; every record keeps its event type.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meltica.events.codec import Codec
from meltica.events.mapping import json_default
from meltica.log.base import EventLog
from meltica.topics import MARKET_DATA


def _row(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    meta = fields["meta"]
    row = {"type": name, "ts_event": meta["ts_event"], "ts_init": meta["ts_init"]}
    for key, value in fields.items():
        if key != "meta":
            row[key] = (
                value
                if isinstance(value, int | str) and not isinstance(value, bool)
                else json.dumps(value, default=json_default).strip('"')
            )
    return row


def write(log: EventLog, codec: Codec, root: Path) -> dict[str, int]:
    """Archive every market-data record of `log` under `root`; returns files written per topic."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    written: dict[str, int] = {}
    for topic in MARKET_DATA:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for p in range(log.partitions(topic)):
            offset = 0
            while records := log.read(topic, p, offset, 10_000):
                offset = records[-1].offset + 1
                for rec in records:
                    name, fields = codec.decode_record(rec)
                    day = datetime.fromtimestamp(fields["meta"]["ts_event"] / 1e9, UTC).date().isoformat()
                    groups[(fields["instrument_id"], day)].append(_row(name, fields))
        for (instrument_id, day), rows in groups.items():
            folder = root / f"instrument={instrument_id}" / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            rows.sort(key=lambda r: r["ts_event"])
            # every column of every event type in the file (snapshots and deltas share the book's):
            # from_pylist would take the first row's columns only and drop the others' fields
            columns = dict.fromkeys(k for r in rows for k in r)
            table = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows])
            pq.write_table(table, folder / f"{topic}.parquet")
        written[topic] = len(groups)
    return written
