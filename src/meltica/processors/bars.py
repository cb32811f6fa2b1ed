"""Bar builder: time bars of configurable widths from trades (LAST) and quote mids (MID).

A bar covers [ts_open, ts_open + width) on the event clock and is written when the first tick
of a later interval arrives (so a replay writes the same bars). Ticks flagged out of order are
left out: they belong to an interval already closed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meltica.clock import Clock
from meltica.domain.marketdata import OUT_OF_ORDER, Bar, QuoteTick, TradeTick
from meltica.runtime.processor import Output
from meltica.topics import BARS

UNITS = {"s": ("SECOND", 10**9), "m": ("MINUTE", 60 * 10**9), "h": ("HOUR", 3600 * 10**9)}


def parse_width(text: str) -> tuple[str, int]:
    """`'5m'` -> (`'5-MINUTE'`, width in ns); a ValueError names what is accepted."""
    match = re.fullmatch(r"([1-9][0-9]*)([smh])", text.strip())
    if match is None:
        raise ValueError(f"bar width {text!r}: expected a number and s, m or h (e.g. 15s, 1m, 4h)")
    unit, ns = UNITS[match[2]]
    return f"{match[1]}-{unit}", int(match[1]) * ns


def width_text(label: str) -> str:
    """`'5-MINUTE'` -> `'5m'` (the inverse of `parse_width`); a label of another unit as it is."""
    match = re.fullmatch(r"([1-9][0-9]*)-([A-Z]+)", label)
    short = {unit: letter for letter, (unit, _) in UNITS.items()}
    if match is None or match[2] not in short:
        return label
    return f"{match[1]}{short[match[2]]}"


@dataclass
class _Open:
    ts_open: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class BarBuilder:
    name = "bars"

    def __init__(self, widths: list[str]) -> None:
        self.widths = [parse_width(w) for w in widths]
        self.open: dict[tuple[str, str], _Open] = {}

    @property
    def layout(self) -> str:
        return ",".join(label for label, _ in self.widths)

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        if isinstance(event, TradeTick):
            price, volume, source = event.price, event.size, "LAST"
        elif isinstance(event, QuoteTick):
            price, volume, source = event.mid, Decimal(0), "MID"
        else:
            return []
        if event.flags & OUT_OF_ORDER:
            return []
        out = []
        for label, width in self.widths:
            spec = f"{label}-{source}"
            key = (event.instrument_id, spec)
            start = event.ts - event.ts % width
            bar = self.open.get(key)
            if bar is not None and start > bar.ts_open:
                closed = Bar(
                    event.instrument_id,
                    spec,
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    bar.volume,
                    bar.ts_open,
                    bar.ts_open + width,
                )
                out.append(Output(BARS, event.instrument_id, closed))
                bar = None
            if bar is None:
                self.open[key] = _Open(start, price, price, price, price, volume)
            else:
                bar.high, bar.low = max(bar.high, price), min(bar.low, price)
                bar.close, bar.volume = price, bar.volume + volume
        return out
