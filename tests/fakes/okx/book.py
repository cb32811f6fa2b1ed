"""The fake's order books: levels as OKX's strings, `seqId` chains and OKX's documented checksum.

The checksum is written here from OKX's documentation, apart from the adapter's, so that a test of
the adapter against the fake checks two readings of the documentation against each other.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data" / "okx" / "spot"
SEQ_STEP = 3  # OKX's seqIds rise but not by one: a client must chain prevSeqId, not count


def okx_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """CRC32 (signed 32-bit) of `bid1px:bid1sz:ask1px:ask1sz:...` over the best 25 of each side,
    the longer side's remaining levels following alone; bids best (highest) first, asks lowest first."""
    fields: list[str] = []
    for i in range(25):
        for side in (bids, asks):
            if i < len(side):
                fields.extend(side[i])
    crc = binascii.crc32(":".join(fields).encode("ascii"))
    return crc - 2**32 if crc & 0x80000000 else crc


@dataclass
class FakeBook:
    """One instrument's book: price text -> size text per side, its seqId, and what a push looks like."""

    inst_id: str
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    seq: int = 1000

    def sorted(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))
        return bids, asks

    def checksum(self) -> int:
        return okx_checksum(*self.sorted())

    def snapshot(self, ts: int) -> dict[str, Any]:
        """The `books` snapshot push's data (400 levels a side at most)."""
        bids, asks = self.sorted()
        return {
            "asks": [[p, s, "0", "1"] for p, s in asks[:400]],
            "bids": [[p, s, "0", "1"] for p, s in bids[:400]],
            "ts": str(ts),
            "checksum": self.checksum(),
            "prevSeqId": -1,
            "seqId": self.seq,
        }

    def replace(self, bids: dict[str, str], asks: dict[str, str], ts: int) -> dict[str, Any]:
        """Set the book to `bids`/`asks`; the `books` update push's data that says so (changed levels,
        removed ones with size "0"), chained to the previous seqId."""
        changes: dict[str, list[list[str]]] = {"bids": [], "asks": []}
        for name, old, new in (("bids", self.bids, bids), ("asks", self.asks, asks)):
            for price in old.keys() - new.keys():
                changes[name].append([price, "0", "0", "0"])
            for price, size in new.items():
                if old.get(price) != size:
                    changes[name].append([price, size, "0", "1"])
        self.bids, self.asks = dict(bids), dict(asks)
        prev, self.seq = self.seq, self.seq + SEQ_STEP
        return {**changes, "ts": str(ts), "checksum": self.checksum(), "prevSeqId": prev, "seqId": self.seq}

    def best(self, ts: int) -> dict[str, Any]:
        """The `bbo-tbt` push's data."""
        bids, asks = self.sorted()
        return {
            "asks": [[p, s, "0", "1"] for p, s in asks[:1]],
            "bids": [[p, s, "0", "1"] for p, s in bids[:1]],
            "ts": str(ts),
            "seqId": self.seq,
        }


def recorded_instruments() -> list[dict[str, Any]]:
    """`GET /api/v5/public/instruments?instType=SPOT` as recorded (BTC-USD, ETH-USD, ...)."""
    answer: dict[str, Any] = json.loads((DATA / "http_json" / "http_get_instruments_spot.json").read_text())
    return list(answer["data"])


def recorded_book(inst_id: str) -> FakeBook:
    """A book holding the levels of the recorded `books` snapshot, at its seqId."""
    data = json.loads((DATA / "ws_json" / "ws_books_snapshot.json").read_text())["data"][0]
    return FakeBook(
        inst_id,
        {str(p): str(s) for p, s, *_ in data["bids"]},
        {str(p): str(s) for p, s, *_ in data["asks"]},
        int(data["seqId"]),
    )
