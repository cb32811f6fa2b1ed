"""Pluggable fee, slippage and latency models of the simulated venue. Deterministic for a seed."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from meltica.domain.instruments import Instrument
from meltica.domain.values import BPS, LiquiditySide, OrderSide


class FeeModel(Protocol):
    def fee(
        self, instrument: Instrument, liquidity: LiquiditySide, quantity: Decimal, price: Decimal
    ) -> Decimal:
        """Fee in the instrument's quote currency."""
        ...


@dataclass(frozen=True)
class InstrumentFees:
    """The instrument's own maker/taker rates (fractions of notional)."""

    def fee(
        self, instrument: Instrument, liquidity: LiquiditySide, quantity: Decimal, price: Decimal
    ) -> Decimal:
        rate = instrument.maker_fee if liquidity is LiquiditySide.MAKER else instrument.taker_fee
        return instrument.notional(quantity, price) * rate


@dataclass(frozen=True)
class BpsFees:
    """Maker/taker fees in basis points, with per-instrument overrides."""

    maker_bps: Decimal = Decimal(1)
    taker_bps: Decimal = Decimal(5)
    per_instrument: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def fee(
        self, instrument: Instrument, liquidity: LiquiditySide, quantity: Decimal, price: Decimal
    ) -> Decimal:
        maker, taker = self.per_instrument.get(instrument.instrument_id, (self.maker_bps, self.taker_bps))
        bps = maker if liquidity is LiquiditySide.MAKER else taker
        return instrument.notional(quantity, price) * bps / BPS


class SlippageModel(Protocol):
    def price(self, instrument: Instrument, side: OrderSide, price: Decimal) -> Decimal:
        """The price a market order actually gets at a book level quoted at `price`."""
        ...


@dataclass(frozen=True)
class NoSlippage:
    def price(self, instrument: Instrument, side: OrderSide, price: Decimal) -> Decimal:
        return price


@dataclass(frozen=True)
class FixedTickSlippage:
    """Market orders fill `ticks` price increments worse than the book."""

    ticks: int = 1

    def price(self, instrument: Instrument, side: OrderSide, price: Decimal) -> Decimal:
        return price + instrument.price_increment * self.ticks * side.sign


class LatencyModel(Protocol):
    def delay_ns(self, order_id: str, what: str) -> int:
        """Time from a request (or market event) to the venue's report about it."""
        ...


@dataclass(frozen=True)
class FixedLatency:
    ns: int = 0

    def delay_ns(self, order_id: str, what: str) -> int:
        return self.ns


@dataclass(frozen=True)
class RandomLatency:
    """Uniform in [min_ns, max_ns], drawn from the seed, the order and the kind of report: the
    same inputs always give the same delay, across restarts and replays."""

    min_ns: int
    max_ns: int
    seed: int = 0

    def delay_ns(self, order_id: str, what: str) -> int:
        rng = random.Random(zlib.crc32(f"{self.seed}/{order_id}/{what}".encode()))  # nosec B311 # simulated latency
        return rng.randint(self.min_ns, self.max_ns)
