"""Snapshots are pickles, so only those signed with this installation's key are unpickled: a file
dropped next to them (or a record written to a Kafka snapshot topic) without a valid MAC is
refused before it is read, and the code in it never runs."""

from __future__ import annotations

import gzip
import os
import pickle
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meltica.cli.app import app
from meltica.clock import SimulatedClock
from meltica.control import snapshots
from meltica.events.codec import Codec
from meltica.log.base import Message
from meltica.log.memory import MemoryLog
from meltica.log.sqlite import SqliteLog
from meltica.processors.portfolio import PortfolioProcessor
from meltica.runtime.partitions import SNAPSHOT_FORMAT, PartitionedProcessor
from meltica.runtime.snapshot_keys import SnapshotKeyError, load_key
from meltica.topics import snapshot_topic, topic_specs
from meltica.topology import inputs_of
from tests.e2e.stack import Stack
from tests.state import canonical


class Payload:
    """A pickle that writes a marker file when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_the_key_is_made_once_private_and_refused_when_open_to_others(tmp_path: Path) -> None:
    path = tmp_path / "data" / "snapshot.key"
    key = load_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == key
    path.chmod(0o644)
    with pytest.raises(SnapshotKeyError, match="chmod 600"):
        load_key(path)


def test_a_dropped_pickle_is_refused_unread(tmp_path: Path) -> None:
    key, marker = load_key(tmp_path / "snapshot.key"), tmp_path / "marker"
    directory = tmp_path / "snapshots"
    stack = Stack(log=SqliteLog(tmp_path / "log.db"))
    stack.setup()
    genuine = snapshots.save(snapshots.capture(stack.engine), directory / "genuine.snap", key)
    old_style = directory / "old-style.snap"  # the unsigned format of before
    old_style.write_bytes(
        gzip.compress(pickle.dumps({"format": "meltica-snapshot/1", "snapshot": Payload(marker)}))
    )
    forged = directory / "forged.snap"  # the signed format, with a MAC made without the key
    forged.write_bytes(snapshots.MAGIC + bytes(32) + gzip.compress(pickle.dumps(Payload(marker))))
    altered = directory / "altered.snap"  # a genuine file with its payload swapped
    body = genuine.read_bytes()
    altered.write_bytes(body[: len(snapshots.MAGIC) + 32] + gzip.compress(pickle.dumps(Payload(marker))))
    for path in (old_style, forged, altered):
        with pytest.raises(snapshots.SnapshotError, match="refused unread"):
            snapshots.load(path, key)
        os.utime(path, (genuine.stat().st_mtime + 10,) * 2)  # newer than the genuine one
    refused: list[str] = []
    found = snapshots.latest(directory, stack.engine.processors, key, refused)
    assert found is not None
    assert found[0] == genuine
    assert canonical(found[1].processors) == canonical(stack.engine.processors)
    assert len(refused) == 3
    with pytest.raises(snapshots.SnapshotError, match="MAC does not match"):
        snapshots.load(genuine, load_key(tmp_path / "another.key"))  # another installation's key
    assert not marker.exists()


def test_restore_refuses_an_unsigned_file_and_takes_another_installations_with_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MELTICA_DATA_DIR", str(tmp_path / "here"))
    monkeypatch.delenv("MELTICA_DATABASE_URL", raising=False)
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.snap"
    evil.write_bytes(gzip.compress(pickle.dumps(Payload(marker))))
    refused = CliRunner().invoke(app, ["snapshot", "restore", str(evil), "--no-read-models"])
    assert refused.exit_code == 1
    assert "refused unread" in refused.output
    assert not marker.exists()

    stack = Stack(log=SqliteLog(tmp_path / "there.db"))
    stack.setup()
    theirs = tmp_path / "there.key"
    made = snapshots.save(snapshots.capture(stack.engine), tmp_path / "there.snap", load_key(theirs))
    plain = CliRunner().invoke(app, ["snapshot", "restore", str(made), "--no-read-models"])
    assert plain.exit_code == 1
    assert "MAC does not match" in plain.output
    keyed = CliRunner().invoke(
        app, ["snapshot", "restore", str(made), "--no-read-models", "--key-file", str(theirs)]
    )
    assert keyed.exit_code == 0, keyed.output
    mine = load_key(tmp_path / "here" / "snapshot.key")
    copy = snapshots.load(tmp_path / "here" / "snapshots" / made.name, mine)  # signed again, here
    assert copy.positions == snapshots.load(made, load_key(theirs)).positions


def test_a_kafka_partition_snapshot_without_a_valid_mac_is_passed_over(tmp_path: Path) -> None:
    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(2):
        log.create_topic(spec)
    key, marker = load_key(tmp_path / "snapshot.key"), tmp_path / "marker"

    def core(with_key: bytes) -> PartitionedProcessor:
        return PartitionedProcessor(
            "portfolio",
            lambda p: PortfolioProcessor(),
            inputs_of("portfolio"),
            codec=codec,
            reader=log,
            clock=SimulatedClock(0),
            snapshot_key=with_key,
        )

    service = core(key)
    state = service.restore(1)
    log.append([service.snapshot_message(state)])
    assert service.latest_snapshot(1) is not None  # a genuine one is used
    assert core(load_key(tmp_path / "other.key")).latest_snapshot(1) is None  # another key's is not
    blob = gzip.compress(pickle.dumps((Payload(marker), {})))
    forged = {
        "processor": "portfolio",
        "partition": 1,
        "journal_offset": 0,
        "created_ns": 0,
        "format": SNAPSHOT_FORMAT,
        "state": bytes(32) + blob,
    }
    log.append([Message(snapshot_topic("portfolio"), codec.encode("ProcessorSnapshot", forged), b"1", (), 1)])
    found = service.latest_snapshot(1)
    assert found is not None
    assert not marker.exists()
    assert canonical(found[1]) == canonical(state.processor)
