"""OKX's order book as its `books` channel sends it, and the CRC32 checksum that verifies it.

OKX documents the checksum over the best 25 levels of each side, interleaved best first
(`bid1:ask1:bid2:ask2:...`, each level `price:size`, the longer side's rest appended alone), as the
signed 32-bit CRC32 of that text. Prices and sizes enter it as the strings OKX sent ("8477" and
"8477.0" differ), so the book keeps each level's strings beside its exact decimal price.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

CHECKSUM_LEVELS = 25

Level = Sequence[str]  # [price, size, "0", orders] as OKX sends a level


def checksum_text(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]) -> str:
    """The text OKX's checksum is taken over: best `CHECKSUM_LEVELS` of each side, interleaved."""
    parts: list[str] = []
    for i in range(min(max(len(bids), len(asks)), CHECKSUM_LEVELS)):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    return ":".join(parts)


def crc32_signed(text: str) -> int:
    """CRC32 of `text` as the signed 32-bit integer OKX sends."""
    value = zlib.crc32(text.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


@dataclass
class OkxBook:
    """One instrument's levels: exact price -> (price text, size text), as OKX last sent them."""

    bids: dict[Decimal, tuple[str, str]] = field(default_factory=dict)
    asks: dict[Decimal, tuple[str, str]] = field(default_factory=dict)

    def load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the book with a snapshot's levels."""
        self.bids.clear()
        self.asks.clear()
        self.apply(bids, asks)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """An update's levels: a size of zero removes the price, any other sets it."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for level in levels:
                price, size = str(level[0]), str(level[1])
                if Decimal(size) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = (price, size)

    def top(self, depth: int = CHECKSUM_LEVELS) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The best `depth` bids (highest first) and asks (lowest first)."""
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:depth]]
        asks = [self.asks[p] for p in sorted(self.asks)[:depth]]
        return bids, asks

    def checksum(self) -> int:
        """OKX's checksum of this book."""
        return crc32_signed(checksum_text(*self.top()))
