"""Aggregates of execution analytics rows (one row per fill): exact, with stated rounding.

Per group: the number of fills, their quantity and notional (quantity x fill price, summed as
is: a group over instruments of several quote currencies adds their units), and over the fills
that have a slippage (an arrival mid was known) its mean, median and 95th percentile in bps,
plus the notional-weighted mean; means of the two latencies over the fills that have them.
Means and the median are rounded half-even to `SLIPPAGE_QUANTUM` (0.0001 bps) and latencies to
whole nanoseconds; the 95th percentile is nearest-rank (the smallest slippage that at least 95%
of the fills do not exceed), so it is always one fill's own value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from meltica.domain.amounts import PRECISION
from meltica.domain.portfolio.analytics import SLIPPAGE_QUANTUM

ZERO = Decimal(0)
WIDE = 3 * PRECISION  # digits kept while summing: products of two amounts are never rounded


@dataclass(frozen=True, slots=True)
class Fill:
    """What the aggregates read of one row."""

    key: str | None
    quantity: Decimal
    fill_px: Decimal
    slippage_bps: Decimal | None
    submit_to_ack_ns: int | None
    ack_to_fill_ns: int | None


@dataclass(frozen=True, slots=True)
class Aggregate:
    key: str | None
    fills: int
    quantity: Decimal
    notional: Decimal
    slipped: int  # fills with a slippage (an arrival mid was known)
    mean_slippage_bps: Decimal | None
    median_slippage_bps: Decimal | None
    p95_slippage_bps: Decimal | None
    weighted_slippage_bps: Decimal | None  # weighted by each fill's notional
    mean_submit_to_ack_ns: int | None
    mean_ack_to_fill_ns: int | None


@dataclass(slots=True)
class _Group:
    fills: int = 0
    quantity: Decimal = ZERO
    notional: Decimal = ZERO
    slippages: list[Decimal] = field(default_factory=list)
    slipped_notional: Decimal = ZERO
    weighted: Decimal = ZERO
    acks: list[int] = field(default_factory=list)
    ack_fills: list[int] = field(default_factory=list)


def _bps(value: Decimal) -> Decimal:
    return value.quantize(SLIPPAGE_QUANTUM, rounding=ROUND_HALF_EVEN)


def _mean_ns(values: list[int]) -> int | None:
    if not values:
        return None
    with localcontext() as ctx:
        ctx.prec = WIDE
        return int((Decimal(sum(values)) / len(values)).to_integral_value(rounding=ROUND_HALF_EVEN))


def median(values: list[Decimal]) -> Decimal | None:
    """The middle of sorted `values` (the mean of the two middle ones for an even count)."""
    if not values:
        return None
    s, n = sorted(values), len(values)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def nearest_rank(values: list[Decimal], percent: int) -> Decimal | None:
    """The smallest of `values` that at least `percent`% of them do not exceed."""
    if not values:
        return None
    s = sorted(values)
    rank = -(-percent * len(s) // 100)  # ceil(percent / 100 * n), in integers
    return s[max(rank, 1) - 1]


def aggregate(rows: Iterable[Fill]) -> list[Aggregate]:
    """One aggregate per key of `rows`, in key order (no key: first)."""
    groups: dict[str | None, _Group] = {}
    with localcontext() as ctx:
        ctx.prec = WIDE
        for r in rows:
            g = groups.setdefault(r.key, _Group())
            notional = r.quantity * r.fill_px
            g.fills += 1
            g.quantity += r.quantity
            g.notional += notional
            if r.slippage_bps is not None:
                g.slippages.append(r.slippage_bps)
                g.slipped_notional += notional
                g.weighted += r.slippage_bps * notional
            if r.submit_to_ack_ns is not None:
                g.acks.append(r.submit_to_ack_ns)
            if r.ack_to_fill_ns is not None:
                g.ack_fills.append(r.ack_to_fill_ns)
        out = []
        for key in sorted(groups, key=lambda k: (k is not None, k or "")):
            g = groups[key]
            n = len(g.slippages)
            mid = median(g.slippages)
            out.append(
                Aggregate(
                    key,
                    g.fills,
                    g.quantity,
                    g.notional,
                    n,
                    _bps(sum(g.slippages, ZERO) / n) if n else None,
                    None if mid is None else _bps(mid),
                    nearest_rank(g.slippages, 95),
                    _bps(g.weighted / g.slipped_notional) if g.slipped_notional else None,
                    _mean_ns(g.acks),
                    _mean_ns(g.ack_fills),
                )
            )
    return out
