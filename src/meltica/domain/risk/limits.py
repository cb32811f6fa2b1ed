"""Risk limits: one set per scope (global, portfolio, account, instrument)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from meltica.domain.values import NS_PER_SECOND, OrderType


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Pre-trade limits; None means "not set at this scope". Mirrors the Avro `RiskLimits`."""

    throttle_rate: Decimal | None = None
    throttle_burst: int | None = None
    price_band: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_gross_exposure: Decimal | None = None
    max_net_exposure: Decimal | None = None
    max_open_orders: int | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    allowed_instruments: tuple[str, ...] | None = None
    allowed_order_types: tuple[OrderType, ...] | None = None
    circuit_breaker_breaches: int | None = None
    circuit_breaker_window_ns: int | None = None

    def over(self, fallback: RiskLimits) -> RiskLimits:
        """These limits, with `fallback` filling whatever is not set here."""
        return RiskLimits(
            **{
                f.name: getattr(self, f.name)
                if getattr(self, f.name) is not None
                else getattr(fallback, f.name)
                for f in fields(self)
            }
        )


# The reference gateway's defaults: throttle 5/s burst 3, price band 1%, max position 250,
# max order notional 50,000, max 6 open orders, kill switch after 3 breaches (in a minute).
DEFAULT_LIMITS = RiskLimits(
    throttle_rate=Decimal(5),
    throttle_burst=3,
    price_band=Decimal("0.01"),
    max_order_notional=Decimal(50_000),
    max_position=Decimal(250),
    max_open_orders=6,
    circuit_breaker_breaches=3,
    circuit_breaker_window_ns=60 * NS_PER_SECOND,
)
