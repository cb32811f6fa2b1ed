"""Well-formed example events, for documentation, benchmarks and tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meltica.events.envelope import EventMetadata, derive_event_id

_T0 = 1_700_000_000_000_000_000


def metadata(key: str, n: int = 0, *, version: int = 1) -> dict[str, Any]:
    """Metadata for the `n`-th example event of `key`."""
    return EventMetadata(
        event_id=derive_event_id(f"example/{key}", n),
        correlation_id=f"corr-{key}-{n}",
        causation_id=f"cause-{key}-{n}",
        ts_event=_T0 + n * 1_000_000,
        ts_init=_T0 + n * 1_000_000 + 250,
        key=key,
        version=version,
    ).to_avro()


def order_filled(n: int = 0, account_id: str = "ACC-1") -> dict[str, Any]:
    """An `OrderFilled` event of a 0.5 BTC buy."""
    return {
        "meta": metadata(account_id, n, version=4),
        "order_id": f"O-{n}",
        "client_order_id": f"C-{n}",
        "account_id": account_id,
        "instrument_id": "BTCUSDT.BINANCE",
        "fill": {
            "trade_id": f"T-{n}",
            "venue_order_id": f"V-{n}",
            "side": "BUY",
            "last_qty": Decimal("0.500"),
            "last_px": Decimal("43250.12"),
            "fee": Decimal("0.0216"),
            "fee_currency": "USDT",
            "liquidity_side": "TAKER",
            "ts_fill": _T0 + n,
            "reconciled": False,
        },
        "cum_qty": Decimal("0.500"),
        "leaves_qty": Decimal("0"),
        "avg_px": Decimal("43250.12"),
    }


def quote_tick(n: int = 0, instrument_id: str = "BTCUSDT.BINANCE") -> dict[str, Any]:
    """A `QuoteTick` on `instrument_id`."""
    return {
        "meta": metadata(instrument_id, n),
        "instrument_id": instrument_id,
        "bid_px": Decimal("43250.10"),
        "bid_qty": Decimal("1.250"),
        "ask_px": Decimal("43250.20"),
        "ask_qty": Decimal("0.875"),
    }
