"""The simulated venue: a matching engine driven by market data, for paper trading and backtests."""

from meltica.venues.sim.matching import SimVenue
from meltica.venues.sim.models import (
    BpsFees,
    FixedLatency,
    FixedTickSlippage,
    InstrumentFees,
    NoSlippage,
    RandomLatency,
)

__all__ = [
    "BpsFees",
    "FixedLatency",
    "FixedTickSlippage",
    "InstrumentFees",
    "NoSlippage",
    "RandomLatency",
    "SimVenue",
]
