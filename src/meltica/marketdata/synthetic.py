"""A synthetic market: a seeded random walk of quotes and trades, in whole price ticks."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.runtime.publisher import Publisher
from meltica.topics import QUOTES, TRADES

START_PRICES = {"BTCUSDT": Decimal("43000"), "ETHUSDT": Decimal("2300"), "USDJPY": Decimal("150")}
"""Where each symbol's walk starts, at whichever venue it is quoted."""


@dataclass
class _Walk:
    instrument: Instrument
    ticks: int  # mid in price increments

    def price(self, ticks: int) -> Decimal:
        return self.instrument.price_increment * ticks


class SyntheticFeed:
    """Ticks for `instruments`, `interval_ns` apart, the same sequence for the same seed."""

    def __init__(
        self,
        instruments: Sequence[Instrument],
        *,
        seed: int = 7,
        interval_ns: int = 200_000_000,
        trade_probability: float = 0.3,
        trade_id_prefix: str = "SYN",
    ) -> None:
        self.trade_id_prefix = trade_id_prefix
        self._rng = random.Random(seed)  # nosec B311 # synthetic prices, not secrets
        self.interval_ns = interval_ns
        self.trade_probability = trade_probability
        self._walks = [
            _Walk(i, int(START_PRICES.get(i.symbol, Decimal(100)) / i.price_increment)) for i in instruments
        ]
        self._trades = 0

    def ticks(self, start_ns: int) -> Iterator[QuoteTick | TradeTick]:
        """Endless ticks from `start_ns`, one instrument after another."""
        ts = start_ns
        while True:
            for walk in self._walks:
                yield from self._step(walk, ts)
            ts += self.interval_ns

    def _step(self, walk: _Walk, ts: int) -> list[QuoteTick | TradeTick]:
        rng, inst = self._rng, walk.instrument
        walk.ticks = max(10, walk.ticks + rng.choice((-3, -2, -1, 0, 0, 1, 2, 3)))
        half = rng.randint(1, 3)
        bid, ask = walk.price(walk.ticks - half), walk.price(walk.ticks + half)
        size = inst.size_increment * rng.randint(500, 5000)  # deep enough for the demo and a few clients
        out: list[QuoteTick | TradeTick] = [QuoteTick(inst.instrument_id, bid, size, ask, size * 2, ts)]
        if rng.random() < self.trade_probability:
            self._trades += 1
            buyer = rng.random() < 0.5
            out.append(
                TradeTick(
                    inst.instrument_id,
                    ask if buyer else bid,
                    inst.size_increment * rng.randint(1, 100),
                    AggressorSide.BUYER if buyer else AggressorSide.SELLER,
                    f"{self.trade_id_prefix}-{self._trades}",
                    ts,
                )
            )
        return out


def publish_live(feed: SyntheticFeed, publisher: Publisher, stop: threading.Event) -> None:
    """Publish the feed's ticks as their times come (on the publisher's clock) until `stop`."""
    clock = publisher.clock
    for tick in feed.ticks(clock.now_ns()):
        if stop.wait(max(0.0, (tick.ts - clock.now_ns()) / 1e9)):
            return
        publisher.publish(QUOTES if isinstance(tick, QuoteTick) else TRADES, tick)
