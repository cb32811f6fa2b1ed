"""Snapshots of the embedded runtime: processor state and read models at a log position.

A snapshot holds the engine's processors (their whole state) with the engine's committed
position in every input partition, and every projected read-model row with the projector's
offsets. Starting from one replays only the tail after it; restoring one into an empty database
gives the read models as they were at that position, and the projector continues from there.
Snapshots are pickles, so each file carries an HMAC-SHA256 of its bytes under the
installation's snapshot key (`meltica.runtime.snapshot_keys`): a file without a valid MAC is
refused before it is unpickled.
"""

from __future__ import annotations

import gzip
import io
import pickle  # nosec B403 # only MAC-checked snapshots are unpickled
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from meltica.errors import MelticaError
from meltica.log.base import TopicPartition
from meltica.projections import tables as t
from meltica.projections.projector import READ_MODELS
from meltica.runtime import state_codec
from meltica.runtime.engine import Engine as Runtime
from meltica.runtime.processor import Processor, layout
from meltica.runtime.snapshot_keys import MAC_BYTES, default_key, mac, verify

FORMAT = "meltica-snapshot/2"
MAGIC = b"meltica-snapshot/2 hmac-sha256\n"  # then the MAC, then the gzipped pickle
SUFFIX = ".snap"


class SnapshotError(MelticaError):
    """A file that is not a usable snapshot."""


@dataclass
class Snapshot:
    processors: list[Processor]
    positions: dict[TopicPartition, int]
    read_models: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    created_ns: int = 0

    @property
    def steps(self) -> int:
        """How far into the log it is: the sum of its positions."""
        return sum(self.positions.values())

    @property
    def processor_names(self) -> list[str]:
        return [p.name for p in self.processors]

    @property
    def layout(self) -> list[str]:
        return layout_of(self.processors)


def layout_of(processors: Sequence[Processor]) -> list[str]:
    """What the processors are and how they are set up (bar widths, static strategies, venues): a
    snapshot only fits an engine of the same layout."""
    return [layout(p) for p in processors]


def capture(engine: Runtime, db: Engine | None = None) -> Snapshot:
    """The state of a recovered `engine` (not running) and, with `db`, of the read models."""
    positions = engine.positions
    rows: dict[str, list[dict[str, Any]]] = {}
    if db is not None:
        with db.connect() as conn:  # one transaction: rows and offsets agree
            for table in (*READ_MODELS, t.projection_offsets):
                rows[table.name] = [dict(r._mapping) for r in conn.execute(select(table))]
    return Snapshot(list(engine.processors), positions, rows, time.time_ns())


def save(snapshot: Snapshot, path: Path, key: bytes | None = None) -> Path:
    """Write `snapshot` to `path`, signed with `key` (default: the configured snapshot key), atomically:
    a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        state_codec.dump({"format": FORMAT, "snapshot": snapshot}, gz)
    payload = buffer.getvalue()
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(MAGIC + mac(key or default_key(), MAGIC, payload) + payload)
    tmp.replace(path)
    return path


def signed_payload(path: Path, key: bytes | None = None) -> bytes:
    """The gzipped pickle in `path` once its MAC checks out under `key`; else a `SnapshotError`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such snapshot") from None
    except OSError as err:
        raise SnapshotError(f"{path}: unreadable ({err})") from None
    if not data.startswith(MAGIC):
        raise SnapshotError(
            f"{path}: not a Meltica snapshot signed as {FORMAT} (refused unread: a pickle could run code)"
        )
    tag, payload = data[len(MAGIC) : len(MAGIC) + MAC_BYTES], data[len(MAGIC) + MAC_BYTES :]
    if not verify(key or default_key(), tag, MAGIC, payload):
        raise SnapshotError(
            f"{path}: MAC does not match this installation's snapshot key (refused unread; "
            "made elsewhere or altered)"
        )
    return payload


def load(path: Path, key: bytes | None = None) -> Snapshot:
    """Read a snapshot file signed with `key` (default: the configured snapshot key); anything else
    (a file without a valid MAC included) is a `SnapshotError` saying what is wrong."""
    payload = signed_payload(path, key)
    try:
        document = state_codec.loads(gzip.decompress(payload))  # its MAC checked out
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as err:
        raise SnapshotError(f"{path}: not a Meltica snapshot ({type(err).__name__}: {err})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError(f"{path}: not a {FORMAT} file")
    snapshot = document["snapshot"]
    if not isinstance(snapshot, Snapshot):
        raise SnapshotError(f"{path}: not a {FORMAT} file")
    return snapshot


def name_for(snapshot: Snapshot) -> str:
    return f"{snapshot.created_ns // 1_000_000}-{snapshot.steps}{SUFFIX}"


def latest(
    directory: Path,
    processors: Sequence[Processor],
    key: bytes | None = None,
    refused: list[str] | None = None,
) -> tuple[Path, Snapshot] | None:
    """The newest readable snapshot in `directory` made for processors of this layout (signed with
    `key`); each file passed over for being unreadable or unsigned is noted in `refused`."""
    wanted = layout_of(processors)
    key = key or default_key()
    for path in sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            snapshot = load(path, key)
        except SnapshotError as error:
            if refused is not None:
                refused.append(str(error))
            continue
        if snapshot.layout == wanted:
            return path, snapshot
    return None


def restore_read_models(snapshot: Snapshot, db: Engine) -> int:
    """Replace the read models (and the projector's offsets) with the snapshot's. Returns rows."""
    if not snapshot.read_models:
        raise SnapshotError("this snapshot holds no read models")
    count = 0
    with db.begin() as conn:
        for table in (*READ_MODELS, t.projection_offsets):
            conn.execute(delete(table))
            rows = snapshot.read_models.get(table.name, [])
            if rows:
                conn.execute(insert(table), rows)
                count += len(rows)
    return count
